"""What the site-ops team asserts about `site_daily_capacity`, on its real code and a small warehouse.

It reads four products of three domains through the governed read; here they are published with a
handful of rows each, typed as their producers declare them.
"""

from pathlib import Path

import pytest

from mesh_platform.scaffold.testing import DomainWorkbench

ROOT = Path(__file__).resolve().parents[2]


def appointment(appointment_id: str, site: str, status: str, scheduled_for: str | None) -> dict:
    return {
        "appointment_id": appointment_id,
        "patient_id": "P1",
        "site_id": site,
        "service": "vaccination",
        "status": status,
        "scheduled_for": scheduled_for,
        "booked_at": "2024-06-01 08:00:00",
        "updated_at": "2024-06-01 08:00:00",
        "reschedule_count": 0,
    }


@pytest.fixture(scope="module")
def site_ops(tmp_path_factory: pytest.TempPathFactory) -> DomainWorkbench:
    wb = DomainWorkbench(ROOT, "site_operations", tmp_path_factory.mktemp("site_operations"))
    wb.publish(
        "pharmacy.sites",
        [
            {"site_id": "S1", "site_name": "Main", "zip": "02134", "state": "MA", "daily_capacity": 4},
            {"site_id": "S2", "site_name": "Harbor", "zip": "98101", "state": "WA", "daily_capacity": 50},
            {"site_id": "S3", "site_name": "Quiet", "zip": "60601", "state": "IL", "daily_capacity": 10},
        ],
    )
    wb.publish(
        "scheduling.appointments",
        [
            appointment("A1", "S1", "completed", "2024-06-10 09:00:00"),
            appointment("A2", "S1", "no_show", "2024-06-10 10:00:00"),
            appointment("A3", "S1", "cancelled", "2024-06-10 11:00:00"),
            appointment("A4", "S1", "booked", "2024-06-11 09:00:00"),
            appointment("A5", "S2", "booked", None),  # not scheduled yet: no day to count it on
            appointment("A6", "S9", "booked", "2024-06-10 09:00:00"),  # a site the register does not know
        ],
    )
    wb.publish(
        "immunizations.administered_doses",
        [
            {"dose_id": "D1", "site_id": "S1", "dose_number": 1, "administered_at": "2024-06-10 09:10:00"},
            {"dose_id": "D2", "site_id": "S2", "dose_number": 2, "administered_at": "2024-06-12 14:00:00"},
        ],
    )
    wb.publish(
        "immunizations.test_results",
        [{"test_id": "T1", "site_id": "S2", "result": "negative", "collected_at": "2024-06-12 15:00:00"}],
    )
    wb.build()
    return wb


def by_site_day(wb: DomainWorkbench) -> dict[tuple[str, str], dict]:
    return {(r["site_id"], str(r["day"])): r for r in wb.rows("site_daily_capacity")}


def test_the_product_has_the_declared_columns_and_types(site_ops: DomainWorkbench) -> None:
    assert site_ops.schema("site_daily_capacity") == site_ops.declared_schema("site_daily_capacity")


def test_one_row_per_known_site_and_day_with_any_activity(site_ops: DomainWorkbench) -> None:
    rows = site_ops.rows("site_daily_capacity")
    keys = [(r["site_id"], str(r["day"])) for r in rows]
    assert len(keys) == len(set(keys))
    # S3 had nothing to do, S9 is not a site of the register, A5 has no date yet
    assert sorted(keys) == [("S1", "2024-06-10"), ("S1", "2024-06-11"), ("S2", "2024-06-12")]


def test_appointments_are_counted_on_their_day_by_outcome(site_ops: DomainWorkbench) -> None:
    day = by_site_day(site_ops)[("S1", "2024-06-10")]
    assert (day["appointments"], day["completed"], day["no_shows"], day["cancelled"]) == (3, 1, 1, 1)
    assert (day["doses_administered"], day["tests_collected"]) == (1, 0)


def test_utilization_is_appointments_over_the_sites_capacity(site_ops: DomainWorkbench) -> None:
    rows = by_site_day(site_ops)
    assert rows[("S1", "2024-06-10")]["utilization"] == 0.75  # 3 of 4
    assert rows[("S1", "2024-06-11")]["utilization"] == 0.25
    # a day with doses and tests but no appointments is there, with nothing booked against capacity
    assert (rows[("S2", "2024-06-12")]["utilization"], rows[("S2", "2024-06-12")]["daily_capacity"]) == (0, 50)
    assert rows[("S2", "2024-06-12")]["tests_collected"] == 1
