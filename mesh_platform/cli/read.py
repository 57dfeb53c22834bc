"""`mesh read D.P --as C`: the rows consumer C may see, through the governed read."""

from __future__ import annotations

import duckdb
import typer
from rich.table import Table

from mesh_platform.cli.common import fail, known_domain, known_product, load_mesh, out, plain, print_json
from mesh_platform.governance.read import (
    AccessDenied,
    NotPublished,
    governed_read,
    governed_sql,
    record_read,
)
from mesh_platform.store import TamperedVersion

MAX_LIMIT = 1_000_000_000


def read(
    ref: str = typer.Argument(..., metavar="DOMAIN.PRODUCT"),
    as_: str = typer.Option(..., "--as", help="The consumer domain reading."),
    limit: int = typer.Option(20, "--limit", min=0, max=MAX_LIMIT, help="Rows to show (0 = all)."),
    as_json: bool = typer.Option(False, "--json", help="Rows as a JSON list of objects."),
) -> None:
    """Show a product's rows as a consumer sees them (pii masked unless granted)."""
    mesh = load_mesh()
    known_product(mesh, ref)
    known_domain(mesh, as_, "--as")
    try:
        grant = governed_read(mesh, ref, as_, None, via="mesh read")  # a refusal is audited
        grant.published.check_intact()
    except (AccessDenied, NotPublished, TamperedVersion) as exc:
        fail(str(exc))
    sql = governed_sql(grant, mesh.project.home.masking_key())
    if limit:
        sql += f" limit {int(limit)}"
    with duckdb.connect() as con:
        cursor = con.execute(sql)
        names = [d[0] for d in cursor.description]
        rows = cursor.fetchall()
    record_read(mesh, grant, None, via="mesh read")
    if as_json:
        print_json([dict(zip(names, row, strict=True)) for row in rows])
        return
    masked = ", ".join(f"{c} ({p})" for c, p in grant.masked.items()) or "none"
    table = Table(title=plain(f"{ref} as {as_} — version {grant.published.version}; masked: {masked}"))
    for name in names:
        table.add_column(plain(name), overflow="fold")
    for row in rows:
        table.add_row(*(plain("" if v is None else v) for v in row))
    out.print(table)


def register(app: typer.Typer) -> None:
    app.command("read")(read)
