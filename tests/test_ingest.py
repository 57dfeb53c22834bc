"""Ingestion on a real DuckDB file: every source record is loaded once or quarantined with its file,
line and reason: CSV extracts (`ingest_csv`, e.g. immunizations.raw_doses) and the event stream
(scheduling.appointment_events) across batches."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from mesh_platform.defs.domain import _asset_fns, _import_domain_code
from mesh_platform.mesh import Mesh
from mesh_platform.project import MeshProject
from mesh_platform.sdk import AssetContext, Ingested

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


@pytest.fixture
def ingest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("MESH_HOME", str(tmp_path / "home"))
    mesh = Mesh.load(MeshProject.discover(ROOT))
    (fn,) = [f for f in _asset_fns(_import_domain_code(mesh, "scheduling")) if f.name == "appointment_events"]
    landing = tmp_path / "home" / "landing" / "appointments"
    landing.mkdir(parents=True)
    con = duckdb.connect(str(tmp_path / "scheduling.duckdb"))

    def batch(name: str | None = None, lines: tuple[str, ...] = ()) -> Ingested:
        if name:
            (landing / name).write_text("\n".join(lines) + "\n")
        return fn(
            AssetContext("scheduling", fn.name, con, mesh.project.home.path, fn.reads, "run-1", landing=fn.landing)
        )

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
