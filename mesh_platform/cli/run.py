"""`mesh run`: materialize products and their checks: one Dagster run per domain, submitted through the
instance (`orchestration/domain_runs.py`)."""

from __future__ import annotations

import typer

from mesh_platform.cli.common import err, fail, invalid, load_mesh, out
from mesh_platform.cli.run_summary import domain_lines, product_reports, summary_table
from mesh_platform.orchestration.domain_runs import run_mesh
from mesh_platform.pg_warehouse import PgWarehouse, warehouse_kind
from mesh_platform.project.mesh import Mesh
from mesh_platform.storage.duckdb_warehouse import memory_limit


def check_warehouse(mesh: Mesh) -> None:
    """MESH_WAREHOUSE's settings and DuckDB's memory limit, before any run starts. For a server:
    that it answers to an admin role, and every domain's governed views synced with the grants
    (`mesh_platform.pg_warehouse.grants`)."""
    try:
        memory_limit()
    except ValueError as exc:
        fail(str(exc))
    if warehouse_kind() == "postgres":
        from mesh_platform.pg_warehouse.grants import sync_mesh

        sync_mesh(mesh, PgWarehouse.from_env())


def run(
    domain: list[str] = typer.Option(None, "--domain", "-d", help="Only this domain (repeatable)."),
    jobs: int = typer.Option(
        None,
        "--jobs",
        "-j",
        min=1,
        envvar="MESH_RUN_JOBS",
        help="Domain runs in flight at the same time, each in its own run worker (1: one after another). "
        "Default: 2 while the sources and landing files are smaller than DuckDB's memory limit, else 1.",
        show_default=False,
    ),
) -> None:
    """Materialize every product (or one domain's) with its checks; exit 1 if anything failed."""
    mesh = load_mesh()
    domain = list(dict.fromkeys(domain or []))  # a domain named twice runs once
    unknown = [d for d in domain if d not in mesh.project.domain_names()]
    if unknown:
        names = ", ".join(repr(d) for d in unknown)
        invalid(f"unknown domain(s) {names}; domains: {', '.join(mesh.project.domain_names())}")
    check_warehouse(mesh)
    results = run_mesh(mesh, domain or None, lambda line: err.print(line, markup=False, soft_wrap=True), jobs)
    out.print(summary_table(results))
    for renderable in product_reports(results):
        err.print(renderable)
    for result in results:
        for line in domain_lines(result):
            err.print(line, soft_wrap=True)
    raise SystemExit(1 if any(r.status != "success" for r in results) else 0)


def register(app: typer.Typer) -> None:
    app.command("run")(run)
