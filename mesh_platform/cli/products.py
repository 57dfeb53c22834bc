"""`mesh products [D.P]`: the catalog, or one product described in full."""

from __future__ import annotations

import json
import re
from typing import Any

import typer
from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from mesh_platform.catalog.products import (
    NotAnOrphan,
    NothingStored,
    human_age,
    product_entries,
    product_entry,
    prune_orphan,
    stored_orphans,
)
from mesh_platform.cli.common import err, fail, invalid, known_product, load_mesh, out, plain, print_json, warn_left_out
from mesh_platform.cli.tables import Column, Fitted, print_fitted
from mesh_platform.descriptor.model import PRODUCT_REF_PATTERN
from mesh_platform.project.mesh import Mesh
from mesh_platform.text import counted, one_line

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


def _fresh_short(f: dict[str, Any]) -> Text:
    """`fresh 16s`, `stale 3.1d`, `no policy 4.0h` or `unpublished`: the state and the age; the
    policy is in the product's own view."""
    age = f" {human_age(f['age_seconds'])}" if f["age_seconds"] is not None else ""
    return Text(f["state"] + age, style=STATE_STYLE[f["state"]])


def _checks_short(status: dict[str, Any]) -> Text:
    if not status["recorded_at"]:
        return Text("-")
    failed, not_run = status["checks_failed"], status.get("checks_not_run", 0)
    text = Text(f"{status['checks_passed']}✔ ")
    text.append(f"{failed}✘", style="red" if failed else "")
    if not_run:
        text.append(f" {not_run} not run", style="yellow")
    return text


def _version_cell(e: dict[str, Any]) -> str:
    if e["version"] is None:
        return "-"
    return e["version"] + (f" (sunset {e['sunset']})" if e["sunset"] else "")


def _catalog_columns(entries: list[dict[str, Any]]) -> list[Column]:
    """One line per product: what identifies it and how it is doing stay; owner, consumers and value
    go, in that order from the last, when the width is short."""
    statuses = [e["status"] for e in entries]
    # the version column when a product declares one (a column of dashes would push out the owner)
    versioned = any(e["version"] is not None for e in entries)
    version = [Column("version", [plain(_version_cell(e)) for e in entries])] if versioned else []
    return [
        Column("product", [plain(e["ref"]) for e in entries]),
        *version,
        Column("owner", [plain(e["owner"]) for e in entries], drop=1),
        Column("last run", [Text.from_markup(_run_cell(s)) for s in statuses]),
        Column("checks", [_checks_short(s) for s in statuses]),
        Column("rows", [Text(f"{s['rows']:,}" if s["rows"] is not None else "-") for s in statuses], justify="right"),
        Column("fresh (age)", [_fresh_short(e["freshness"]) for e in entries]),
        Column("consumers", [plain(", ".join(e["consumers"]) or "-") for e in entries], drop=3),
        Column("value", [plain(one_line(e["value"])) for e in entries], drop=2, prose=True),
    ]


def _describe(e: dict[str, Any]) -> Group:
    s = e["status"]
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column(overflow="fold")
    facts.add_row("owner", plain(e["owner"]))
    if e["version"] is not None:
        facts.add_row(
            "version", plain(_version_cell(e) + (f", an older major of {e['major_of']}" if e["major_of"] else ""))
        )
    facts.add_row("description", plain(e["description"]))
    facts.add_row("value", plain(e["value"]))
    facts.add_row("last run", f"{_run_cell(s)} (run {s['run_id'] or '-'}, at {s['recorded_at'] or '-'})")
    facts.add_row("checks", _checks_cell(s))
    facts.add_row(
        "published", f"version {s['published_version']}, {counted(s['rows'], 'row')}" if s["rows"] is not None else "-"
    )
    facts.add_row("freshness", _freshness_cell(e["freshness"]))
    facts.add_row("consumers (granted)", plain(", ".join(e["consumers"]) or "none"))
    facts.add_row("consumed by", plain(", ".join(e["consumed_by"]) or "none"))
    facts.add_row("pii readers", plain(", ".join(e["pii_readers"]) or f"only the owner ({e['domain']})"))
    for blocker in s["blockers"]:
        facts.add_row("[red]blocked[/]", plain(blocker))
    if s["error"]:
        facts.add_row("[red]error[/]", plain(s["error"]))

    # names, types and policies are never split; descriptions, expectations and results wrap
    cols = e["columns"]
    columns = [
        Column("column", [plain(c["name"]) for c in cols]),
        Column("type", [plain(c["type"]) for c in cols]),
        Column(
            "classification",
            [Text(c["classification"], style="bold magenta" if c["classification"] == "pii" else "") for c in cols],
        ),
        Column("masking for consumers", [plain(c["mask"] or "-") for c in cols]),
        Column("description", [plain(c["description"]) for c in cols], prose=True, wrap=True),
    ]

    results = {c["name"]: c for c in s["checks"]}
    rows: list[tuple[Text, Text, Text, Text]] = []
    for x in e["expectations"]:
        result = results.pop(x["check"], None)
        rows.append((plain(x["check"]), plain(x["severity"]), plain(json.dumps(x["kwargs"])), _result_cell(result)))
    for name, result in results.items():  # checks from the platform, dbt or @suite
        rows.append((plain(name), plain(result.get("severity", "-")), plain("-"), _result_cell(result)))
    checks = [
        Column("check", [r[0] for r in rows]),
        Column("severity", [r[1] for r in rows]),
        Column("arguments", [r[2] for r in rows], prose=True, wrap=True),
        Column("last result", [r[3] for r in rows], prose=True, wrap=True),
    ]
    return Group(
        Panel(facts, title=f"[bold]{e['ref']}[/]", title_align="left"),
        Fitted(columns, Text("columns", style="bold")),
        Fitted(checks, Text("expectations and checks (last run)", style="bold")),
    )
    return Group(Panel(facts, title=f"[bold]{e['ref']}[/]", title_align="left"), columns, checks)


