"""A product's checks on a real DuckDB table: what each check reports, samples of what failed only,
pii masked in them."""

from __future__ import annotations

import duckdb
import yaml

from mesh_platform.checks.evaluate import run_contract
from mesh_platform.descriptor.model import Descriptor, Product
from mesh_platform.sql.syntax import SQL_TYPES
from tests.conftest import ROOT


def _product(domain: str, name: str) -> Product:
    descriptor = Descriptor.model_validate(yaml.safe_load((ROOT / "domains" / domain / "domain.yaml").read_text()))
    product = descriptor.product(name)
    assert product is not None
    return product


def _doses(rows: int) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute(
        "create table main.administered_doses as select 'D' || lpad(i::varchar, 6, '0') as dose_id, "
        "'P' || i::varchar as patient_id, 'S1' as site_id, 'L1' as lot_id, '207' as vaccine_code, "
        "'Moderna' as manufacturer, cast(i % 4 + 1 as integer) as dose_number, "
        f"timestamp '2021-01-01' + to_seconds(i) as administered_at from range({rows}) r(i)"
    )
    return con


def test_failed_expectations_report_counts_and_a_sample_passed_ones_no_sample() -> None:
    con = _doses(1000)
    con.execute("update administered_doses set dose_id = 'D000001' where dose_id in ('D000002', 'D000003')")
    con.execute("update administered_doses set dose_number = 9 where dose_id = 'D000010'")
    outcomes = {o.name: o for o in run_contract(con, _product("immunizations", "administered_doses"))}

    unique = outcomes["column_values_to_be_unique__dose_id"]
    assert (unique.passed, unique.blocking) == (False, True)
    assert unique.metadata["unexpected_count"] == 3 and unique.metadata["element_count"] == 1000
    assert unique.metadata["unexpected_percent"] == 0.3
    assert unique.metadata["partial_unexpected_list"] == ["D000001"] * 3
    between = outcomes["column_values_to_be_between__dose_number"]
    assert not between.passed and between.metadata["partial_unexpected_list"] == [9]
    assert "1 unexpected" in between.summary
    not_null = outcomes["column_values_to_not_be_null__dose_id"]
    assert not_null.passed and not_null.metadata["unexpected_count"] == 0
    assert not_null.metadata["partial_unexpected_list"] == []
    warn = outcomes["column_values_to_not_be_null__manufacturer"]
    assert warn.passed and not warn.blocking


def test_samples_of_pii_columns_are_masked() -> None:
    product = _product("patients", "patient_accounts")
    pii = [c.name for c in product.columns if c.classification == "pii"]
    product.expectations.append(
        product.expectations[0].model_copy(
            update={"type": "expect_column_values_to_be_in_set", "kwargs": {"column": pii[0], "value_set": ["x"]}}
        )
    )
    con = duckdb.connect()
    columns = ", ".join(f"{c.name} {SQL_TYPES[c.type]}" for c in product.columns)
    con.execute(f"create table main.{product.name} ({columns})")
    values = ", ".join("'Secret'" if c.name == pii[0] else "null" for c in product.columns)
    con.execute(f"insert into main.{product.name} values ({values})")
    outcome = next(o for o in run_contract(con, product) if o.name.startswith(f"column_values_to_be_in_set__{pii[0]}"))
    assert not outcome.passed
    assert outcome.metadata["partial_unexpected_list"] == ["<pii masked: 1 value(s)>"]
    assert "Secret" not in str(outcome.metadata) + outcome.summary


def test_missing_retyped_and_extra_columns_fail_the_schema_contract_by_name() -> None:
    con = _doses(10)
    con.execute("alter table administered_doses drop column lot_id")
    con.execute("alter table administered_doses alter dose_number type varchar")
    con.execute("alter table administered_doses add column note varchar")
    schema, *skipped = run_contract(con, _product("immunizations", "administered_doses"))
    assert not schema.passed
    assert schema.metadata["missing"] == "lot_id" and schema.metadata["extra"] == "note"
    assert schema.metadata["retyped"] == "dose_number"
    assert "~ dose_number: declared INTEGER, built VARCHAR" in schema.metadata["diff"]
    # the expectations did not run: they neither pass nor block, and say why
    assert skipped and all(not o.passed and not o.ran and not o.blocks for o in skipped)
    assert all(o.summary == "not run: the schema contract failed" for o in skipped)


def test_an_expectation_on_a_pii_column_that_cannot_run_does_not_quote_its_values() -> None:
    """A value set of the wrong type on a pii column (`value_set: [1, 2]` on `email`): DuckDB's error
    quotes the value it could not convert, and the check result, read by every consumer, must not."""
    product = _product("patients", "patient_accounts")
    pii = [c for c in product.columns if c.classification == "pii" and c.type == "string"]
    for kind, kwargs in (
        ("expect_column_values_to_be_in_set", {"column": pii[0].name, "value_set": [1, 2]}),
        ("expect_column_pair_values_to_be_equal", {"column_A": pii[1].name, "column_B": "created_at"}),
        # on a column that is not pii, filtered on one that is: the error quotes the filtered column
        (
            "expect_column_values_to_not_be_null",
            {
                "column": "state",
                "row_condition": f'col("{pii[2].name}") == 5',
                "condition_parser": "great_expectations",
            },
        ),
    ):
        product.expectations.append(product.expectations[0].model_copy(update={"type": kind, "kwargs": kwargs}))
    con = duckdb.connect()
    columns = ", ".join(f"{c.name} {SQL_TYPES[c.type]}" for c in product.columns)
    con.execute(f"create table main.{product.name} ({columns})")
    typed = {"string": "'{}@example.com'", "timestamp": "timestamp '2021-01-01'"}
    secret = {c.name: f"secret-{c.name}" if c.classification == "pii" else c.name for c in product.columns}
    values = ", ".join(typed.get(c.type, "null").format(secret[c.name]) for c in product.columns)
    con.execute(f"insert into main.{product.name} values ({values})")
    outcomes = run_contract(con, product)
    broken = [o for o in outcomes if "could not run" in o.summary]
    assert len(broken) == 3, [o.summary for o in outcomes]
    for outcome in broken:
        assert not outcome.passed and "<pii masked>" in outcome.summary
    shown = " ".join(str(o.metadata) + o.summary for o in outcomes)
    assert "secret-" not in shown, shown
