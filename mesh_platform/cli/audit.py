"""`mesh audit`: every governance decision — reads, refusals, raw pii reads, sandbox refusals."""

from __future__ import annotations

import typer
from rich.table import Table

from mesh_platform.cli.common import err, invalid, known_product, load_mesh, out, plain, print_json
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
    table = Table(title=plain(f"governance decisions: {len(records):,}"))
    for column in ("at", "event", "reader", "what", "version", "detail", "via"):
        table.add_column(column, overflow="fold")
    for r in records[-limit:] if limit else records:
        table.add_row(
            *(
                plain(v)
                for v in (
                    str(r.get("at", ""))[:19],
                    r.get("event", ""),
                    r.get("consumer", ""),
                    _what(r),
                    r.get("version") or "",
                    _detail(r),
                    r.get("via", ""),
                )
            )
        )
    out.print(table)


def register(app: typer.Typer) -> None:
    app.command("audit")(audit)
