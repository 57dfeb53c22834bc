"""`mesh audit`: every governance decision — reads, refusals, raw pii reads, sandbox refusals."""

from __future__ import annotations

import typer

from mesh_platform.cli.common import err, invalid, known_product, load_mesh, out, plain, print_json
from mesh_platform.cli.tables import Column, print_fitted, shown_of
from mesh_platform.governance.audit import AuditLog


def _what(record: dict) -> str:
    if record.get("event") == "sandbox_refusal":
        return f"{record.get('target')} ({record.get('owner')})"
    return str(record.get("product", ""))


def _detail(record: dict) -> str:
    event = record.get("event")
    if event in ("read", "raw_read"):
        return ", ".join(f"{c} ({p})" for c, p in (record.get("masked_columns") or {}).items()) or "none masked"
    if event == "refused":
        return f"[{record.get('rule')}] {record.get('reason', '')}"
    return str(record.get("agreement", ""))


def audit(
    consumer: str = typer.Option(None, "--consumer", help="Only decisions about this domain as the reader."),
    product: str = typer.Option(None, "--product", help="Only reads of this product (DOMAIN.PRODUCT)."),
    limit: int = typer.Option(
        50, "--limit", min=0, max=1_000_000_000, help="Latest decisions to show in the table (0 = all; JSON lists all)."
    ),
    verify: bool = typer.Option(False, "--verify", help="Check the hash chain; exit 1 at the first broken line."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """List governance decisions from MESH_HOME/audit/reads.jsonl, newest last."""
    mesh = load_mesh()
    log = AuditLog(mesh.project.home)
    if verify:
        count, broken = log.verify()
        if as_json:
            print_json({"verified": broken is None, "lines": count, "broken": broken and broken.__dict__})
        elif broken is None:
            err.print(plain(f"✔ {count} audit line(s), the chain holds"))
        else:
            err.print(plain(f"✘ {log.path}:{broken.line}: {broken.reason} ({count} line(s) before it verify)"))
        raise SystemExit(0 if broken is None else 1)
    records = list(log.records())
    # names of the mesh, or of its history (a product or domain since removed still has its reads)
    if product is not None and product not in {r.get("product") for r in records}:
        known_product(mesh, product)
    if consumer is not None and consumer not in set(mesh.project.domain_names()) | {r.get("consumer") for r in records}:
        invalid(f"--consumer: unknown domain {consumer!r}; domains: {', '.join(mesh.project.domain_names())}")
    records = [
        r
        for r in records
        if (not consumer or r.get("consumer") == consumer) and (not product or r.get("product") == product)
    ]
    if as_json:
        print_json(records)
        return
    shown = records[-limit:] if limit else records
    columns = [
        Column("at", [plain(str(r.get("at", ""))[:19].replace("T", " ")) for r in shown]),
        Column("event", [plain(r.get("event", "")) for r in shown]),
        Column("reader", [plain(r.get("consumer", "")) for r in shown]),
        Column("what", [plain(_what(r)) for r in shown]),
        Column("version", [plain(r.get("version") or "") for r in shown], drop=3),
        Column("via", [plain(r.get("via", "")) for r in shown], drop=2),
        Column("detail", [plain(_detail(r)) for r in shown], drop=1, prose=True),
    ]
    print_fitted(out, columns, plain("governance decisions, newest last"), more="--json has every field")
    out.print(shown_of(len(shown), len(records), "decision", "the latest; --limit N shows more, --limit 0 all"))


def register(app: typer.Typer) -> None:
    app.command("audit")(audit)
