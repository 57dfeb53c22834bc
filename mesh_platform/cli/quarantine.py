"""`mesh quarantine [D.P]`: records held back from products, with reason and source."""

from __future__ import annotations

import typer
from rich.table import Table

from mesh_platform.cli.common import known_domain, known_product, load_mesh, out, plain, print_json
from mesh_platform.quarantine import quarantined


def quarantine(
    ref: str = typer.Argument(None, metavar="[DOMAIN.PRODUCT]"),
    as_: str = typer.Option(None, "--as", help="Read as this domain: its owner sees pii fields unmasked."),
    as_json: bool = typer.Option(False, "--json"),
    limit: int = typer.Option(
        50, "--limit", min=0, max=1_000_000_000, help="Rows to show in the table (JSON lists all)."
    ),
) -> None:
    """List quarantined records (all, or those held back from one product)."""
    mesh = load_mesh()
    if ref is not None:
        known_product(mesh, ref)
    if as_ is not None:
        known_domain(mesh, as_, "--as")
    records = quarantined(mesh, ref, as_)
    if as_json:
        print_json(records)
        return
    table = Table(title=plain(f"quarantine{' of ' + ref if ref else ''}: {len(records):,} record(s)"))
    for column in ("domain", "asset", "reason", "source", "record"):
        table.add_column(column, overflow="fold")
    for r in records[:limit]:
        cells = (r["domain"], r["asset"], r["reason"], f"{r['source_file']}:{r['source_line']}", r["record"][:100])
        table.add_row(*map(plain, cells))
    out.print(table)


def register(app: typer.Typer) -> None:
    app.command("quarantine")(quarantine)
