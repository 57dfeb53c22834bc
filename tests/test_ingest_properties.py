"""Property-based tests of ingestion (Hypothesis): generated landing files and CSV extracts, arbitrary
bytes included, through the real ingestion functions on a real DuckDB file. Whatever the bytes: no
exception escapes (but the named `SourceFormatError` of a CSV header that is not the expected one),
every record is a line, records in = loaded + quarantined, every quarantined record names its file
and a line of it, and every loaded record holds what that line says (line numbers are exact)."""

from __future__ import annotations

import csv
import itertools
import json
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mesh_platform.defs.domain_definitions import _asset_fns, _import_domain_code
from mesh_platform.project.locations import MeshProject
from mesh_platform.project.mesh import Mesh
from mesh_platform.sdk import AssetContext, Ingested
from mesh_platform.sdk.ingest import SourceFormatError

ROOT = Path(__file__).resolve().parents[1]
PROPERTY = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

# bytes that trouble line-oriented readers, mixed into generated lines
TROUBLE = [
    b"\r",
    b"\r\n",
    b"\x00",
    b"\x01",
    b"\xff",
    b"\xc3",
    b"\xef\xbb\xbf",
    b'"',
    b",",
    b'""',
    b"\\",
    b" ",
    b"{",
    b"}",
]


def _lines(data: bytes) -> list[bytes]:
    """A file's lines, split here independently of the code under test: at `\\n`, a `\\r` before it
    not part of the line, a UTF-8 BOM at the start of the file neither."""
    if not data:
        return []
    parts = data.removeprefix(b"\xef\xbb\xbf").split(b"\n")
    if data.endswith(b"\n"):
        parts.pop()
    return [p.removesuffix(b"\r") for p in parts]


def _file(lines: st.SearchStrategy[bytes]) -> st.SearchStrategy[bytes]:
    """A file of such lines, with or without a final newline, maybe a BOM, maybe CRLF endings."""
    return st.builds(
        lambda body, bom, crlf, final: (
            (b"\xef\xbb\xbf" if bom else b"")
            + (b"\r\n" if crlf else b"\n").join(body)
            + ((b"\r\n" if crlf else b"\n") if final and body else b"")
        ),
        st.lists(lines, max_size=12),
        st.booleans(),
        st.booleans(),
        st.booleans(),
    )


def _soup(tokens: list[bytes]) -> st.SearchStrategy[bytes]:
    return st.lists(st.sampled_from(tokens + TROUBLE), max_size=14).map(b"".join)


class Warehouse:
    """One domain's ingestion on one real DuckDB file, kept open across a test's examples (each
    example writes files of its own names)."""

    def __init__(self, home: Path, domain: str, asset: str) -> None:
        self.home, self.examples = home, itertools.count()
        self.mesh = Mesh.load(MeshProject.discover(ROOT))
        (self.fn,) = [f for f in _asset_fns(_import_domain_code(self.mesh, domain)) if f.name == asset]
        self.con = duckdb.connect(str(home / f"{domain}.duckdb"))
        self.domain = domain

    def ingest(self, run_id: str) -> Ingested:
        fn = self.fn
        return fn(
            AssetContext(
                self.domain, fn.name, self.con, self.mesh.project.home.path, fn.reads, run_id, landing=fn.landing
            )
        )


