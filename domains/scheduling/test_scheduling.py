"""What the scheduling team asserts about `appointments`, on its real code and a small warehouse of its own.

Appointment events arrive as JSON-lines files, late, out of order and sometimes twice; the product is
the current state of every appointment, folded from its events by event time.
"""

import json
from pathlib import Path

import pytest

from mesh_platform.scaffold.testing import DomainWorkbench

ROOT = Path(__file__).resolve().parents[2]
LANDING = "appointments"


def event(event_id: str, appointment: str, event_type: str, at: str, scheduled_for: str | None = None) -> str:
    return json.dumps(
        {
            "event_id": event_id,
            "appointment_id": appointment,
            "patient_id": f"P-{appointment}",
            "site_id": "S0001",
            "service": "vaccination",
            "event_type": event_type,
            "event_time": at,
            "scheduled_for": scheduled_for,
        }
    )


# the first batch: A1's outcome arrives before its booking; A2 is booked then cancelled; a malformed
# line and an unknown event type are held back; E7 is delivered twice within the batch
FIRST = [
    event("E3", "A1", "completed", "2024-06-12T10:05:00"),
    event("E1", "A1", "booked", "2024-06-01T09:00:00", "2024-06-10T10:00:00"),
    event("E4", "A2", "booked", "2024-06-02T09:00:00", "2024-06-09T11:00:00"),
    '{"event_id": "E5", "appointment_id": ',
    event("E6", "A2", "cancelled", "2024-06-03T12:00:00"),
    event("E7", "A3", "booked", "2024-06-04T08:00:00", "2024-06-20T09:30:00"),
    event("E7", "A3", "booked", "2024-06-04T08:00:00", "2024-06-20T09:30:00"),
    event("E8", "A3", "teleported", "2024-06-05T08:00:00"),
]
# the second batch, later: A1's reschedule arrives late (its event time is before the outcome), and
# A3 is rescheduled twice
SECOND = [
    event("E2", "A1", "rescheduled", "2024-06-05T15:00:00", "2024-06-12T10:00:00"),
    event("E9", "A3", "rescheduled", "2024-06-06T08:00:00", "2024-06-21T09:30:00"),
    event("E10", "A3", "rescheduled", "2024-06-07T08:00:00", "2024-06-22T09:30:00"),
]


def first_batch_built(workdir: Path) -> DomainWorkbench:
    wb = DomainWorkbench(ROOT, "scheduling", workdir)
    wb.landing(LANDING, "batch-0001.jsonl", "\n".join(FIRST) + "\n")
    wb.build()
    return wb


@pytest.fixture(scope="module")
def scheduling(tmp_path_factory: pytest.TempPathFactory) -> DomainWorkbench:
    return first_batch_built(tmp_path_factory.mktemp("scheduling"))


def appointments(wb: DomainWorkbench) -> dict[str, dict]:
    return {a["appointment_id"]: a for a in wb.rows("appointments")}


def test_the_product_has_the_declared_columns_and_types(scheduling: DomainWorkbench) -> None:
    assert scheduling.schema("appointments") == scheduling.declared_schema("appointments")


def test_status_follows_the_latest_event_by_event_time_not_arrival(scheduling: DomainWorkbench) -> None:
    first = appointments(scheduling)
    assert {a: first[a]["status"] for a in first} == {"A1": "completed", "A2": "cancelled", "A3": "booked"}
    assert str(first["A1"]["booked_at"]) == "2024-06-01 09:00:00"  # its booking arrived after its outcome
    assert str(first["A1"]["updated_at"]) == "2024-06-12 10:05:00"


def test_malformed_and_unknown_events_are_quarantined_with_file_and_line(scheduling: DomainWorkbench) -> None:
    held = scheduling.quarantined("appointment_events")
    assert [(r["source_line"], r["reason"]) for r in held] == [(4, "malformed_json"), (8, "unknown_code")]
    assert all(r["source_file"] == f"landing/{LANDING}/batch-0001.jsonl" for r in held)
    assert held[0]["record"]["line"] == FIRST[3]  # the raw line, for the booking system to fix


def test_each_event_is_stored_once(scheduling: DomainWorkbench) -> None:
    ids = [r["event_id"] for r in scheduling.rows("appointment_events")]
    assert sorted(ids) == sorted(set(ids)) and "E7" in ids


def test_late_and_redelivered_events_fold_into_the_current_state(tmp_path: Path) -> None:
    scheduling = first_batch_built(tmp_path)
    cancelled = appointments(scheduling)["A2"]
    scheduling.landing(LANDING, "batch-0002.jsonl", "\n".join(SECOND) + "\n")
    # the first batch delivered again under another name: nothing new, nothing quarantined
    scheduling.landing(LANDING, "batch-0001-redelivered.jsonl", "\n".join(FIRST) + "\n")
    events_before = len(scheduling.rows("appointment_events"))
    ingested = scheduling.run("appointment_events")
    scheduling.run("appointments")

    assert len(scheduling.rows("appointment_events")) == events_before + len(SECOND)
    assert ingested.quarantined == {"malformed_json": 1, "unknown_code": 1}  # the redelivered bad lines, again
    now = appointments(scheduling)
    # A1: the late reschedule moved its date and counts, but the outcome stays the latest event
    assert now["A1"]["status"] == "completed"
    assert str(now["A1"]["scheduled_for"]) == "2024-06-12 10:00:00"
    assert now["A1"]["reschedule_count"] == 1
    # A3: rescheduled twice; scheduled for the latest reschedule's date
    assert (now["A3"]["status"], now["A3"]["reschedule_count"]) == ("rescheduled", 2)
    assert str(now["A3"]["scheduled_for"]) == "2024-06-22 09:30:00"
    assert now["A2"] == cancelled  # nothing new about A2: the redelivered file changed nothing


def test_an_ingestion_with_nothing_new_changes_nothing(scheduling: DomainWorkbench) -> None:
    before = scheduling.rows("appointment_events")
    ingested = scheduling.run("appointment_events")
    assert ingested.records_in == 0 and ingested.files == []
    assert scheduling.rows("appointment_events") == before


def test_history_is_consistent_with_itself(scheduling: DomainWorkbench) -> None:
    """What the domain's `appointment_lifecycle` suite checks in a run, on this history."""
    for a in scheduling.rows("appointments"):
        assert a["updated_at"] >= a["booked_at"], a
        assert 0 <= a["reschedule_count"] <= 10, a
