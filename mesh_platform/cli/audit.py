"""`mesh audit`: every governed read — who read which product version, with which masking."""

from __future__ import annotations

import json

import typer
from rich.table import Table

from mesh_platform.cli.common import invalid, known_product, load_mesh, out, plain, print_json


def audit(
    consumer: str = typer.Option(None, "--consumer", help="Only reads by this domain."),
    product: str = typer.Option(None, "--product", help="Only reads of this product (DOMAIN.PRODUCT)."),
    limit: int = typer.Option(
        50, "--limit", min=0, max=1_000_000_000, help="Latest reads to show in the table (0 = all; JSON lists all)."
    ),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """List governed reads from MESH_HOME/audit/reads.jsonl, newest last."""
    mesh = load_mesh()
    path = mesh.project.home.audit_dir / "reads.jsonl"
    records = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    # names of the mesh, or of its history (a product or domain since removed still has its reads)
    if product is not None and product not in {r["product"] for r in records}:
        known_product(mesh, product)
    if consumer is not None and consumer not in set(mesh.project.domain_names()) | {r["consumer"] for r in records}:
        invalid(f"--consumer: unknown domain {consumer!r}; domains: {', '.join(mesh.project.domain_names())}")
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
        table.add_row(*map(plain, (r["at"][:19], r["consumer"], r["product"], r["version"], masked, r["via"])))
    out.print(table)


def register(app: typer.Typer) -> None:
    app.command("audit")(audit)
