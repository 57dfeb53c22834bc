"""`mesh audit`: every governed read — who read which product version, with which masking."""

from __future__ import annotations

import json

import typer
from rich.table import Table

from mesh_platform.cli.common import load_mesh, out, print_json


def audit(
    consumer: str = typer.Option(None, "--consumer", help="Only reads by this domain."),
    product: str = typer.Option(None, "--product", help="Only reads of this product (DOMAIN.PRODUCT)."),
    limit: int = typer.Option(50, "--limit", help="Latest reads to show in the table (JSON lists all)."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """List governed reads from MESH_HOME/audit/reads.jsonl, newest last."""
    path = load_mesh().project.home.audit_dir / "reads.jsonl"
    records = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    records = [
        r for r in records if (not consumer or r["consumer"] == consumer) and (not product or r["product"] == product)
    ]
    if as_json:
        print_json(records)
        return
    table = Table(title=f"governed reads: {len(records):,}")
    for column in ("at", "consumer", "product", "version", "masked columns", "via"):
        table.add_column(column, overflow="fold")
    for r in records[-limit:]:
        masked = ", ".join(f"{c} ({p})" for c, p in r["masked_columns"].items()) or "none"
        table.add_row(r["at"][:19], r["consumer"], r["product"], r["version"], masked, r["via"])
    out.print(table)


def register(app: typer.Typer) -> None:
    app.command("audit")(audit)
