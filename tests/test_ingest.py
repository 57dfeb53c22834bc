"""Ingestion on a real DuckDB file: every source record is loaded once or quarantined with its file,
line and reason: CSV extracts (`ingest_csv`, e.g. immunizations.raw_doses) and the event stream
(scheduling.appointment_events) across batches, whatever bytes the files hold."""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest

from mesh_platform.defs.domain_definitions import _asset_fns, _import_domain_code
from mesh_platform.defs.publish import is_transient
from mesh_platform.project.locations import MeshProject
from mesh_platform.project.mesh import Mesh
from mesh_platform.sdk import AssetContext, Ingested
from mesh_platform.sdk.ingest import SourceFormatError
from mesh_platform.sdk.landing import landing_signatures

ROOT = Path(__file__).resolve().parents[1]


def _event(event_id: str | None, event_type: str = "booked") -> str:
    return json.dumps(
        {
            "event_id": event_id,
            "appointment_id": f"A-{event_id}",
            "patient_id": "P1",
            "site_id": "S1",
            "service": "test",
            "event_type": event_type,
            "event_time": "2021-03-01T09:00:00",
            "scheduled_for": "2021-03-02T09:00:00",
        }
    )


def _ingestion(
    tmp_path: Path, domain: str, asset: str, folder: str
) -> tuple[Callable[[], Ingested], duckdb.DuckDBPyConnection, Path]:
    """Run `domain.asset` on a real DuckDB file in `tmp_path` (MESH_HOME must be `tmp_path/home`);
    returns the run, the connection and the folder `home/<folder>` it reads."""
    mesh = Mesh.load(MeshProject.discover(ROOT))
    (fn,) = [f for f in _asset_fns(_import_domain_code(mesh, domain)) if f.name == asset]
    source = tmp_path / "home" / folder
    source.mkdir(parents=True)
    con = duckdb.connect(str(tmp_path / f"{domain}.duckdb"))
    return (
        lambda: fn(AssetContext(domain, fn.name, con, mesh.project.home.path, fn.reads, "run-1", landing=fn.landing)),
        con,
        source,
    )


@pytest.fixture
def ingest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("MESH_HOME", str(tmp_path / "home"))
    run, con, landing = _ingestion(tmp_path, "scheduling", "appointment_events", "landing/appointments")

    def batch(name: str | None = None, lines: tuple[str, ...] = ()) -> Ingested:
        if name:
            (landing / name).write_text("\n".join(lines) + "\n")
        return run()

    yield batch, con
    con.close()


def test_every_line_is_loaded_once_or_quarantined_across_batches(ingest) -> None:
    batch, con = ingest
    first = batch("b1.jsonl", (_event("E1"), _event("E2"), '{"event_id": "E3", "appointment', _event("E3"), ""))
    assert (first.records_in, first.loaded, first.quarantined) == (5, 3, {"malformed_json": 2})

    second = batch(
        "b2.jsonl",
        (
            _event("E2"),  # redelivered: already stored, not a defect
            _event(None),  # no event_id, after events are stored: quarantined, not dropped
            _event("E4"),
            _event("E4"),  # repeated within the batch: loaded once
            _event("E5", event_type="teleported"),
        ),
    )
    assert second.records_in == 5 and second.files == ["b2.jsonl"]
    assert second.quarantined == {"null_key": 1, "unknown_code": 1}

    stored = con.execute("select event_id, count(*) from main.appointment_events group by 1 order by 1").fetchall()
    assert stored == [("E1", 1), ("E2", 1), ("E3", 1), ("E4", 1)]
    held = con.execute(
        "select source_file, source_line, reason, record ->> 'line' from quarantine.records order by all"
    ).fetchall()
    assert [row[:3] for row in held] == [
        ("landing/appointments/b1.jsonl", 3, "malformed_json"),
        ("landing/appointments/b1.jsonl", 5, "malformed_json"),  # a blank line is no event either
        ("landing/appointments/b2.jsonl", 2, "null_key"),
        ("landing/appointments/b2.jsonl", 5, "unknown_code"),
    ]
    assert held[0][3] == '{"event_id": "E3", "appointment'  # the raw line, as it arrived


def test_a_retried_run_adds_nothing(ingest) -> None:
    batch, con = ingest
    batch("b1.jsonl", (_event("E1"), _event("E2")))
    retried = batch()  # no new file: the ingested files are known by name and size
    assert (retried.records_in, retried.files) == (0, [])
    redelivered = batch("b2.jsonl", (_event("E1"),))
    assert (redelivered.records_in, redelivered.loaded, redelivered.quarantined) == (1, 1, {})
    assert con.execute("select count(*) from main.appointment_events").fetchone() == (2,)


