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
"""

from __future__ import annotations

import uuid
from functools import cache
from typing import Any

import duckdb
from duckdb_engine import ConnectionWrapper


class AutocommitConnection(ConnectionWrapper):
    """A DBAPI connection over one DuckDB cursor that leaves DuckDB in autocommit: SQLAlchemy's
    begin, commit and rollback do nothing, so returning it to the pool keeps its last result."""

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
