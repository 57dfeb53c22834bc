"""The platform's read and write adapters around a domain's build, for the warehouse that
`MESH_WAREHOUSE` names (`duckdb`, the default: the domain's DuckDB file; `postgres`: the domain's
database, see `mesh_platform.pg_warehouse`). Domain code never sees which one it is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import duckdb

from mesh_platform.governance.policies import quote
from mesh_platform.governance.read import audit, authorize, create_governed_view, create_governed_view_pg
from mesh_platform.mesh import Mesh
from mesh_platform.pg_warehouse import PgWarehouse, warehouse_kind
from mesh_platform.pg_warehouse.grants import consumer_session
from mesh_platform.pg_warehouse.roles import provision
from mesh_platform.pg_warehouse.transfer import export_parquet, land
from mesh_platform.project import MeshHome
from mesh_platform.store import PARQUET, Build, point_view, staged_file
from mesh_platform.warehouse import memory_limit, open_warehouse


def governed_sources(mesh: Mesh, domain: str, refs: Sequence[str], run_id: str, via: str) -> list[dict[str, Any]]:
    """The consumed products as governed views `"<producer>"."<product>"` in the domain's warehouse.
    On PostgreSQL the platform makes them in the domain's database for the domain's role, after
    dropping those no longer granted (`consumer_session`)."""
    home = mesh.project.home
    key = home.masking_key()
    records = []
    with ExitStack() as stack:
        if warehouse_kind() == "postgres":
            con = stack.enter_context(consumer_session(mesh, domain, refs, key))
            create = create_governed_view_pg
        else:
            con, create = stack.enter_context(open_warehouse(home, domain)), create_governed_view
        for ref in refs:
            grant = authorize(mesh, ref, domain)
            create(con, grant, key)
            records.append(audit(mesh, grant, run_id, via=via))
    return records


def dbt_target(mesh: Mesh, domain: str, staging: Path) -> tuple[str, dict[str, str]]:
    """The dbt target for this warehouse and the variables its profile output and the platform's
    `mesh_product` materialization (the step's `staging` folder) read."""
    if warehouse_kind() == "postgres":  # the domain's own role
        return "postgres", provision(PgWarehouse.from_env(), mesh.project.home, domain).dbt_env(domain)
    return "duckdb", {
        "MESH_DUCKDB_PATH": str(mesh.project.home.warehouse(domain)),
        "MESH_PRODUCT_STAGING": str(staging),
        "MESH_PARQUET_OPTIONS": PARQUET,
    }


def land_table(con: duckdb.DuckDBPyConnection, home: MeshHome, domain: str, name: str) -> None:
    """Write adapter: a table a Python asset built in DuckDB, into the domain's server warehouse
    (as the domain's role)."""
    if warehouse_kind() != "postgres":
        return  # the DuckDB file is the warehouse
    exists = con.execute(
        "select count(*) from information_schema.tables where table_schema = 'main' and table_name = ?", [name]
    ).fetchall()
    if not exists[0][0]:
        return  # the asset wrote no table of its own name
    login = provision(PgWarehouse.from_env(), home, domain)
    with login.connect_arrow(domain) as pcon:
        land(con, f"main.{quote(name)}", pcon, name)


@contextmanager
def built_products(
    mesh: Mesh, domain: str, folder: Path
) -> Iterator[tuple[duckdb.DuckDBPyConnection, Callable[[str], Build]]]:
    """Read adapter for write-audit-publish: a DuckDB connection and `built(name)`, the product's
    build: the relation the checks read and the Parquet file in the staging `folder` it was built
    into. On DuckDB, dbt built product tables into those files (`dbt_runner.build_products_into_files`;
    a model it built as a table of its own has none); on PostgreSQL each table is exported into one
    (the checks run in DuckDB whatever the warehouse), as the domain's role."""
    home = mesh.project.home
    if warehouse_kind() != "postgres":
        with open_warehouse(home, domain) as con:

            def built(name: str) -> Build:
                path = staged_file(folder, name)
                return Build(f"main.{quote(name)}", path if path.exists() else None)

            yield con, built
        return
    login = provision(PgWarehouse.from_env(), home, domain)
    with login.connect_arrow(domain) as pcon, duckdb.connect() as con:
        con.execute(f"set memory_limit = '{memory_limit()}'")

        def exported(name: str) -> Build:
            path = staged_file(folder, name)
            export_parquet(pcon, "main", name, path)
            return Build(point_view(con, name, path), path)

        yield con, exported