def test_entries_that_are_no_file_are_quarantined_and_hold_nothing_back(ingest, tmp_path: Path) -> None:
    """A directory, a pipe, a link (dangling, or to another domain's extract), an undecodable name or
    a file not named *.jsonl in the landing folder: never read (a pipe would block the run, a link
    reach out), each quarantined as an entry, and the good file beside them loads; the sensor
    requests no run for them. A subfolder and files still being written (`.tmp`, hidden) are left be."""
    batch, con = ingest
    landing = tmp_path / "home" / "landing" / "appointments"
    (landing / "a-dir.jsonl").mkdir()
    os.mkfifo(landing / "b-pipe.jsonl")
    (landing / "c-dangling.jsonl").symlink_to(tmp_path / "nowhere")
    extract = tmp_path / "home" / "sources" / "patients" / "patients.csv"
    extract.parent.mkdir(parents=True)
    extract.write_text("patient_id,email\nP1,someone@example.com\n")
    (landing / "d-link.jsonl").symlink_to(extract)
    with open(os.path.join(os.fsencode(landing), b"e-\xff.jsonl"), "w") as undecodable:
        undecodable.write(_event("X1") + "\n")
    for misnamed in ("f-batch.json", "g-BATCH.JSONL"):  # a source system's slip: said, not passed over
        (landing / misnamed).write_text(_event("M1") + "\n")
    (landing / "archive").mkdir()  # a subfolder, and files still being written: not the stream's
    (landing / "h-batch.jsonl.tmp").write_text(_event("T1") + "\n")
    (landing / ".i-batch.part").write_text(_event("T2") + "\n")
    (landing / "j-batch.jsonl.filepart").write_text(_event("T3") + "\n")
    (landing / "_SUCCESS").write_text("")
    result = batch("z-good.jsonl", (_event("G1"),))
    assert (result.loaded, result.files) == (1, ["z-good.jsonl"])
    held = con.execute("select source_file, source_line, reason from quarantine.records order by all").fetchall()
    assert held == [
        ("landing/appointments/a-dir.jsonl", None, "not_a_file"),
        ("landing/appointments/b-pipe.jsonl", None, "not_a_file"),
        ("landing/appointments/c-dangling.jsonl", None, "not_a_file"),
        ("landing/appointments/d-link.jsonl", None, "not_a_file"),
        ("landing/appointments/e-\\xff.jsonl", None, "invalid_file_name"),
        ("landing/appointments/f-batch.json", None, "wrong_file_suffix"),
        ("landing/appointments/g-BATCH.JSONL", None, "wrong_file_suffix"),
    ]
    assert batch().records_in == 0  # the next run: the same entries, still one row each
    assert con.execute("select count(*) from quarantine.records").fetchone() == (7,)
    assert list(landing_signatures(landing)) == ["z-good.jsonl"]  # what the landing sensor watches
    (landing / "f-batch.json").rename(landing / "f-batch.jsonl")  # the slip mended: its row goes
    assert batch().loaded == 1
    assert con.execute("select count(*) from quarantine.records").fetchone() == (6,)


def test_a_file_rewritten_at_the_same_size_or_grown_is_read_again(ingest, tmp_path: Path) -> None:
    """A file is known by its size and mtime as listed: a typo fixed at the same size, or lines
    appended after a run listed it, are ingested by the next run, and what the earlier read held
    back (a half-written last line) is replaced by what the file holds now."""
    batch, con = ingest
    path = tmp_path / "home" / "landing" / "appointments" / "b1.jsonl"
    half = '{"event_id": "E2", "appoi'
    first = batch("b1.jsonl", (_event("E1", event_type="bokked"), half))
    assert first.quarantined == {"unknown_code": 1, "malformed_json": 1}

    def rewrite(text: str) -> None:  # as a source system does, within the filesystem's mtime granularity
        mtime = path.stat().st_mtime_ns
        path.write_text(text)
        os.utime(path, ns=(mtime, mtime + 1_000_000))

    fixed = path.read_text().replace("bokked", "booked")
    rewrite(fixed)  # the same size
    assert batch().quarantined == {"malformed_json": 1}
    rewrite(fixed.replace(half + "\n", _event("E2") + "\n"))  # the last line finished
    assert (batch().loaded, con.execute("select count(*) from quarantine.records").fetchone()) == (2, (0,))
    assert con.execute("select event_id, event_type from main.appointment_events order by 1").fetchall() == [
        ("E1", "booked"),
        ("E2", "booked"),
    ]


