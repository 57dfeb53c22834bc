"""Great Expectations' SQL engine, running inside the DuckDB warehouse.

GX 1.x reads a query's rows after its `with get_connection()` block has handed the connection back
(GX issue #10738). Handing it back ends SQLAlchemy's transaction on it, with a `ROLLBACK` that
DuckDB runs on the same cursor, which discards the pending result: every metric comes back empty
(`IndexError` in `resolve_metric_bundle`). The batch's connections therefore come from
SQLAlchemy's `creator` hook as `AutocommitConnection`s: a cursor of the step's own connection
whose transaction calls do nothing. DuckDB runs each statement in a transaction of its own
(autocommit) anyway, and the checks only read, so nothing is lost, and GX reads its rows intact.
Expectations then compile to SQL that DuckDB runs where the data is: no table is copied into
pandas and memory stays bounded.

The batch reads through a cursor of the step's own connection, so it sees the unpublished table
and needs no second DuckDB connection (which DuckDB refuses with a different configuration). GX
has no regex operator for DuckDB; `mesh_platform.upstream.gx_duckdb` supplies it.

Checks only read. GX runs a query an expectation carries (`unexpected_rows_query`) as written, and
DuckDB runs every statement in a string, so `select ...; create table ...` would write into the
domain's warehouse after the schema contract was checked. Every statement the batch sends is
therefore parsed by DuckDB first (`ReadOnlyCursor`): anything but one SELECT is refused before it
runs, whichever expectation, suite or GX metric sent it. The step's sandbox still bounds what a
SELECT may read (its own warehouse and the projections made for it, no file outside them).
"""

from __future__ import annotations

import uuid
from functools import cache
from typing import Any

import duckdb
from duckdb_engine import ConnectionWrapper, CursorWrapper


class CheckStatementRefused(Exception):
    """A check sent SQL other than one SELECT statement."""


def refuse_unless_one_select(statement: str) -> None:
    """Raise `CheckStatementRefused` unless DuckDB parses `statement` as exactly one SELECT."""
    kinds = [s.type.name for s in duckdb.extract_statements(statement)]
    if kinds != ["SELECT"]:
        raise CheckStatementRefused(
            f"checks only read: refused {', '.join(kinds) or 'an empty query'} "
            f"({len(kinds)} statement(s)); a check's query must be one SELECT statement"
        )


class ReadOnlyCursor(CursorWrapper):
    """A DBAPI cursor that runs one SELECT statement at a time and refuses anything else."""

    def execute(self, statement: str, parameters: Any = None, context: Any = None) -> None:
        refuse_unless_one_select(statement)
        super().execute(statement, parameters, context)

    def executemany(self, statement: str, parameters: Any = None, context: Any = None) -> None:
        raise CheckStatementRefused("checks only read: refused executemany")


class AutocommitConnection(ConnectionWrapper):
    """A DBAPI connection over one DuckDB cursor that leaves DuckDB in autocommit: SQLAlchemy's
    begin, commit and rollback do nothing, so returning it to the pool keeps its last result. Its
    cursors are `ReadOnlyCursor`s."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        super().__init__(con)
        self.duckdb_cursor = con

    def cursor(self) -> ReadOnlyCursor:
        return ReadOnlyCursor(self.duckdb_cursor, self)

    def begin(self) -> None:
        pass

    def commit(self) -> None:
        pass

    def rollback(self) -> None:
        pass


@cache
def _context() -> Any:
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    from mesh_platform.upstream.gx_duckdb import apply_regex_for_duckdb

    apply_regex_for_duckdb()
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    return context


def duckdb_batch(con: duckdb.DuckDBPyConnection, table: str, schema: str = "main") -> Any:
    """A GX batch over `schema.table`, evaluated by DuckDB through `con`."""
    source = _context().data_sources.add_sql(
        f"warehouse_{uuid.uuid4().hex[:12]}",
        connection_string="duckdb:///:memory:",
        kwargs={"creator": lambda: AutocommitConnection(con.cursor())},
    )
    asset = source.add_table_asset(table, table_name=table, schema_name=schema)
    return asset.add_batch_definition_whole_table("whole").get_batch()
