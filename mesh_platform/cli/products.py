"""`mesh products [D.P]`: the catalog, or one product described in full."""

from __future__ import annotations

import json
from typing import Any

import typer
from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from mesh_platform.catalog import human_age, product_entries, product_entry
from mesh_platform.cli.common import known_product, load_mesh, out, plain, print_json, warn_left_out

STATE_STYLE = {"fresh": "green", "stale": "bold red", "unpublished": "yellow", "no policy": "dim"}


def _freshness_cell(f: dict[str, Any]) -> str:
    state = f"[{STATE_STYLE[f['state']]}]{f['state']}[/]"
    policy = f"≤ {f['policy']}" if f["policy"] else "no policy"
    age = f", age {human_age(f['age_seconds'])}" if f["age_seconds"] is not None else ""
    return f"{state} ({policy}{age})"


def _checks_cell(status: dict[str, Any]) -> str:
    if not status["recorded_at"]:
        return "-"
    failed, not_run = status["checks_failed"], status.get("checks_not_run", 0)
    cell = f"{status['checks_passed']} ✔ " + (f"[red]{failed} ✘[/]" if failed else "0 ✘")
    return cell + (f" [yellow]{not_run} not run[/]" if not_run else "")


def _run_cell(status: dict[str, Any]) -> str:
    last = status["last_run"]
    style = {"published": "green", "failed_checks": "red", "error": "red"}.get(last, "yellow")
    return f"[{style}]{last}[/]"


def _catalog_table(entries: list[dict[str, Any]]) -> Table:
    table = Table(title="data products", show_lines=True)
    for column in ("product", "owner", "last run", "checks", "rows", "freshness", "consumers", "value"):
        table.add_column(column, overflow="fold")
    for e in entries:
        s = e["status"]
        table.add_row(
            plain(e["ref"]),
            plain(e["owner"]),
            _run_cell(s),
            _checks_cell(s),
            f"{s['rows']:,}" if s["rows"] is not None else "-",
            _freshness_cell(e["freshness"]),
            plain(", ".join(e["consumers"]) or "-"),
            plain(e["value"][:120]),
        )
    return table


def _describe(e: dict[str, Any]) -> Group:
    s = e["status"]
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column(overflow="fold")
    facts.add_row("owner", plain(e["owner"]))
    facts.add_row("description", plain(e["description"]))
    facts.add_row("value", plain(e["value"]))
    facts.add_row("last run", f"{_run_cell(s)} (run {s['run_id'] or '-'}, at {s['recorded_at'] or '-'})")
    facts.add_row("checks", _checks_cell(s))
    facts.add_row(
        "published", f"version {s['published_version']}, {s['rows']:,} rows" if s["rows"] is not None else "-"
    )
    facts.add_row("freshness", _freshness_cell(e["freshness"]))
    facts.add_row("consumers (granted)", plain(", ".join(e["consumers"]) or "none"))
    facts.add_row("consumed by", plain(", ".join(e["consumed_by"]) or "none"))
    facts.add_row("pii readers", plain(", ".join(e["pii_readers"]) or f"only the owner ({e['domain']})"))
    for blocker in s["blockers"]:
        facts.add_row("[red]blocked[/]", plain(blocker))
    if s["error"]:
        facts.add_row("[red]error[/]", plain(s["error"]))

    columns = Table(title="columns", title_justify="left")
    for name in ("column", "type", "classification", "masking for consumers", "description"):
        columns.add_column(name, overflow="fold")
    for c in e["columns"]:
        classification = (
            f"[bold magenta]{c['classification']}[/]" if c["classification"] == "pii" else c["classification"]
        )
        columns.add_row(c["name"], c["type"], classification, c["mask"] or "-", plain(c["description"]))

    results = {c["name"]: c for c in s["checks"]}
    checks = Table(title="expectations and checks (last run)", title_justify="left")
    for name in ("check", "expectation", "severity", "last result"):
        checks.add_column(name, overflow="fold")
    for x in e["expectations"]:
        result = results.pop(x["check"], None)
        expectation = plain(f"{x['type']} {json.dumps(x['kwargs'])}")
        checks.add_row(x["check"], expectation, x["severity"], _result_cell(result))
    for name, result in results.items():  # checks from the platform, dbt or @suite
        checks.add_row(plain(name), "-", result.get("severity", "-"), _result_cell(result))
    return Group(Panel(facts, title=f"[bold]{e['ref']}[/]", title_align="left"), columns, checks)


def _result_cell(result: dict[str, Any] | None) -> Text:
    if result is None or not result.get("ran", True):
        return Text((result or {}).get("summary") or "not run", style="yellow")
    mark = ("passed", "green") if result["passed"] else ("failed", "red")
    return Text.assemble(mark, f" {result.get('summary') or ''}".rstrip())


def products(
    ref: str = typer.Argument(None, metavar="[DOMAIN.PRODUCT]", help="Describe this product in full."),
    as_json: bool = typer.Option(False, "--json", help="JSON on stdout: the catalog list, or one product."),
) -> None:
    """List every data product (owner, value, last run and checks, freshness, consumers), or describe one."""
    mesh = load_mesh()
    if ref is not None:
        known_product(mesh, ref)
        entry = product_entry(mesh, ref)
        if as_json:
            print_json(entry)
        else:
            out.print(_describe(entry))
        return
    warn_left_out(mesh)
    entries = product_entries(mesh)
    if as_json:
        print_json(entries)
        return
    out.print(_catalog_table(entries))


def register(app: typer.Typer) -> None:
    app.command("products")(products)