def test_a_csv_extract_is_loaded_or_quarantined_line_by_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MESH_HOME", str(tmp_path / "home"))
    mesh = Mesh.load(MeshProject.discover(ROOT))
    (fn,) = [f for f in _asset_fns(_import_domain_code(mesh, "immunizations")) if f.name == "raw_doses"]
    source = tmp_path / "home" / "sources" / "immunizations"
    source.mkdir(parents=True)
    header = "dose_id,patient_id,site_id,lot_id,vaccine_code,dose_number,administered_at"
    rows = [
        "D1,P1,S1,L1,207,1,2021-03-01 09:00:00",
        "D2,P2,S1,L1,208,two,2021-03-01 10:00:00",  # line 3: dose_number does not parse
        "D1,P3,S2,L2,207,2,2021-04-01 09:00:00",  # line 4: repeats D1, the first line wins
        ",P4,S2,L2,207,1,2021-04-02 09:00:00",  # line 5: no key
        'D3,"P5, jr",S2,L2,999,1,2021-04-03 09:00:00',  # line 6: unknown vaccine code
        "D4,P6,S2,L2,210,1,2021-04-04 09:00:00",
    ]
    (source / "doses.csv").write_text("\n".join([header, *rows]) + "\n")
    con = duckdb.connect(str(tmp_path / "immunizations.duckdb"))

    def ingest() -> Ingested:
        return fn(AssetContext("immunizations", fn.name, con, mesh.project.home.path, fn.reads, "run-1"))

    result = ingest()
    assert (result.records_in, result.loaded, result.files) == (6, 2, ["sources/immunizations/doses.csv"])
    assert result.quarantined == {"unparseable_value": 1, "duplicate_key": 1, "null_key": 1, "unknown_code": 1}
    loaded = con.execute(
        "select dose_id, patient_id, dose_number, _source_line from main.raw_doses order by _source_line"
    ).fetchall()
    assert loaded == [("D1", "P1", 1, 2), ("D4", "P6", 1, 7)]
    held = con.execute(
        "select source_line, reason, record ->> 'patient_id' from quarantine.records order by source_line"
    ).fetchall()
    assert held == [
        (3, "unparseable_value", "P2"),
        (4, "duplicate_key", "P3"),
        (5, "null_key", "P4"),
        (6, "unknown_code", "P5, jr"),
    ]

    again = ingest()  # a retried run replaces what the last one loaded and quarantined
    assert (again.records_in, again.loaded) == (6, 2)
    assert con.execute("select count(*) from quarantine.records").fetchone() == (4,)
    con.close()


# --- whatever bytes a landing file holds --------------------------------------------------------

GOOD = [_event(f"G{i}").encode() for i in range(1, 4)]
LONG = 2_500_000  # over DuckDB's max_line_size of 2,000,000 bytes


def _long_event() -> bytes:
    record = json.loads(_event("L1"))
    record["note"] = "x" * LONG
    return json.dumps(record).encode()


# (file bytes, lines that are events, {line: reason} quarantined)
LANDING_CASES = {
    "invalid UTF-8": (
        GOOD[0] + b"\n" + GOOD[1].replace(b"G2", b"G2\xff\xfe") + b"\n" + GOOD[2] + b"\n",
        {1, 3},
        {2: "invalid_encoding"},
    ),
    "NUL byte": (GOOD[0] + b"\n{\x00" + GOOD[1][1:] + b"\n" + GOOD[2] + b"\n", {1, 3}, {2: "malformed_json"}),
    "bare CR in a string": (
        GOOD[0] + b"\n" + GOOD[1].replace(b"test", b"te\rst") + b"\n" + GOOD[2] + b"\n",
        {1, 3},
        {2: "malformed_json"},
    ),
    "bare CR between fields": (
        GOOD[0] + b"\n" + GOOD[1].replace(b", ", b",\r ") + b"\n" + GOOD[2] + b"\n",
        {1, 2, 3},
        {},
    ),
    "UTF-8 BOM": (b"\xef\xbb\xbf" + GOOD[0] + b"\n" + GOOD[1] + b"\n", {1, 2}, {}),
    "BOM inside": (GOOD[0] + b"\n\xef\xbb\xbf" + GOOD[1] + b"\n", {1}, {2: "malformed_json"}),
    "line over 2 MB": (GOOD[0] + b"\n" + _long_event() + b"\n" + GOOD[2] + b"\n", {1, 3}, {2: "line_too_long"}),
    "long line under the limit": (GOOD[0] + b"\n{" + b"y" * 1_500_000 + b"\n", {1}, {2: "malformed_json"}),
    "truncated last line": (GOOD[0] + b"\n" + GOOD[1][:40], {1}, {2: "malformed_json"}),
    "last line without newline": (GOOD[0] + b"\n" + GOOD[1], {1, 2}, {}),
    "empty file": (b"", set(), {}),
    "blank lines": (b"\n\n" + GOOD[0] + b"\n\n", {3}, {1: "malformed_json", 2: "malformed_json", 4: "malformed_json"}),
    "control byte 0x01": (GOOD[0] + b"\n" + GOOD[1].replace(b", ", b",\x01 ") + b"\n", {1}, {2: "malformed_json"}),
    "CRLF line endings": (GOOD[0] + b"\r\n" + GOOD[1] + b"\r\n" + GOOD[2] + b"\r\n", {1, 2, 3}, {}),
    "mixed line endings": (GOOD[0] + b"\r\n" + GOOD[1] + b"\n" + GOOD[2] + b"\r\n", {1, 2, 3}, {}),
    "binary junk": (bytes(range(256)) * 4 + b"\n" + GOOD[0] + b"\n", {None}, {}),
}


