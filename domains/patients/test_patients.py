"""What the patient-services team asserts about its products, on its real code (the registration
ingestion and the dbt project `dbt_projects/patients`) and a small warehouse of its own.
"""

from pathlib import Path

import pytest

from mesh_platform.scaffold.testing import DomainWorkbench

ROOT = Path(__file__).resolve().parents[2]

HEADER = (
    "patient_id,first_name,last_name,email,phone,date_of_birth,zip,state,consent_marketing,consent_research,created_at"
)
# ages on the as-of date 2024-06-30 sit on both sides of each band's edge
PATIENTS = [
    "P1, Ada ,Lovelace,  Ada.Lovelace@Example.COM ,555-0101,2006-07-01,02134,ma,true,false,2023-01-05 10:00:00",
    "P2,Alan,Turing,alan@example.com,555-0102,2006-06-30,98101,WA,false,true,2023-02-05 10:00:00",
    "P3,Grace,Hopper,grace@example.com,555-0103,1974-06-30,60601,IL,true,true,2023-03-05 10:00:00",
    "P4,Edsger,Dijkstra,edsger@example.com,555-0104,1959-07-01,05401,VT,false,false,2023-04-05 10:00:00",
    "P5,Barbara,Liskov,barbara@example.com,555-0105,1959-06-30,10001,NY,true,false,2023-05-05 10:00:00",
    ",No,Key,nokey@example.com,555-0106,1980-01-01,10001,NY,true,true,2023-06-05 10:00:00",
    "P7,Future,Person,future@example.com,555-0107,1990-01-01,10001,NY,true,true,2999-01-01 00:00:00",
    "P8,Bad,Date,bad@example.com,555-0108,1990-02-30,10001,NY,true,true,2023-07-05 10:00:00",
    "P2,Alan,Again,alan2@example.com,555-0109,2006-06-30,98101,WA,true,true,2023-08-05 10:00:00",
]


@pytest.fixture(scope="module")
def patients(tmp_path_factory: pytest.TempPathFactory) -> DomainWorkbench:
    wb = DomainWorkbench(ROOT, "patients", tmp_path_factory.mktemp("patients"))
    wb.source("patients.csv", "\n".join([HEADER, *PATIENTS]) + "\n")
    wb.build()
    return wb


def accounts(wb: DomainWorkbench) -> dict[str, dict]:
    return {a["patient_id"]: a for a in wb.rows("patient_accounts")}


def test_products_have_the_declared_columns_and_types(patients: DomainWorkbench) -> None:
    for product in ("patient_accounts", "patient_consent"):
        assert patients.schema(product) == patients.declared_schema(product), product


def test_age_band_is_the_age_in_full_years_on_the_as_of_date(patients: DomainWorkbench) -> None:
    bands = {p: a["age_band"] for p, a in accounts(patients).items()}
    # P1 turns 18 the day after the as-of date: still a minor; P4 turns 65 the day after
    assert bands == {"P1": "0-17", "P2": "18-49", "P3": "50-64", "P4": "50-64", "P5": "65+"}


def test_contact_details_are_cleaned_for_outreach(patients: DomainWorkbench) -> None:
    ada = accounts(patients)["P1"]
    assert (ada["first_name"], ada["email"], ada["state"]) == ("Ada", "ada.lovelace@example.com", "MA")
    assert ada["zip"] == "02134"


def test_every_patient_has_one_consent_row_with_both_flags(patients: DomainWorkbench) -> None:
    consent = {c["patient_id"]: c for c in patients.rows("patient_consent")}
    assert set(consent) == set(accounts(patients))
    assert (consent["P1"]["consent_marketing"], consent["P1"]["consent_research"]) == (True, False)
    assert all(c["consent_research"] is not None for c in consent.values())
    assert str(consent["P2"]["recorded_at"]) == "2023-02-05 10:00:00"  # the first registration of P2 counts


def test_rejected_registrations_are_quarantined_with_their_reason(patients: DomainWorkbench) -> None:
    held = {r["source_line"]: r["reason"] for r in patients.quarantined("raw_patients")}
    assert held == {7: "null_key", 8: "future_date", 9: "unparseable_value", 10: "duplicate_key"}
    assert len(accounts(patients)) + len(held) == len(PATIENTS)
