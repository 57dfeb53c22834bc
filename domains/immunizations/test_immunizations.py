"""What the clinical team asserts about its products, on its real code (the point-of-care and lab
ingestions and the dbt project `dbt_projects/immunizations`) and a small warehouse of its own, with
`pharmacy.vaccine_stock` published beside it and read through the governed read.
"""

from pathlib import Path

import pytest

from mesh_platform.scaffold.testing import DomainWorkbench

ROOT = Path(__file__).resolve().parents[2]

DOSES = """dose_id,patient_id,site_id,lot_id,vaccine_code,dose_number,administered_at
D1,P1,S1,L001,208,1,2024-03-01 10:00:00
D2,P1,S1,L002,207,2,2024-04-01 10:00:00
D3,P2,S2,L404,208,1,2024-03-02 11:00:00
D4,P3,S2,L001,999,1,2024-03-03 12:00:00
D5,P4,S1,L001,,1,2024-03-04 12:00:00
D6,P5,S1,L001,208,first,2024-03-05 12:00:00
D7,P6,S1,L001,208,1,2999-01-01 00:00:00
"""

TESTS = """test_id,patient_id,site_id,test_type,result,collected_at,resulted_at
T1,P1,S1,PCR,Negative,2024-03-01 09:00:00,2024-03-01 10:30:00
T2,P2,S2,antigen,POSITIVE,2024-03-02 09:00:00,2024-03-02 09:15:00
T3,P3,S2,pcr,,2024-03-03 09:00:00,
"""


@pytest.fixture(scope="module")
def immunizations(tmp_path_factory: pytest.TempPathFactory) -> DomainWorkbench:
    wb = DomainWorkbench(ROOT, "immunizations", tmp_path_factory.mktemp("immunizations"))
    wb.publish(
        "pharmacy.vaccine_stock",
        [
            {"lot_id": "L001", "vaccine_code": "208", "manufacturer": "Pfizer", "site_id": "S1"},
            {"lot_id": "L002", "vaccine_code": "207", "manufacturer": "Moderna", "site_id": "S1"},
        ],
    )
    wb.source("doses.csv", DOSES)
    wb.source("test_results.csv", TESTS)
    wb.build()
    return wb


def test_products_have_the_declared_columns_and_types(immunizations: DomainWorkbench) -> None:
    for product in ("administered_doses", "test_results"):
        assert immunizations.schema(product) == immunizations.declared_schema(product), product


def test_each_dose_carries_its_lots_manufacturer_from_pharmacy(immunizations: DomainWorkbench) -> None:
    doses = {d["dose_id"]: d for d in immunizations.rows("administered_doses")}
    assert set(doses) == {"D1", "D2", "D3"}
    assert (doses["D1"]["manufacturer"], doses["D2"]["manufacturer"]) == ("Pfizer", "Moderna")
    # a lot pharmacy has not published is no reason to lose the legal record of a dose
    assert doses["D3"]["manufacturer"] is None


def test_doses_that_cannot_be_a_record_are_quarantined(immunizations: DomainWorkbench) -> None:
    held = {r["record"]["dose_id"]: r["reason"] for r in immunizations.quarantined("raw_doses")}
    assert held == {"D4": "unknown_code", "D5": "unknown_code", "D6": "unparseable_value", "D7": "future_date"}


def test_results_are_normalised_and_pending_until_known(immunizations: DomainWorkbench) -> None:
    tests = {t["test_id"]: t for t in immunizations.rows("test_results")}
    assert {t: (r["test_type"], r["result"]) for t, r in tests.items()} == {
        "T1": ("pcr", "negative"),
        "T2": ("antigen", "positive"),
        "T3": ("pcr", "pending"),
    }


def test_turnaround_is_hours_from_collection_to_result(immunizations: DomainWorkbench) -> None:
    tests = {t["test_id"]: t for t in immunizations.rows("test_results")}
    assert (tests["T1"]["turnaround_hours"], tests["T2"]["turnaround_hours"]) == (1.5, 0.25)
    assert tests["T3"]["turnaround_hours"] is None  # no result yet, no turnaround