def _held(con: duckdb.DuckDBPyConnection) -> dict[tuple[str, int], tuple[str, str]]:
    rows = con.execute("select source_file, source_line, reason, cast(record as varchar) from quarantine.records")
    return {(f, n): (reason, record) for f, n, reason, record in rows.fetchall()}


@pytest.mark.parametrize("kind", list(LANDING_CASES))
def test_any_landing_bytes_are_loaded_or_quarantined_line_by_line(ingest, tmp_path: Path, kind: str) -> None:
    data, events, bad = LANDING_CASES[kind]
    batch, con = ingest
    landing = tmp_path / "home" / "landing" / "appointments"
    (landing / "b1.jsonl").write_bytes(data)
    result = batch()
    lines = data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)
    assert result.records_in == lines == result.loaded + result.quarantined_total, kind
    stored = con.execute("select _source_file, _source_line from main.appointment_events").fetchall()
    held = _held(con)
    assert all(f == "landing/appointments/b1.jsonl" for f, _ in [*stored, *held]), kind
    if None in events:  # junk: whatever it is, each line once
        assert sorted([n for _, n in stored] + [n for _, n in held]) == list(range(1, lines + 1)), kind
    else:
        assert {n for _, n in stored} == events, kind
        assert {n: reason for (_, n), (reason, _) in held.items()} == bad, kind
    assert all(len(record) < 4200 for _, record in held.values()), kind  # bounded, whatever the line's size

    (landing / "b2.jsonl").write_text(_event("N1") + "\n")  # a later file is never held back
    later = batch()
    assert (later.records_in, later.loaded, later.files) == (1, 1, ["b2.jsonl"])


def test_a_redelivered_event_with_another_payload_is_quarantined_with_both_locations(ingest) -> None:
    batch, con = ingest
    batch("b1.jsonl", (_event("E1"), _event("E2")))
    same = json.loads(_event("E1"))
    respelled = json.dumps(  # the same event: other key order, spacing, timestamp spelling, an unkept field
        {"extra": 1, **{k: same[k] for k in reversed(list(same))}, "event_time": "2021-03-01 09:00:00"}, indent=None
    )
    changed = _event("E2", event_type="cancelled")
    second = batch(
        "b2.jsonl",
        (
            respelled,  # line 1: identical payload to a stored event: a silent no-op
            changed,  # line 2: stored E2 was booked: a conflict with b1.jsonl:2
            _event("E3"),  # line 3: new
            _event("E3", event_type="no_show"),  # line 4: conflicts with line 3 of this batch
            _event("E3"),  # line 5: the same as line 3: a no-op
        ),
    )
    assert (second.records_in, second.loaded, second.quarantined) == (5, 3, {"conflicting_duplicate": 2})
    stored = con.execute("select event_id, event_type, _source_file, _source_line from main.appointment_events")
    assert sorted(stored.fetchall()) == [
        ("E1", "booked", "landing/appointments/b1.jsonl", 1),
        ("E2", "booked", "landing/appointments/b1.jsonl", 2),
        ("E3", "booked", "landing/appointments/b2.jsonl", 3),
    ]
    held = con.execute(
        "select source_file, source_line, reason, record ->> 'first_seen', record ->> 'event_type' "
        "from quarantine.records order by source_line"
    ).fetchall()
    assert held == [
        ("landing/appointments/b2.jsonl", 2, "conflicting_duplicate", "landing/appointments/b1.jsonl:2", "cancelled"),
        ("landing/appointments/b2.jsonl", 4, "conflicting_duplicate", "landing/appointments/b2.jsonl:3", "no_show"),
    ]
    again = batch("b3.jsonl", (changed, _event("E1")))  # the conflict redelivered: quarantined again, not stored
    assert (again.loaded, again.quarantined) == (1, {"conflicting_duplicate": 1})

    completed = json.dumps({**json.loads(_event("E4", event_type="completed")), "scheduled_for": None})
    batch("b4.jsonl", (completed,))
    redelivered = batch("b5.jsonl", (completed, completed))  # a null field equals a null field
    assert (redelivered.loaded, redelivered.quarantined) == (2, {})
    assert con.execute("select count(*) from main.appointment_events").fetchone() == (4,)


# --- whatever bytes a CSV extract holds ---------------------------------------------------------

DOSES_HEADER = b"dose_id,patient_id,site_id,lot_id,vaccine_code,dose_number,administered_at"


def _dose(n: int, patient: bytes = b"P1") -> bytes:
    return b"D%d,%s,S1,L1,207,1,2021-03-01 09:00:00" % (n, patient)