def _result_cell(result: dict[str, Any] | None) -> Text:
    if result is None or not result.get("ran", True):
        return Text((result or {}).get("summary") or "not run", style="yellow")
    word, style = ("passed", "green") if result["passed"] else ("failed", "red")
    summary = result.get("summary") or ""
    kind, _, rest = summary.partition(": ")
    if kind.startswith("expect_") and rest:  # the check's name already says which expectation
        summary = rest
    summary = summary.removeprefix(word).lstrip()
    return Text.assemble((word, style), f" {summary}".rstrip())


def warn_orphans(mesh: Mesh) -> None:
    """One line on stderr per product MESH_HOME stores that no descriptor declares (renamed or removed)."""
    for orphan in stored_orphans(mesh):
        err.print(
            plain(
                f"warning: {orphan.ref} is stored ({orphan.versions} version(s) in {orphan.folder}) but no descriptor "
                f"declares it (renamed or removed?); `mesh products --prune {orphan.ref}` archives it and takes it "
                "out of the Dagster UI"
            ),
            style="yellow",
            soft_wrap=True,
        )


def prune_orphans(mesh: Mesh, refs: list[str], as_json: bool) -> None:
    """`--prune`: archive each named orphan and wipe its Dagster history, saying where each went."""
    for ref in refs:
        if not re.fullmatch(PRODUCT_REF_PATTERN, ref):
            invalid(f"--prune {ref!r} is not DOMAIN.PRODUCT")
    done = []
    for ref in refs:
        try:
            pruned = prune_orphan(mesh, ref)
        except NothingStored as exc:
            invalid(f"--prune {ref}: {exc}")
        except NotAnOrphan as exc:
            fail(f"--prune {ref}: {exc} (nothing was changed)")
        done.append(pruned)
        archived = f"its {pruned.versions} version(s) moved to {pruned.archived_to}" if pruned.archived_to else ""
        wiped = "its materialization history wiped from the Dagster instance" if pruned.history_wiped else ""
        err.print(plain(f"pruned {ref}: " + "; ".join(p for p in (archived, wiped) if p)), soft_wrap=True)
    if as_json:
        print_json(
            [
                {
                    "ref": p.ref,
                    "archived_to": str(p.archived_to) if p.archived_to else None,
                    "versions": p.versions,
                    "history_wiped": p.history_wiped,
                }
                for p in done
            ]
        )


def products(
    ref: str = typer.Argument(None, metavar="[DOMAIN.PRODUCT]", help="Describe this product in full."),
    as_json: bool = typer.Option(False, "--json", help="JSON on stdout: the catalog list, or one product."),
    prune: list[str] = typer.Option(
        None,
        "--prune",
        metavar="DOMAIN.PRODUCT",
        help="A product MESH_HOME stores that no descriptor declares (renamed or removed): move its versions "
        "to MESH_HOME/archive and wipe its Dagster history, so neither the catalog nor the UI lists it "
        "(repeatable).",
    ),
) -> None:
    """List every data product (owner, value, last run and checks, freshness, consumers), or describe one."""
    mesh = load_mesh()
    if prune:
        if ref is not None:
            invalid("--prune takes the products to prune; give no DOMAIN.PRODUCT argument with it")
        prune_orphans(mesh, prune, as_json)
        return
    if ref is not None:
        known_product(mesh, ref)
        entry = product_entry(mesh, ref)
        if as_json:
            print_json(entry)
        else:
            out.print(_describe(entry))
        return
    warn_left_out(mesh)
    warn_orphans(mesh)
    entries = product_entries(mesh)
    if as_json:
        print_json(entries)
        return
    title = Text(f"data products: {len(entries)}", style="bold")
    print_fitted(out, _catalog_columns(entries), title, more="`mesh products DOMAIN.PRODUCT` shows one in full")


def register(app: typer.Typer) -> None:
    app.command("products")(products)
