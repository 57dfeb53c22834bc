"""What the pharmacy team asserts about its products, on its real code and a small warehouse of its own.

The site register and the distributor's lot feed arrive as CSV extracts; `sites` is the reference
every per-site report starts from, and `vaccine_stock` decides which lots to use first.
"""

from pathlib import Path

import pytest

from mesh_platform.scaffold.testing import DomainWorkbench

ROOT = Path(__file__).resolve().parents[2]

SITES = """site_id,site_name,zip,state,daily_capacity,opened_on
S0001,  Main Street Pharmacy ,02134,ma,120,2021-01-04
S0002,Harbor Clinic,98101,WA,80,2021-02-01
S0003,Lakeside,60601,il,lots,2021-03-01
S0002,Harbor Clinic (again),98101,WA,90,2021-02-01
S0004,Hill Top,05401,vt,40,2021-05-17
"""

LOTS = """lot_id,vaccine_code,manufacturer,site_id,doses_received,received_on,expires_on
L001,208,Pfizer,S0001,600,2024-01-10,2024-07-10
L002,207,Moderna,S0002,500,2024-02-01,2024-08-01
L003,999,Unknown Labs,S0001,100,2024-02-15,2024-08-15
L004,300,Pfizer,S0004,200,2024-03-01,2024-09-01
"""


@pytest.fixture(scope="module")
def pharmacy(tmp_path_factory: pytest.TempPathFactory) -> DomainWorkbench:
    wb = DomainWorkbench(ROOT, "pharmacy", tmp_path_factory.mktemp("pharmacy"))
    wb.source("sites.csv", SITES)
    wb.source("vaccine_lots.csv", LOTS)
    wb.build()
    return wb


def test_products_have_the_declared_columns_and_types(pharmacy: DomainWorkbench) -> None:
    for product in ("sites", "vaccine_stock"):
        assert pharmacy.schema(product) == pharmacy.declared_schema(product), product


def test_every_site_has_a_positive_capacity_and_a_five_digit_zip(pharmacy: DomainWorkbench) -> None:
    sites = pharmacy.rows("sites")
    assert [s["site_id"] for s in sites] == ["S0001", "S0002", "S0004"]
    for site in sites:
        assert site["daily_capacity"] > 0, site
        assert len(site["zip"]) == 5 and site["zip"].isdigit(), site  # leading zeros kept: 02134, not 2134
    assert {s["zip"] for s in sites} == {"02134", "98101", "05401"}


def test_site_names_are_trimmed_and_states_upper_case(pharmacy: DomainWorkbench) -> None:
    by_id = {s["site_id"]: s for s in pharmacy.rows("sites")}
    assert by_id["S0001"]["site_name"] == "Main Street Pharmacy"
    assert {s["state"] for s in by_id.values()} == {"MA", "WA", "VT"}


def test_bad_site_records_are_quarantined_with_reason_and_line_never_dropped(pharmacy: DomainWorkbench) -> None:
    held = pharmacy.quarantined("raw_sites")
    assert [(r["source_line"], r["reason"]) for r in held] == [(4, "unparseable_value"), (5, "duplicate_key")]
    assert held[0]["record"]["daily_capacity"] == "lots"  # the original text, for the source's owner to fix
    assert held[0]["source_file"] == "sources/pharmacy/sites.csv"
    # the first record of a repeated site_id is the one published
    assert {s["site_id"]: s["site_name"] for s in pharmacy.rows("sites")}["S0002"] == "Harbor Clinic"
    records_in = SITES.strip().count("\n")
    assert records_in == len(pharmacy.rows("sites")) + len(held)


def test_stock_holds_only_known_vaccine_codes_and_quarantines_the_rest(pharmacy: DomainWorkbench) -> None:
    declared = next(
        e.kwargs["value_set"]
        for e in pharmacy.product("vaccine_stock").expectations
        if e.type == "expect_column_values_to_be_in_set" and e.kwargs["column"] == "vaccine_code"
    )
    stock = pharmacy.rows("vaccine_stock", order_by="lot_id")
    assert [lot["lot_id"] for lot in stock] == ["L001", "L002", "L004"]
    assert {lot["vaccine_code"] for lot in stock} <= set(declared)
    assert [(r["record"]["lot_id"], r["reason"]) for r in pharmacy.quarantined("raw_vaccine_lots")] == [
        ("L003", "unknown_code")
    ]


def test_every_lot_expires_after_it_was_received(pharmacy: DomainWorkbench) -> None:
    for lot in pharmacy.rows("vaccine_stock"):
        assert lot["expires_on"] > lot["received_on"], lot
