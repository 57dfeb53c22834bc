"""What the patient-experience team asserts about `patient_journey`, on its real dbt project
(`dbt_projects/patient_360`) and a small warehouse of its own. The four products it reads are
published beside it and reach it through the governed read, masked as their producers grant.
"""

from pathlib import Path

import pytest

from mesh_platform.scaffold.testing import DomainWorkbench

ROOT = Path(__file__).resolve().parents[2]


def account(patient_id: str, email: str, born: str) -> dict:
    return {"patient_id": patient_id, "email": email, "date_of_birth": born, "state": "MA", "age_band": "18-49"}


def appointment(appointment_id: str, patient_id: str, status: str) -> dict:
    return {"appointment_id": appointment_id, "patient_id": patient_id, "status": status, "site_id": "S1"}


# (patient, status) of appointments A1, A2, ...
APPOINTMENTS = [("P1", "completed"), ("P1", "completed"), ("P3", "booked"), ("P4", "completed"), ("P4", "no_show")]
APPOINTMENTS.append(("P6", "rescheduled"))


@pytest.fixture(scope="module")
def patient_360(tmp_path_factory: pytest.TempPathFactory) -> DomainWorkbench:
    wb = DomainWorkbench(ROOT, "patient_360", tmp_path_factory.mktemp("patient_360"))
    wb.publish(
        "patients.patient_accounts",
        [
            account("P1", "ada@example.com", "1990-05-17"),
            account("P2", "alan@example.com", "1985-01-02"),
            account("P3", "grace@example.com", "1970-12-09"),
            account("P4", "edsger@example.com", "1960-07-01"),
            account("P5", "barbara@example.com", "2001-03-03"),
            account("P6", "ada@example.com", "1999-09-09"),  # shares P1's address
        ],
    )
    wb.publish(
        "scheduling.appointments",
        [appointment(f"A{i}", patient, status) for i, (patient, status) in enumerate(APPOINTMENTS, start=1)],
    )
    wb.publish(
        "immunizations.administered_doses",
        [
            {"dose_id": "D1", "patient_id": "P1", "dose_number": 1, "administered_at": "2024-01-10 10:00:00"},
            {"dose_id": "D2", "patient_id": "P1", "dose_number": 2, "administered_at": "2024-02-10 10:00:00"},
            {"dose_id": "D3", "patient_id": "P2", "dose_number": 1, "administered_at": "2024-03-10 10:00:00"},
        ],
    )
    wb.publish(
        "immunizations.test_results",
        [
            {"test_id": "T1", "patient_id": "P4", "result": "negative", "collected_at": "2024-05-01 09:00:00"},
            # earlier: not the latest result
            {"test_id": "T2", "patient_id": "P4", "result": "positive", "collected_at": "2024-04-01 09:00:00"},
        ],
    )
    wb.build()
    return wb


def journeys(wb: DomainWorkbench) -> dict[str, dict]:
    return {j["patient_id"]: j for j in wb.rows("patient_journey")}


def test_the_product_has_the_declared_columns_and_types(patient_360: DomainWorkbench) -> None:
    assert patient_360.schema("patient_journey") == patient_360.declared_schema("patient_journey")


def test_every_patient_has_one_journey_at_the_right_stage(patient_360: DomainWorkbench) -> None:
    stages = {p: j["journey_stage"] for p, j in journeys(patient_360).items()}
    assert stages == {
        "P1": "fully_vaccinated",  # two doses
        "P2": "partly_vaccinated",  # one dose
        "P3": "booked",  # an open appointment
        "P4": "tested",  # tested, nothing open
        "P5": "new",  # nothing yet
        "P6": "booked",  # a rescheduled appointment is still open
    }
    assert [p for p, j in journeys(patient_360).items() if j["fully_vaccinated"]] == ["P1"]


def test_counts_and_the_latest_test_result(patient_360: DomainWorkbench) -> None:
    p4 = journeys(patient_360)["P4"]
    assert (p4["appointments_booked"], p4["appointments_completed"], p4["no_shows"]) == (2, 1, 1)
    assert (p4["tests_taken"], p4["last_test_result"]) == (2, "negative")
    p1 = journeys(patient_360)["P1"]
    assert (p1["doses_received"], str(p1["last_dose_at"])) == (2, "2024-02-10 10:00:00")


def test_contact_details_arrive_masked_as_patients_grants_them(patient_360: DomainWorkbench) -> None:
    """patients grants this domain no pii: the email is a token (equal addresses, equal tokens, so
    journeys can still be joined by address), the birth date only its year."""
    rows = journeys(patient_360)
    emails = {p: j["email"] for p, j in rows.items()}
    assert all(e.startswith("tok_") for e in emails.values()), emails
    assert emails["P1"] == emails["P6"] and len(set(emails.values())) == 5
    assert not any("@" in str(v) for j in rows.values() for v in j.values())
    assert {p: j["birth_year"] for p, j in rows.items()}["P4"] == 1960
