"""A product's checks on a real DuckDB table: what each check reports, samples of what failed only,
pii masked in them."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml

from mesh_platform.checks.evaluate import gx_expectation, run_contract
from mesh_platform.checks.gx_sql_engine import duckdb_batch
from mesh_platform.descriptor.expectations import UNSUPPORTED_TYPES
from mesh_platform.descriptor.model import Descriptor, Product
from mesh_platform.governance.sandbox import Sandbox
from mesh_platform.sdk import SuiteFn
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


def _accounts_with_secrets(path: Path) -> tuple[duckdb.DuckDBPyConnection, Product]:
    """`patients.patient_accounts` with one row whose pii values are `secret-<column>...`, on a
    warehouse file locked into a step's sandbox (as the checks' connection is in a run)."""
    product = _product("patients", "patient_accounts")
    con = duckdb.connect(str(path / "patients.duckdb"))
    columns = ", ".join(f"{c.name} {SQL_TYPES[c.type]}" for c in product.columns)
    con.execute(f"create table main.{product.name} ({columns})")
    typed = {"string": "'{}@example.com'", "timestamp": "timestamp '2021-01-01'", "date": "date '1980-02-03'"}
    values = ", ".join(typed.get(c.type, "null").format(f"secret-{c.name}") for c in product.columns)
    con.execute(f"insert into main.{product.name} values ({values})")
    (path / "staging").mkdir()
    Sandbox("patients", (str(path / "staging") + "/",), (), "1GB").apply(con)
    return con, product


def _suite(*expectations: Any) -> SuiteFn:
    return SuiteFn("patient_accounts", "hostile", "warn", lambda gx: list(expectations))


def _tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {row[0] for row in con.execute("select table_name from information_schema.tables").fetchall()}


def test_a_check_query_runs_one_select_and_writes_nothing(tmp_path: Path) -> None:
    """GX runs a query an expectation carries as written, and DuckDB runs every statement in a
    string: `select ...; create table ...` wrote into the domain's warehouse after the schema contract
    had passed. The checks' connection runs one SELECT at a time and refuses the rest unrun."""
    import great_expectations as gx

    con, product = _accounts_with_secrets(tmp_path)
    before = _tables(con)
    writes = [
        "create table main.hostile_write as select 42 as x; select * from {batch} where false",
        "select * from {batch} where false; drop table main.patient_accounts",
        "insert into main.patient_accounts select * from {batch}",
        "select 1 as x; checkpoint; select * from {batch}",
    ]
    suite = _suite(
        *(gx.expectations.UnexpectedRowsExpectation(unexpected_rows_query=q) for q in writes),
        gx.expectations.ExpectQueryResultsToMatchComparison(
            base_query="create table main.hostile_base as select 1 as x; select 1 as x",
            comparison_data_source_name="elsewhere",
            comparison_query="select 1 as x",
        ),
    )
    (outcome,) = [o for o in run_contract(con, product, [suite]) if o.name == "suite__hostile"]
    assert _tables(con) == before
    assert con.execute("select count(*) from main.patient_accounts").fetchone() == (1,)
    assert not outcome.passed and outcome.metadata["failed"] == len(writes) + 1


def test_a_check_query_that_cannot_run_does_not_quote_pii_it_reaches_without_naming_it(tmp_path: Path) -> None:
    """SQL reaches a pii column without its name (`columns('^em')`, `*`, a row as a struct): the
    database's message then quotes its value, and a check result is read by every consumer."""
    import great_expectations as gx

    con, product = _accounts_with_secrets(tmp_path)
    queries = [
        "select * from {batch} where cast(columns('^em') as int) = 1",
        "select * from {batch} b where cast(b as int) = 1",
        "select * from {batch} where cast(#4 as int) = 1",
    ]
    suite = _suite(*(gx.expectations.UnexpectedRowsExpectation(unexpected_rows_query=q) for q in queries))
    (outcome,) = [o for o in run_contract(con, product, [suite]) if o.name == "suite__hostile"]
    assert outcome.metadata["failed"] == len(queries)
    shown = str(outcome.metadata) + outcome.summary
    assert "secret-" not in shown and "<pii masked>" in shown, shown


@pytest.mark.parametrize(
    "type_", sorted(t for t in UNSUPPORTED_TYPES if t != "expect_query_results_to_match_comparison")
)
def test_each_type_the_descriptor_refuses_still_cannot_run_on_duckdb(type_: str) -> None:
    """`UNSUPPORTED_TYPES` holds what would only fail at run time; when GX learns to run one on
    DuckDB, this fails and the type can be allowed again."""
    con = duckdb.connect()
    con.execute("create table t as select i as n, 'v' || i as s from range(1, 20) r(i)")
    arguments = {
        "like_pattern_list": {"like_pattern_list": ["v%"]},
        "like_pattern": {"like_pattern": "v%"},
        "strftime_format": {"strftime_format": "%Y"},
        "json_schema": {"json_schema": {}},
        "type_list": {"type_list": ["VARCHAR", "String"]},
        "type": {"type_": "VARCHAR"},
        "to_be": {"type_": "VARCHAR"},
    }
    extra = next((kwargs for suffix, kwargs in arguments.items() if type_.endswith(suffix)), {})
    expectation = gx_expectation(type_, {"column": "s", **extra})
    result = duckdb_batch(con, "t").validate(expectation)
    assert not result.success and re.search(r"raised_exception\W+true", str(result.exception_info), re.I), type_
