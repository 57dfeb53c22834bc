"""`mesh versions D.P`: the published versions the store keeps, newest first, with the current one marked."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import typer
from rich.text import Text

from mesh_platform.catalog.products import human_age
from mesh_platform.cli.common import known_product, load_mesh, out, plain, print_json
from mesh_platform.cli.tables import Column, print_fitted
from mesh_platform.storage.product_store import KEEP_VERSIONS, ProductStore, Published, published_at


def check_counts(checks: list[dict[str, Any]] | None) -> dict[str, int] | None:
    """How many of a version's checks passed, failed and were not run (None: not recorded)."""
    if checks is None:
        return None
    ran = [c for c in checks if c.get("ran", True)]
    return {
        "passed": sum(1 for c in ran if c.get("passed")),
        "failed": sum(1 for c in ran if not c.get("passed")),
        "not_run": len(checks) - len(ran),
    }


def version_entry(version: Published, current: str | None) -> dict[str, Any]:
    return {
        "version": version.version,
        "current": version.version == current,
        "published_at": version.published_at,
        "rows": version.rows,
        "run_id": version.run_id,
        "checks": check_counts(version.checks),
        "check_results": version.checks,
        "path": version.path,
    }


def _checks_cell(counts: dict[str, int] | None) -> Text:
    if counts is None:
        return Text("not recorded", style="dim")
    text = Text(f"{counts['passed']}✔ ")
    text.append(f"{counts['failed']}✘", style="red" if counts["failed"] else "")
    if counts["not_run"]:
        text.append(f" {counts['not_run']} not run", style="yellow")
    return text


def _columns(entries: list[dict[str, Any]], now: datetime) -> list[Column]:
    ages = [(now - datetime.fromisoformat(e["published_at"])).total_seconds() for e in entries]
    return [
        Column("version", [plain(e["version"]) for e in entries]),
        Column("", [Text("current", style="bold green") if e["current"] else Text("") for e in entries]),
        Column(
            "published (UTC)",
            [plain(f"{datetime.fromisoformat(e['published_at']):%Y-%m-%d %H:%M:%S}") for e in entries],
        ),
        Column("age", [plain(human_age(a)) for a in ages], justify="right", drop=2),
        Column("rows", [Text(f"{e['rows']:,}") for e in entries], justify="right"),
        Column("run", [plain(e["run_id"] or "-") for e in entries], drop=1),
        Column("checks", [_checks_cell(e["checks"]) for e in entries]),
    ]


def versions(
    ref: str = typer.Argument(..., metavar="DOMAIN.PRODUCT"),
    as_json: bool = typer.Option(False, "--json", help="JSON on stdout: the product's retention and its versions."),
) -> None:
    """List a product's published versions, newest first: id, time, rows, run and check results
    (`mesh read D.P --as C --at VERSION|TIME` reads one)."""
    mesh = load_mesh()
    known_product(mesh, ref)
    producer, product = mesh.product(ref)
    store = ProductStore(mesh.project.home)
    index = store.versions(producer.domain, product.name)
    current = store.current(producer.domain, product.name)
    current_id = current.version if current else None
    entries = [version_entry(v, current_id) for v in sorted(index.versions, key=published_at, reverse=True)]
    kept = f"versions published in the last {product.retention}" if product.retention else f"the last {KEEP_VERSIONS}"
    if as_json:
        print_json(
            {
                "product": ref,
                "retention": product.retention,
                "keeps": kept,
                "first_published_at": index.first_published_at,
                "pruned": index.pruned,
                "versions": entries,
            }
        )
        return
    if not entries:
        out.print(plain(f"{ref} has no published version yet: run `mesh run --domain {producer.domain}`"))
        return
    title = plain(f"{ref}: {len(entries)} version(s) kept ({kept}); {index.pruned} pruned")
    print_fitted(out, _columns(entries, datetime.now(UTC)), title, more="--json shows every field")
    out.print(Text(f"read one: mesh read {ref} --as CONSUMER --at VERSION|TIME", style="dim"))


def register(app: typer.Typer) -> None:
    app.command("versions")(versions)