# (file bytes after the header line, lines loaded, {line: reason} quarantined); the header is line 1
CSV_CASES = {
    "invalid UTF-8": (
        _dose(1) + b"\n" + _dose(2, b"P\xff") + b"\n" + _dose(3) + b"\n",
        {2, 4},
        {3: "invalid_encoding"},
    ),
    "NUL byte": (_dose(1) + b"\n" + _dose(2, b"P\x002") + b"\n" + _dose(3) + b"\n", {2, 4}, {3: "control_character"}),
    "bare CR": (_dose(1) + b"\n" + _dose(2, b"P\r2") + b"\n" + _dose(3) + b"\n", {2, 4}, {3: "control_character"}),
    "line over 2 MB": (
        _dose(1) + b"\n" + _dose(2, b"P" * LONG) + b"\n" + _dose(3) + b"\n",
        {2, 4},
        {3: "line_too_long"},
    ),
    "long value under the limit": (
        _dose(1) + b"\n" + _dose(2).replace(b",1,", b",%s," % (b"9" * 1_500_000)) + b"\n",
        {2},
        {3: "unparseable_value"},
    ),
    "truncated last line": (_dose(1) + b"\n" + _dose(2)[:12], {2}, {3: "wrong_field_count"}),
    "last line without newline": (_dose(1) + b"\n" + _dose(2), {2, 3}, {}),
    "too many fields": (_dose(1) + b",extra\n" + _dose(2) + b"\n", {3}, {2: "wrong_field_count"}),
    "too few fields": (_dose(1)[:12] + b"\n" + _dose(2) + b"\n", {3}, {2: "wrong_field_count"}),
    "blank line": (_dose(1) + b"\n\n" + _dose(2) + b"\n", {2, 4}, {3: "wrong_field_count"}),
    "quote left open": (_dose(1, b'"P1') + b"\n" + _dose(2) + b"\n", {3}, {2: "malformed_row"}),
    "quoted newline": (
        _dose(1, b'"P\n1"') + b"\n" + _dose(2) + b"\n",
        {4},
        {2: "malformed_row", 3: "wrong_field_count"},
    ),
    "quoted comma and quotes": (_dose(1, b'"P1, ""jr"""') + b"\n", {2}, {}),
    "CRLF line endings": (_dose(1) + b"\r\n" + _dose(2) + b"\r\n", {2, 3}, {}),
    "mixed line endings": (_dose(1) + b"\r\n" + _dose(2) + b"\n" + _dose(3) + b"\r\n", {2, 3, 4}, {}),
    "binary junk": (bytes(range(256)) * 4 + b"\n" + _dose(1) + b"\n", {None}, {}),
    "header only, first load": (b"", set(), {}),  # nothing loaded before: nothing to keep
    "every record bad, first load": (b"D1,P1\n", set(), {2: "wrong_field_count"}),
}


@pytest.fixture
def doses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Ingest bytes as immunizations' doses.csv (header first); yields (ingest(bytes), connection)."""
    monkeypatch.setenv("MESH_HOME", str(tmp_path / "home"))
    run, con, source = _ingestion(tmp_path, "immunizations", "raw_doses", "sources/immunizations")

    def ingest(data: bytes | None = None, header: bytes = DOSES_HEADER + b"\n") -> Ingested:
        if data is not None:
            (source / "doses.csv").write_bytes(header + data if header else b"")
        return run()

    yield ingest, con
    con.close()


@pytest.mark.parametrize("kind", list(CSV_CASES))
def test_any_csv_bytes_are_loaded_or_quarantined_line_by_line(doses, kind: str) -> None:
    data, loaded, bad = CSV_CASES[kind]
    ingest, con = doses
    result = ingest(data)
    lines = data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)
    assert result.records_in == lines == result.loaded + result.quarantined_total, kind
    rows = [n for (n,) in con.execute("select _source_line from main.raw_doses").fetchall()]
    held = _held(con)
    if None in loaded:
        assert sorted(rows + [n for _, n in held]) == list(range(2, lines + 2)), kind
    else:
        assert set(rows) == loaded and len(rows) == len(loaded), kind
        assert {n: reason for (_, n), (reason, _) in held.items()} == bad, kind
    assert all(len(record) < 4200 * 7 for _, record in held.values()), kind  # each value bounded


def test_csv_values_keep_their_text_and_a_bom_is_no_part_of_the_header(doses) -> None:
    ingest, con = doses
    ingest(
        _dose(1, b'"P1, ""jr"""') + b"\n" + _dose(2, b"P\xc3\xa9") + b"\r\n",
        header=b"\xef\xbb\xbf" + DOSES_HEADER + b"\r\n",
    )
    assert con.execute("select patient_id from main.raw_doses order by _source_line").fetchall() == [
        ('P1, "jr"',),
        ("Pé",),
    ]


