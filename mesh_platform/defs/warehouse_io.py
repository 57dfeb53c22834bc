"""The platform's read and write adapters around a domain's build, for the warehouse that
`MESH_WAREHOUSE` names (`duckdb`, the default: the domain's DuckDB file; `postgres`: the domain's
database, see `mesh_platform.pg_warehouse`). Domain code never sees which one it is.

Reads of other domains' products are prepared by the platform before the step's sandbox opens
(`prepare_inputs`: authorize, audit, project), then exposed inside it (`expose_inputs`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from mesh_platform.governance.projection import project
from mesh_platform.governance.read import (
    ReadGrant,
    create_governed_view_pg,
    create_projection_view,
    governed_read,
    record_read,
)
from mesh_platform.governance.sandbox import Sandbox, open_sandboxed, open_sandboxed_memory
from mesh_platform.pg_warehouse import PgWarehouse, warehouse_kind
from mesh_platform.pg_warehouse.grants import consumer_session
from mesh_platform.pg_warehouse.roles import provision
from mesh_platform.pg_warehouse.transfer import export_parquet, land
from mesh_platform.project.locations import MeshHome
from mesh_platform.project.mesh import Mesh
from mesh_platform.sql.syntax import quote
from mesh_platform.storage.duckdb_warehouse import open_warehouse
from mesh_platform.storage.product_store import PARQUET, Build, ProductStore, point_view, staged_file


@dataclass(frozen=True)
class Input:
    """A product this step may read: the grant, and on DuckDB the consumer's projection file."""

    grant: ReadGrant
    projection: Path | None = None

    @property
    def ref(self) -> str:
        return self.grant.ref


def prepare_inputs(
    mesh: Mesh, domain: str, refs: Sequence[str], run_id: str, via: str, in_duckdb: bool = False
) -> list[Input]:
    """Authorize `domain` to read each product (a refusal is audited and raised) and, where the
    step reads in DuckDB (the DuckDB warehouse, or a Python step on any warehouse: its SQL is
    DuckDB's), make its governed projection. Platform code: runs before the step's sandbox opens."""
    home = mesh.project.home
    grants = [governed_read(mesh, ref, domain, run_id, via) for ref in refs]
    if warehouse_kind() == "postgres" and not in_duckdb:
        return [Input(grant) for grant in grants]
    key = home.masking_key()
    return [Input(grant, project(home, grant, key)) for grant in grants]


def expose_inputs(con: duckdb.DuckDBPyConnection, inputs: Iterable[Input]) -> dict[str, str]:
    """The projections as views `"<producer>"."<product>"` in the step's (sandboxed) connection."""
    return {
        i.grant.read_as: create_projection_view(con, i.grant, i.projection) for i in inputs if i.projection is not None
    }


def record_inputs(mesh: Mesh, inputs: Iterable[Input], run_id: str, via: str) -> list[dict[str, Any]]:
    return [record_read(mesh, i.grant, run_id, via) for i in inputs]


def step_sandbox(
    mesh: Mesh, domain: str, staging: Path, inputs: Iterable[Input], landing: Iterable[str] = ()
) -> Sandbox:
    """What a step of `domain` may reach: its sources, landing folders and staging; the current
    versions of its own products; the projections of what it consumes."""
    store = ProductStore(mesh.project.home)
    own = [store.current(domain, p.name) for p in mesh.descriptors[domain].products]
    files = [p.path for p in own if p is not None] + [i.projection for i in inputs if i.projection is not None]
    return Sandbox.for_step(mesh.project.home, domain, staging, landing, files)


def governed_sources(mesh: Mesh, domain: str, inputs: Sequence[Input], sandbox: Sandbox) -> None:
    """The consumed products as views `"<producer>"."<product>"` in the domain's warehouse, where
    its dbt sources read them."""
    if warehouse_kind() == "postgres":
        # made in the domain's database for the domain's role, after dropping what is no longer granted
        key = mesh.project.home.masking_key()
        with consumer_session(mesh, domain, [i.ref for i in inputs], key) as con:
            for i in inputs:
                create_governed_view_pg(con, i.grant, key)
        return
    with open_sandboxed(mesh.project.home, sandbox) as con:
        expose_inputs(con, inputs)


def dbt_target(
    mesh: Mesh, domain: str, staging: Path, sandbox: Sandbox, products: Iterable[str]
) -> tuple[str, dict[str, str]]:
    """The dbt target for this warehouse and the variables its profile output, the sandbox plugin
    and the platform's `mesh_product` materialization read: the product models the step audits and
    publishes (`products`), which on DuckDB are built into files in the step's `staging` folder."""
    if warehouse_kind() == "postgres":  # the domain's own role
        return "postgres", provision(PgWarehouse.from_env(), mesh.project.home, domain).dbt_env(domain)
    from mesh_platform.governance.sandbox import SANDBOX_ENV

    return "duckdb", {
        "MESH_DUCKDB_PATH": str(mesh.project.home.warehouse(domain)),
        "MESH_PRODUCT_MODELS": ",".join(sorted(products)),
        "MESH_PRODUCT_STAGING": str(staging),
        "MESH_PARQUET_OPTIONS": PARQUET,
        SANDBOX_ENV: sandbox.to_env(),
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
    mesh: Mesh, domain: str, folder: Path, sandbox: Sandbox
) -> Iterator[tuple[duckdb.DuckDBPyConnection, Callable[[str], Build]]]:
    """Read adapter for write-audit-publish: a connection in the step's sandbox and `built(name)`,
    the product's build: the relation the checks read and the Parquet file in the staging `folder`
    it was built into. On DuckDB, dbt built product models into those files (the `mesh_product`
    materialization; a model it built as a table of its own has none); on
    PostgreSQL each table is exported into one, as the domain's role (the checks run in DuckDB
    whatever the warehouse)."""
    home = mesh.project.home
    if warehouse_kind() != "postgres":
        with open_sandboxed(home, sandbox) as con:

            def built(name: str) -> Build:
                path = staged_file(folder, name)
                return Build(f"main.{quote(name)}", path if path.exists() else None, folder)

            yield con, built
        return
    login = provision(PgWarehouse.from_env(), home, domain)
    with login.connect_arrow(domain) as pcon, open_sandboxed_memory(sandbox) as con:

        def exported(name: str) -> Build:
            path = staged_file(folder, name)
            export_parquet(pcon, "main", name, path)
            return Build(point_view(con, name, path), path, folder)

        yield con, exported


def repoint_views(mesh: Mesh, domain: str, views: dict[str, str]) -> None:
    """After a step: each product built into a file gets `main.<product>` as a view over where its
    file went (the published version, or `rejected/`), made by the platform's own connection
    because the step's sandbox could not read the new version yet."""
    if not views or warehouse_kind() == "postgres":
        return
    with open_warehouse(mesh.project.home, domain) as con:
        for name, path in views.items():
            point_view(con, name, path)