@pytest.fixture
def warehouse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Iterator[Warehouse]:
    monkeypatch.setenv("MESH_HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    domain, asset = request.param
    w = Warehouse(tmp_path / "home", domain, asset)
    yield w
    w.con.close()


# --- the event stream ---------------------------------------------------------------------------

EVENT_IDS = ["E1", "E2", "E3"]


def _event_line(event_id: str | None, event_type: str, service: str, time: str, spaced: bool) -> bytes:
    event = {
        "event_id": event_id,
        "appointment_id": f"A-{event_id}",
        "patient_id": "P1",
        "site_id": "S1",
        "service": service,
        "event_type": event_type,
        "event_time": time,
        "scheduled_for": None,
    }
    return json.dumps(event, separators=(", ", ": ") if spaced else (",", ":")).encode()


EVENT_LINES = st.one_of(
    st.builds(
        _event_line,
        st.sampled_from([*EVENT_IDS, None]),
        st.sampled_from(["booked", "cancelled", "teleported"]),
        st.sampled_from(["test", "vaccination", "te\u00e9st"]),
        st.sampled_from(["2021-03-01T09:00:00", "2021-03-01 09:00:00", "not a time"]),
        st.booleans(),
    ),
    _soup([b'{"event_id": "E1"}', b'"event_id"', b":", b"null", b"[1]", b"E1"]),
    st.binary(max_size=30),
    st.sampled_from([b"", b"\t \t", b"", b"\t \t", b"{" + b"x" * 2_000_001]),  # a line over 2 MB, now and then
)


@pytest.mark.parametrize("warehouse", [("scheduling", "appointment_events")], indirect=True)
@PROPERTY
@given(batches=st.lists(st.lists(_file(EVENT_LINES), min_size=1, max_size=3), min_size=1, max_size=2))
def test_any_landing_files_are_ingested_line_by_line(warehouse: Warehouse, batches: list[list[bytes]]) -> None:
    """Batches of files into one warehouse: events of earlier examples and batches stay stored, so
    redeliveries and conflicts with stored events are generated too."""
    landing = warehouse.home / "landing" / "appointments"
    landing.mkdir(parents=True, exist_ok=True)
    con, example = warehouse.con, next(warehouse.examples)
    for number, files in enumerate(batches):
        written: dict[str, list[bytes]] = {}
        for i, data in enumerate(files):
            name = f"x{example}-b{number}-{i}.jsonl"
            (landing / name).write_bytes(data)
            written[f"landing/appointments/{name}"] = _lines(data)
        result = warehouse.ingest(f"run-{example}-{number}")
        lines = sum(len(v) for v in written.values())
        assert result.records_in == lines == result.loaded + result.quarantined_total

        held = con.execute(
            "select source_file, source_line, reason, cast(record as varchar) from quarantine.records where run_id = ?",
            [f"run-{example}-{number}"],
        ).fetchall()
        assert len(held) == result.quarantined_total
        for file, line, reason, record in held:
            assert file in written and 1 <= line <= len(written[file]), (file, line)
            assert len(record) < 4200 * 9  # bounded: a line, or the fields of a conflicting event
            if reason == "invalid_encoding":
                with pytest.raises(UnicodeDecodeError):
                    written[file][line - 1].decode()
        stored = con.execute(
            "select _source_file, _source_line, event_id from main.appointment_events where _source_file in "
            "(select unnest(?))",
            [list(written)],
        ).fetchall()
        assert not {(f, n) for f, n, _ in stored} & {(f, n) for f, n, _, _ in held}
        for file, line, event_id in stored:  # the line it names is the event
            assert json.loads(written[file][line - 1])["event_id"] == event_id
        distinct = con.execute("select count(distinct event_id) = count(*) from main.appointment_events")
        assert distinct.fetchone() == (True,)


# --- CSV extracts -------------------------------------------------------------------------------

DOSE_COLUMNS = ["dose_id", "patient_id", "site_id", "lot_id", "vaccine_code", "dose_number", "administered_at"]
HEADER = ",".join(DOSE_COLUMNS).encode()


def _row(values: list[bytes]) -> bytes:
    return b",".join(values)


CSV_LINES = st.one_of(
    st.builds(
        lambda *values: _row(list(values)),
        st.sampled_from([b"D1", b"D2", b"D3", b""]),
        st.sampled_from([b"P1", b'"P1, jr"', b'"say ""hi"""', b"P\xc3\xa9", b"P\xff", b'"P\n1"', b"P\x00"]),
        st.sampled_from([b"S1", b""]),
        st.sampled_from([b"L1"]),
        st.sampled_from([b"207", b"999", b'"208"']),
        st.sampled_from([b"1", b"two", b""]),
        st.sampled_from([b"2021-03-01 09:00:00", b"2031-01-01 00:00:00", b"31/02/2021"]),
    ),
    _soup([b"D1", b"P1", b"207", b"1", b"2021-03-01 09:00:00", b",,,,,,"]),
    st.binary(max_size=30),
    st.sampled_from([b"", b"", b"", b"D9,P9,S9,L9,207,1," + b"9" * 2_000_001]),
)
HEADERS = st.one_of(
    st.just(HEADER),
    st.just(HEADER),
    st.just(HEADER),
    st.just(b"\xef\xbb\xbf" + HEADER),
    st.sampled_from([HEADER.replace(b"lot_id,", b""), HEADER + b",extra", b"", HEADER.upper(), HEADER + b"\r"]),
    st.binary(max_size=20),
)


@pytest.mark.parametrize("warehouse", [("immunizations", "raw_doses")], indirect=True)
@PROPERTY
@given(header=HEADERS, body=_file(CSV_LINES))
def test_any_csv_extract_is_ingested_line_by_line_or_refused_by_its_header(
    warehouse: Warehouse, header: bytes, body: bytes
) -> None:
    source = warehouse.home / "sources" / "immunizations"
    source.mkdir(parents=True, exist_ok=True)
    data = header + b"\n" + body
    (source / "doses.csv").write_bytes(data)
    lines = _lines(data)
    con = warehouse.con
    try:
        result = warehouse.ingest("run-1")
    except SourceFormatError as refused:
        message = str(refused)
        assert message.startswith("immunizations.raw_doses: sources/immunizations/doses.csv ")
        if lines[0] == HEADER:  # a right header: refused only when no record could be loaded
            records = len(lines) - 1
            assert (
                ("has its header and no records" in message) if records == 0 else (f"all {records:,} were" in message)
            )
        return
    assert lines[0] == HEADER
    assert result.records_in == len(lines) - 1 == result.loaded + result.quarantined_total
    held = con.execute("select source_file, source_line, reason, cast(record as varchar) from quarantine.records")
    held_lines = set()
    for file, line, _, record in held.fetchall():
        assert file == "sources/immunizations/doses.csv" and 2 <= line <= len(lines), (file, line)
        assert len(record) < 4200 * 8
        held_lines.add(line)
    loaded = con.execute(f"select _source_line, {', '.join(DOSE_COLUMNS[:5])} from main.raw_doses").fetchall()
    assert len(held_lines) == result.quarantined_total and len(loaded) == result.loaded
    for line, *values in loaded:  # the line it names holds these values
        assert line not in held_lines
        parsed = next(csv.reader([lines[line - 1].decode()], strict=True))
        assert [v or None for v in parsed[:5]] == values
