"""`mesh read D.P --as C [--at VERSION|TIME]`: the rows consumer C may see, through the governed read
(of the current version, or of the one current at a past time or named by its id)."""

from __future__ import annotations

import duckdb
import typer
from rich.text import Text

from mesh_platform.cli.common import fail, invalid, known_domain, known_product, load_mesh, out, plain, print_json
from mesh_platform.cli.tables import Column, print_fitted, shown_of
from mesh_platform.governance.masking import mask_expression
from mesh_platform.governance.read import (
    AccessDenied,
    NotPublished,
    governed_read,
    governed_sql,
    record_read,
)
from mesh_platform.storage.product_store import TamperedVersion, VersionNotFound, parse_at

MAX_LIMIT = 1_000_000_000


def read(
    ref: str = typer.Argument(..., metavar="DOMAIN.PRODUCT"),
    as_: str = typer.Option(..., "--as", help="The consumer domain reading."),
    limit: int = typer.Option(20, "--limit", min=0, max=MAX_LIMIT, help="Rows to show (0 = all)."),
    as_json: bool = typer.Option(False, "--json", help="Rows as a JSON list of objects."),
    at: str = typer.Option(
        None,
        "--at",
        metavar="VERSION|TIME",
        help="Read a past version: its id (`mesh versions D.P`) or an ISO time (UTC unless it says), which reads "
        "the version current then. Access and masking are as of now.",
    ),
) -> None:
    """Show a product's rows as a consumer sees them (pii masked unless granted)."""
    mesh = load_mesh()
    known_product(mesh, ref)
    known_domain(mesh, as_, "--as")
    try:
        when = parse_at(at) if at is not None else None
    except ValueError as exc:
        invalid(f"--at: {exc}")
    try:
        grant = governed_read(mesh, ref, as_, None, via="mesh read", at=when)  # a refusal is audited
        grant.published.check_intact()
    except VersionNotFound as exc:
        invalid(f"--at: {exc}")
    except (AccessDenied, NotPublished, TamperedVersion) as exc:
        fail(str(exc))
    sql = governed_sql(grant, mesh.project.home.masking_key())
    names, rows, total = _fetch(sql, limit)
    record_read(mesh, grant, None, via="mesh read", at=at)
    if as_json:
        print_json([dict(zip(names, row, strict=True)) for row in rows])
        return
    masked = ", ".join(f"{c} ({p})" for c, p in grant.masked.items()) or "none"
    read = f"{grant.producer.domain}.{grant.product.pinned_ref}"  # the major read, when an older one
    title = plain(f"{read} as {as_} — version {grant.published.version}; masked: {masked}")
    types = {c.name: c.type for c in grant.product.columns}
    columns = [
        Column(name, [_cell(row[i], grant.masked.get(name), types.get(name, "string")) for row in rows])
        for i, name in enumerate(names)
    ]
    print_fitted(out, columns, title)
    out.print(shown_of(len(rows), total, "row", "--limit N shows more, --limit 0 all"))


def _fetch(sql: str, limit: int) -> tuple[list[str], list[tuple], int]:
    """Column names, the first `limit` rows (0: all) and how many rows there are in all."""
    with duckdb.connect() as con:
        cursor = con.execute(sql + (f" limit {int(limit)}" if limit else ""))
        names = [d[0] for d in cursor.description]
        rows = cursor.fetchall()
        if limit and len(rows) == limit:
            counted = con.execute(f"select count(*) from ({sql})").fetchone()
            return names, rows, int(counted[0]) if counted else len(rows)
    return names, rows, len(rows)


def _masked_away(policy: str, column_type: str) -> bool:
    """The policy leaves nothing of a value of this type (`null`, or `redact` of a date): every
    value reads NULL, which is the masking, not missing data."""
    return mask_expression(policy, "v", column_type, "") == mask_expression("null", "v", column_type, "")


def _cell(value: object, policy: str | None, column_type: str) -> Text:
    """NULL reads NULL; a masked value is marked as masked, one masked away reads [masked]."""
    if policy is not None:
        if value is None and _masked_away(policy, column_type):
            return Text("[masked]", style="magenta")
        if value is not None:
            return plain(value, style="magenta")  # a zip3 keeps the source's first characters
    return Text("NULL", style="dim italic") if value is None else plain(value)


def register(app: typer.Typer) -> None:
    app.command("read")(read)
