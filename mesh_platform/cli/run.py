"""`mesh run`: materialize products and their checks through the Dagster instance."""

from __future__ import annotations

import typer
from rich.table import Table

from mesh_platform.cli.common import err, fail, load_mesh, out
from mesh_platform.mesh import Mesh
from mesh_platform.pg_warehouse import PgWarehouse, warehouse_kind
from mesh_platform.run_scheduler import run_mesh
from mesh_platform.warehouse import memory_limit


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
        help="Domains run at the same time, each in its own process (1: one after another). "
        "Default: 2 while the sources and landing files are smaller than DuckDB's memory limit, else 1.",
        show_default=False,
    ),
) -> None:
    """Materialize every product (or one domain's) with its checks; exit 1 if anything failed."""
    mesh = load_mesh()
    unknown = [d for d in domain or [] if d not in mesh.project.domain_names()]
    if unknown:
        fail(f"unknown domain(s) {', '.join(unknown)}; domains: {', '.join(mesh.project.domain_names())}")
    check_warehouse(mesh)
    results = run_mesh(mesh, domain or None, lambda line: err.print(line, markup=False), jobs)
    table = Table(title="mesh run")
    for column in ("domain", "product", "status", "rows", "time (s)", "checks passed", "checks failed"):
        table.add_column(column, justify="right" if column in ("rows", "time (s)") or "checks" in column else "left")
    for result in results:
        for p in result.products:
            table.add_row(
                p.domain,
                p.product,
                p.status,
                f"{p.rows:,}" if p.rows is not None else "-",
                f"{p.seconds:.1f}" if p.seconds is not None else "-",
                str(p.checks_passed),
                str(p.checks_failed),
            )
        if not result.products:
            table.add_row(result.domain, "-", result.status, "-", f"{result.seconds:.1f}", "-", "-")
    out.print(table)
    failed = [r for r in results if r.status != "success"]
    for result in failed:
        err.print(f"[bold red]{result.domain}: {result.status}[/]")
        if result.error:
            err.print(result.error, markup=False)
    raise SystemExit(1 if failed else 0)


def register(app: typer.Typer) -> None:
    app.command("run")(run)
