"""The platform's read and write adapters around a domain's build, for the warehouse that
`MESH_WAREHOUSE` names (`duckdb`, the default: the domain's DuckDB file; `postgres`: the domain's
database, see `mesh_platform.pg_warehouse`). Domain code never sees which one it is.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from typing import Any

import duckdb

from mesh_platform.governance.policies import quote
from mesh_platform.governance.read import audit, authorize, create_governed_view, create_governed_view_pg
from mesh_platform.mesh import Mesh
from mesh_platform.pg_warehouse import (
    PgWarehouse,
    export_parquet,
    land,
    warehouse_kind,
)
from mesh_platform.warehouse import memory_limit, open_warehouse


def governed_sources(mesh: Mesh, domain: str, refs: Sequence[str], run_id: str, via: str) -> list[dict[str, Any]]:
    """The consumed products as governed views `"<producer>"."<product>"` in the domain's warehouse."""
    home = mesh.project.home
    key = home.masking_key()
    records = []
    with ExitStack() as stack:
        if warehouse_kind() == "postgres":
            pg = PgWarehouse.from_env()
            pg.ensure_database(domain)
            con, create = stack.enter_context(pg.connect(domain)), create_governed_view_pg
        else:
            con, create = stack.enter_context(open_warehouse(home, domain)), create_governed_view
        for ref in refs:
            grant = authorize(mesh, ref, domain)
            create(con, grant, key)
            records.append(audit(mesh, grant, run_id, via=via))
    return records


def dbt_target(mesh: Mesh, domain: str) -> tuple[str, dict[str, str]]:
    """The dbt target for this warehouse and the variables its profile output reads."""
    if warehouse_kind() == "postgres":
        return "postgres", PgWarehouse.from_env().dbt_env(domain)
    return "duckdb", {"MESH_DUCKDB_PATH": str(mesh.project.home.warehouse(domain))}


def land_table(con: duckdb.DuckDBPyConnection, domain: str, name: str) -> None:
    """Write adapter: a table a Python asset built in DuckDB, into the domain's server warehouse."""
    if warehouse_kind() != "postgres":
        return  # the DuckDB file is the warehouse
    exists = con.execute(
        "select count(*) from information_schema.tables where table_schema = 'main' and table_name = ?", [name]
    ).fetchall()
    if not exists[0][0]:
        return  # the asset wrote no table of its own name
    pg = PgWarehouse.from_env()
    pg.ensure_database(domain)
    with pg.connect(domain) as pcon:
        land(con, f"main.{quote(name)}", pcon, name)


@contextmanager
def built_tables(mesh: Mesh, domain: str, run_id: str) -> Iterator[tuple[duckdb.DuckDBPyConnection, Any]]:
    """Read adapter for write-audit-publish: a DuckDB connection and `relation(name)` naming the
    built table in it. On PostgreSQL the table is exported to Parquet staged for this run and
    audited from there (the checks run in DuckDB whatever the warehouse)."""
    home = mesh.project.home
    if warehouse_kind() != "postgres":
        with open_warehouse(home, domain) as con:
            yield con, lambda name: f"main.{quote(name)}"
        return
    staged = home.path / "dbt-runs" / run_id / "staged"
    pg = PgWarehouse.from_env()
    try:
        with pg.connect(domain) as pcon, duckdb.connect() as con:
            con.execute(f"set memory_limit = '{memory_limit()}'")

            def relation(name: str) -> str:
                path = staged / f"{name}.parquet"
                export_parquet(pcon, "main", name, path)
                con.execute(f"create or replace view main.{quote(name)} as select * from read_parquet('{path}')")
                return f"main.{quote(name)}"

            yield con, relation
    finally:
        shutil.rmtree(staged, ignore_errors=True)  # published and rejected versions are copies