@pytest.mark.parametrize(
    ("header", "found"),
    [
        (DOSES_HEADER.replace(b"lot_id,", b""), "missing: lot_id"),
        (DOSES_HEADER + b",batch_note", "unexpected: batch_note"),
        (DOSES_HEADER.replace(b"dose_id,patient_id", b"patient_id,dose_id"), "the same columns in another order"),
        (DOSES_HEADER.replace(b"dose_id", b"Dose_ID"), "missing: dose_id; unexpected: Dose_ID"),
        (DOSES_HEADER.replace(b"site_id", b"site\xff_id"), "unexpected: site\\xff_id"),
        (DOSES_HEADER + b" ", "missing: administered_at; unexpected: 'administered_at '"),
        (b"", "Found: (none)"),
    ],
)
def test_a_changed_csv_header_fails_naming_the_columns_and_keeps_the_last_load(
    doses, header: bytes, found: str
) -> None:
    ingest, con = doses
    first = ingest(_dose(1) + b"\n" + _dose(1) + b"\n")
    assert (first.loaded, first.quarantined) == (1, {"duplicate_key": 1})
    with pytest.raises(SourceFormatError) as raised:
        ingest(_dose(7) + b"\n", header=header + b"\n" if header else b"")
    message = str(raised.value)
    assert message.startswith("immunizations.raw_doses: sources/immunizations/doses.csv ")
    assert (
        "Expected columns: dose_id, patient_id, site_id, lot_id, vaccine_code, dose_number, administered_at." in message
    )
    assert found in message and "\n" not in message
    # nothing replaced: the last load and its quarantine stay
    assert con.execute("select dose_id, _source_line from main.raw_doses").fetchall() == [("D1", 2)]
    assert [(n, reason) for (_, n), (reason, _) in _held(con).items()] == [(3, "duplicate_key")]


@pytest.mark.parametrize(
    ("data", "found"),
    [
        (b"", "has its header and no records."),
        (b"\n", "has no record that could be loaded: all 1 were quarantined (wrong_field_count: 1 (first at line 2))."),
        (
            _dose(1).replace(b",1,", b",one,") + b"\n" + b"D2,P2\n" + _dose(3).replace(b",1,", b",x,") + b"\n",
            "all 3 were quarantined (unparseable_value: 2 (first at line 2), wrong_field_count: 1 (first at line 3))",
        ),
    ],
    ids=["header only", "blank line only", "every record bad"],
)
def test_an_extract_with_no_record_to_load_fails_and_keeps_the_last_load(doses, data: bytes, found: str) -> None:
    """A source system that sends an empty or wholly broken full extract does not empty the product
    an earlier extract loaded (a first load may be empty: `test_any_csv_bytes_...`)."""
    ingest, con = doses
    first = ingest(_dose(1) + b"\n" + _dose(1) + b"\n")
    assert (first.loaded, first.quarantined) == (1, {"duplicate_key": 1})
    with pytest.raises(SourceFormatError) as raised:
        ingest(data)
    message = str(raised.value)
    assert message.startswith("immunizations.raw_doses: sources/immunizations/doses.csv ") and "\n" not in message
    assert found in message and "Nothing of it was loaded" in message
    assert con.execute("select dose_id, _source_line from main.raw_doses").fetchall() == [("D1", 2)]
    assert [(n, reason) for (_, n), (reason, _) in _held(con).items()] == [(3, "duplicate_key")]


@pytest.mark.parametrize("kind", ["link to a device", "link to a file", "pipe", "directory"])
def test_an_extract_that_is_no_regular_file_is_refused_before_it_is_read(doses, tmp_path: Path, kind: str) -> None:
    """A link may point anywhere and a device or pipe may never end (a link to /dev/zero hung the
    step): only a regular file is read, and the last load stays."""
    ingest, con = doses
    ingest(_dose(1) + b"\n")
    extract = tmp_path / "home" / "sources" / "immunizations" / "doses.csv"
    extract.unlink()
    if kind == "link to a device":
        extract.symlink_to("/dev/zero")
    elif kind == "link to a file":
        (tmp_path / "elsewhere.csv").write_bytes(DOSES_HEADER + b"\n" + _dose(2) + b"\n")
        extract.symlink_to(tmp_path / "elsewhere.csv")
    elif kind == "pipe":
        os.mkfifo(extract)
    else:
        extract.mkdir()
    with pytest.raises(SourceFormatError, match="not a regular file") as raised:
        ingest()
    assert str(raised.value).startswith("immunizations.raw_doses: sources/immunizations/doses.csv is ")
    assert con.execute("select dose_id from main.raw_doses").fetchall() == [("D1",)]


def test_bad_files_in_a_batch_hold_back_neither_their_good_lines_nor_other_files(ingest, tmp_path: Path) -> None:
    batch, con = ingest
    landing = tmp_path / "home" / "landing" / "appointments"
    files = {
        "a.jsonl": LANDING_CASES["mixed line endings"][0],
        "b.jsonl": LANDING_CASES["invalid UTF-8"][0].replace(b"G", b"B"),
        "c.jsonl": LANDING_CASES["bare CR in a string"][0].replace(b"G", b"C"),
        "d.jsonl": (_event("D1") + "\n").encode(),
    }
    for name, data in files.items():
        (landing / name).write_bytes(data)
    result = batch()
    assert (result.records_in, result.loaded, result.quarantined) == (
        10,
        8,
        {"invalid_encoding": 1, "malformed_json": 1},
    )
    stored = con.execute("select _source_file[-7:], _source_line from main.appointment_events order by all")
    assert stored.fetchall() == [
        ("a.jsonl", 1),
        ("a.jsonl", 2),
        ("a.jsonl", 3),
        ("b.jsonl", 1),
        ("b.jsonl", 3),
        ("c.jsonl", 1),
        ("c.jsonl", 3),
        ("d.jsonl", 1),
    ]


