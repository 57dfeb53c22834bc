"""`mesh products`: the catalog."""

from __future__ import annotations

import typer
from rich.table import Table

from mesh_platform.catalog import product_entries
from mesh_platform.cli.common import load_mesh, out, print_json


def products(as_json: bool = typer.Option(False, "--json", help="The catalog as a JSON list.")) -> None:
    """List every data product: domain, owner, value, status of the last run and checks, consumers."""
    entries = product_entries(load_mesh())
    if as_json:
        print_json(entries)
        return
    table = Table(title="data products", show_lines=True)
    for column in ("product", "owner", "last run", "checks", "rows", "consumers", "value"):
        table.add_column(column, overflow="fold")
    for e in entries:
        s = e["status"]
        checks = f"{s['checks_passed']} ✔ {s['checks_failed']} ✘" if s["recorded_at"] else "-"
        rows = f"{s['rows']:,}" if s["rows"] is not None else "-"
        table.add_row(
            e["ref"], e["owner"], s["last_run"], checks, rows, ", ".join(e["consumers"]) or "-", e["value"][:120]
        )
    out.print(table)


def register(app: typer.Typer) -> None:
    app.command("products")(products)
