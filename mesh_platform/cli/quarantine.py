"""`mesh quarantine [D.P]`: records held back from products, with reason and source."""

from __future__ import annotations

from pathlib import Path

import typer

from mesh_platform.catalog.quarantined_records import quarantined
from mesh_platform.cli.common import known_domain, known_product, load_mesh, out, plain, print_json
from mesh_platform.cli.tables import Column, print_fitted, shown_of


def quarantine(
    ref: str = typer.Argument(None, metavar="[DOMAIN.PRODUCT]"),
    as_: str = typer.Option(None, "--as", help="Read as this domain: its owner sees pii fields unmasked."),
    as_json: bool = typer.Option(False, "--json"),
    limit: int = typer.Option(
        50, "--limit", min=0, max=1_000_000_000, help="Records to show in the table (0 = all; JSON lists all)."
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
    shown = records[:limit] if limit else records
    columns = [
        Column("domain", [plain(r["domain"]) for r in shown], drop=1),
        Column("asset", [plain(r["asset"]) for r in shown]),
        Column("reason", [plain(r["reason"]) for r in shown]),
        Column(
            "source",
            [
                plain(Path(r["source_file"]).name + (f":{r['source_line']}" if r["source_line"] is not None else ""))
                for r in shown
            ],
        ),
        Column("record", [plain(r["record"]) for r in shown], drop=2, prose=True),
    ]
    title = plain(f"quarantine{' of ' + ref if ref else ''}")
    print_fitted(out, columns, title, more="--json has every field")
    out.print(shown_of(len(shown), len(records), "record", "--limit N shows more, --limit 0 all"))


def register(app: typer.Typer) -> None:
    app.command("quarantine")(quarantine)
