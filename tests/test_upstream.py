"""Alarms for `mesh_platform/upstream/` and the public workarounds beside it: each test fails when a
library upgrade changes the behaviour a case relies on, and says what to do then."""

from __future__ import annotations

import importlib
import inspect
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pytest

from mesh_platform.checks.gx_duckdb import duckdb_batch
from mesh_platform.upstream.gx_duckdb import HELPER, REGEX_MODULES, is_duckdb


def _gx_package() -> Path:
    import great_expectations

    return Path(great_expectations.__file__).parent


def test_gx_still_has_no_regex_operator_for_duckdb() -> None:
    import sqlalchemy as sa
    from duckdb_engine import Dialect
    from great_expectations.expectations.metrics import util

    expression = util.get_dialect_regex_expression(sa.column("email"), "@", Dialect())
    assert expression is None, (
        "GX now builds regex SQL for DuckDB itself: delete mesh_platform/upstream/gx_duckdb.py and its entry in "
        "mesh_platform/upstream/__init__.py"
    )


def test_the_regex_helper_is_used_by_exactly_the_modules_given_its_replacement() -> None:
    """A GX module that starts building regex SQL with the helper would not get DuckDB's operator."""
    users = {
        ".".join(path.relative_to(_gx_package().parent).with_suffix("").parts)
        for path in _gx_package().rglob("*.py")
        if HELPER in path.read_text(encoding="utf-8") and path.name != "util.py"
    }
    assert users == set(REGEX_MODULES), f"GX modules that build regex SQL changed: {sorted(users ^ set(REGEX_MODULES))}"
    for name in REGEX_MODULES:
        assert hasattr(importlib.import_module(name), HELPER), f"{name} no longer imports {HELPER} by name"


def test_the_regex_helper_keeps_the_signature_it_is_replaced_with() -> None:
    from great_expectations.expectations.metrics import util

    parameters = list(inspect.signature(util.get_dialect_regex_expression).parameters)
    assert parameters == ["column", "regex", "dialect", "positive"], parameters


def test_regex_expectations_run_in_duckdb_as_searches() -> None:
    import great_expectations as gx

    con = duckdb.connect()
    con.execute("create table t as select * from (values ('abc'), ('xbz'), ('aaa'), (null)) v(s)")
    batch = duckdb_batch(con, "t")
    results = {
        name: batch.validate(expectation, result_format="BASIC").result.get("unexpected_count")
        for name, expectation in {
            "match": gx.expectations.ExpectColumnValuesToMatchRegex(column="s", regex="b"),
            "not_match": gx.expectations.ExpectColumnValuesToNotMatchRegex(column="s", regex="^a"),
            "match_list": gx.expectations.ExpectColumnValuesToMatchRegexList(column="s", regex_list=["z$", "c$"]),
        }.items()
    }
    # a search, like GX's other engines: 'b' is found inside 'abc' and 'xbz' (not a full match)
    assert results == {"match": 1, "not_match": 2, "match_list": 1}
    assert is_duckdb(batch.data.execution_engine.engine.dialect)


def test_gx_alone_still_loses_duckdb_results_when_the_connection_goes_back_to_its_pool(tmp_path: Path) -> None:
    """GX issue #10738: without `AutocommitConnection` every metric comes back empty. When GX reads
    its rows before handing the connection back, this test fails: the plain `duckdb_engine`
    connection then works, and `checks/gx_duckdb.AutocommitConnection` can go."""
    script = textwrap.dedent(
        """
        import duckdb, great_expectations as gx
        from duckdb_engine import ConnectionWrapper
        con = duckdb.connect()
        con.execute("create table t as select range as id from range(10)")
        source = gx.get_context(mode="ephemeral").data_sources.add_sql(
            "w", connection_string="duckdb:///:memory:", kwargs={"creator": lambda: ConnectionWrapper(con.cursor())}
        )
        batch = source.add_table_asset("t", table_name="t").add_batch_definition_whole_table("w").get_batch()
        result = batch.validate(gx.expectations.ExpectTableRowCountToBeBetween(min_value=1, max_value=100))
        info = str(result.exception_info)
        print("PASSED" if result.success else "FAILED", "IndexError" if "IndexError" in info else info[:500])
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith("FAILED") and "IndexError" in proc.stdout, (
        "GX reads DuckDB results correctly on its own now (GX #10738 fixed): "
        "drop AutocommitConnection from mesh_platform/checks/gx_duckdb.py\n" + proc.stdout
    )


@pytest.mark.parametrize("method", ["begin", "commit", "rollback"])
def test_duckdb_engine_still_sends_transactions_through_the_connection_it_wraps(method: str) -> None:
    """`AutocommitConnection` works by overriding these: duckdb_engine must still reach the DuckDB
    connection through them (and not, say, by executing `ROLLBACK` on a cursor)."""
    from duckdb_engine import ConnectionWrapper, Dialect

    calls: list[str] = []

    class Spy(ConnectionWrapper):
        def begin(self) -> None:
            calls.append("begin")

        def commit(self) -> None:
            calls.append("commit")

        def rollback(self) -> None:
            calls.append("rollback")

    dialect, spy = Dialect(), Spy(duckdb.connect())
    {"begin": dialect.do_begin, "commit": dialect.do_commit, "rollback": dialect.do_rollback}[method](spy)
    assert calls == [method]