# --- through `mesh run`: what an operator sees ---------------------------------------------------


def _current(home: Path, ref: str) -> dict:
    domain, product = ref.split(".")
    return json.loads((home / "products" / domain / product / "current.json").read_text())


@pytest.mark.slow
def test_hostile_sources_through_mesh_run(tmp_path: Path) -> None:
    """A changed CSV header fails its domain's run with the extract and columns named, and the
    published product stays current; hostile landing lines are quarantined with file and line, the
    run succeeds, and neither alerts nor quarantine carry a raw line's unbounded text; a raw line
    of a domain with pii is masked for readers other than its owner."""
    from tests.conftest import E2E_SCALE, TEST_MASKING_KEY, MaterializedMesh, copy_project

    mm = MaterializedMesh(copy_project(tmp_path / "project"), tmp_path / "home")
    mm.home.mkdir()
    (mm.home / "masking.key").write_text(TEST_MASKING_KEY)
    mm.mesh("seed", "--scale", E2E_SCALE, check=True)
    mm.mesh("run", "--domain", "patients", check=True)
    ref = "patients.patient_accounts"
    published = _current(mm.home, ref)
    rows = mm.mesh("read", ref, "--as", "patients", "--limit", "0", "--json", check=True).stdout

    extract = mm.home / "sources" / "patients" / "patients.csv"
    original = extract.read_bytes()
    header, body = original.split(b"\n", 1)
    extract.write_bytes(header.replace(b'"email"', b'"e_mail"') + b"\n" + body)
    run = mm.mesh("run", "--domain", "patients")
    assert run.returncode == 1
    said = run.stdout + run.stderr
    assert "patients.raw_patients: sources/patients/patients.csv has a header that is not the expected columns." in said
    assert "(missing: email; unexpected: e_mail)" in said
    assert "Invalid Input Error" not in said and "_duckdb" not in said
    assert _current(mm.home, ref) == published  # consumers keep reading the last good version
    assert mm.mesh("read", ref, "--as", "patients", "--limit", "0", "--json", check=True).stdout == rows

    extract.write_bytes(header + b"\n")  # truncated to its header by the source system
    run = mm.mesh("run", "--domain", "patients")
    said = run.stdout + run.stderr
    assert run.returncode == 1 and said.count("sources/patients/patients.csv has its header and no records") == 1
    assert _current(mm.home, ref) == published

    secret = "patient-secret@example.org"
    ragged = f"P9999999,Ann,Lee,{secret},555\n".encode()
    extract.write_bytes(original + ragged + b"P9999998,\xff\n")
    mm.mesh("run", "--domain", "patients", check=True)
    lines = original.count(b"\n")
    masked = json.loads(mm.mesh("quarantine", ref, "--json", check=True).stdout)
    owner = json.loads(mm.mesh("quarantine", ref, "--as", "patients", "--json", check=True).stdout)
    by_line = {r["source_line"]: r for r in owner}
    assert by_line[lines + 1]["reason"] == "wrong_field_count" and secret in by_line[lines + 1]["record"]
    assert by_line[lines + 2]["reason"] == "invalid_encoding" and "P9999998,\\\\xff" in by_line[lines + 2]["record"]
    assert not [r for r in masked if secret in r["record"]]  # a raw line is masked whole where pii may be in it

    marker = "RAW-LINE-TEXT"
    landing = mm.home / "landing" / "appointments"
    hostile = [
        f'{{"event_id": "X1", "note": "{marker}\xff"}}'.encode("latin-1"),  # invalid UTF-8
        b'{"event_id": "X2", "note": "' + marker.encode() * 300_000 + b'"}',  # 3.9 MB
        f'{{"event_id": "X3", "note": "{marker}\r"}}'.encode(),  # a bare CR in a string
    ]
    (landing / "zz-hostile.jsonl").write_bytes(b"\n".join(hostile) + b"\n")
    mm.mesh("run", "--domain", "scheduling", check=True)
    held = [
        r
        for r in json.loads(mm.mesh("quarantine", "--json", check=True).stdout)
        if r["source_file"] == "landing/appointments/zz-hostile.jsonl"
    ]
    assert [(r["source_line"], r["reason"]) for r in held] == [
        (1, "invalid_encoding"),
        (2, "line_too_long"),
        (3, "malformed_json"),
    ]
    assert all(len(r["record"]) < 4200 for r in held)
    assert f"({len(hostile[1])} bytes)" in held[1]["record"]
    alerts = (mm.home / "alerts" / "alerts.jsonl").read_text()
    assert marker not in alerts and secret not in alerts
    assert "sources/patients/patients.csv has a header that is not the expected columns" in alerts


CSV_EXTRACTS = [
    ("patients", "raw_patients", "patients.csv"),
    ("pharmacy", "raw_sites", "sites.csv"),
    ("pharmacy", "raw_vaccine_lots", "vaccine_lots.csv"),
    ("immunizations", "raw_doses", "doses.csv"),
    ("immunizations", "raw_test_results", "test_results.csv"),
]


@pytest.mark.parametrize(("domain", "asset", "file"), CSV_EXTRACTS)
def test_every_csv_extract_quarantines_hostile_lines_among_its_seeded_defects(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, domain: str, asset: str, file: str
) -> None:
    """The seeded extract (with its recorded defects) plus one line of each hostile kind and a
    truncated last line: each line loaded or quarantined where it is, with its reason."""
    from devtools.seed.generate import seed

    monkeypatch.setenv("MESH_HOME", str(tmp_path / "home"))
    report = seed(tmp_path / "seeded", scale=0.01)
    rel = f"sources/{domain}/{file}"
    seeded = (tmp_path / "seeded" / rel).read_bytes()
    first_row = seeded.split(b"\n")[1]
    hostile = {
        b"\xff" + first_row: "invalid_encoding",
        first_row.replace(b",", b",\x00", 1): "control_character",
        first_row.replace(b",", b",\r", 1): "control_character",
        first_row + b"," + b"x" * LONG: "line_too_long",
        first_row + b",extra": "wrong_field_count",
        b"": "wrong_field_count",
        b'"unclosed' + first_row: "malformed_row",
    }
    lines, shift = seeded.count(b"\n"), len(hostile)  # the hostile lines go in after line 3
    expected = {
        (line if line <= 3 else line + shift): kind
        for kind, defect in report["files"][rel]["defects"].items()
        for line in defect["lines"]
    }
    expected |= {4 + i: reason for i, reason in enumerate(hostile.values())}
    expected[lines + shift + 1] = "wrong_field_count"  # a truncated last line
    run, con, source = _ingestion(tmp_path, domain, asset, f"sources/{domain}")
    head = b"\n".join(seeded.split(b"\n")[:3])
    tail = seeded[len(head) + 1 :]
    (source / file).write_bytes(
        head + b"\n" + b"\n".join(hostile) + b"\n" + tail + b",".join(first_row.split(b",")[:3])
    )
    result = run()
    records = lines - 1 + shift + 1
    assert result.records_in == records == result.loaded + result.quarantined_total
    assert {n: reason for (f, n), (reason, _) in _held(con).items() if f == rel} == expected
    assert con.execute(f"select count(*) from main.{asset}").fetchone() == (records - len(expected),)
    con.close()


def test_blank_keys_values_of_the_wrong_json_type_and_zoned_times_are_quarantined(ingest) -> None:
    """What a careless source sends and a cast would load wrong: a blank id, an object or a boolean
    as a value (its JSON text would load), a time with an offset or zone (a cast drops it: 09:00+05:00
    would load as 09:00) or `infinity`. A UTC mark (`Z`, `+00:00`) is the same time and loads."""

    def event(key: str, **fields: object) -> str:
        return json.dumps({**json.loads(_event(key)), **fields})

    batch, con = ingest
    result = batch(
        "b1.jsonl",
        (
            event("K1", appointment_id="  "),
            event(" "),
            event("K3", event_id={"x": 1}),
            event("K4", site_id=["S1"]),
            event("K5", patient_id=True),
            event("K6", event_time="2021-03-01T09:00:00+05:00"),
            event("K7", event_time="2021-03-01T09:00:00 America/New_York"),
            event("K8", scheduled_for="infinity"),
            event("K9", event_time="2021-03-01T04:00:00Z"),
            event("K10", event_time="2021-03-01T04:00:00+00:00"),
        ),
    )
    assert result.loaded == 2
    held = con.execute("select source_line, reason from quarantine.records order by 1").fetchall()
    assert held == [
        (1, "null_key"),
        (2, "null_key"),
        (3, "wrong_type"),
        (4, "wrong_type"),
        (5, "wrong_type"),
        (6, "unparseable_value"),
        (7, "unparseable_value"),
        (8, "unparseable_value"),
    ]
    times = con.execute("select event_id, event_time from main.appointment_events order by 1").fetchall()
    assert [str(t) for _, t in times] == ["2021-03-01 04:00:00", "2021-03-01 04:00:00"]


def test_a_path_that_is_not_what_it_should_be_is_not_retried() -> None:
    """Retrying cannot fix a directory where a file is expected: the step fails at once, naming it;
    a disk or lock hiccup is still retried."""
    assert not is_transient(IsADirectoryError(21, "Is a directory", "sources/pharmacy/sites.csv"))
    assert not is_transient(NotADirectoryError(20, "Not a directory"))
    assert not is_transient(OSError(errno.ELOOP, "Too many levels of symbolic links"))
    assert is_transient(OSError("I/O error: temporary disk hiccup"))
    assert is_transient(OSError(errno.EIO, "Input/output error"))
