"""Governed reads in a consumer's PostgreSQL database: the platform's raw copy of a published
version and the consumer's masking view over it. Every function here runs on a `platform_session`.

- `mesh_published.<copy>`: the published version's Parquet file, loaded once, plus one column per
  `token`-masked column holding its token, computed while loading by DuckDB with the same SQL as
  every other governed read (so the tokens are DuckDB's, byte for byte). Owned by `mesh_platform`;
  the consumer's role has no privilege on the schema. The copy's name hashes the version, the key
  and its token columns: a new version, key or token policy is a new copy.
- `"<producer>"."<product>"`: a view owned by `mesh_platform` (so it reads the copy with the
  platform's rights), selecting the token columns in place of the raw ones and applying the other
  policies (`year`, `zip3`, `redact`, `null`, none of which uses the key) in PostgreSQL SQL. The
  consumer's role gets USAGE on the schema and SELECT on the view, nothing else. Its comment records
  what it shows (product, version, masking, copy), which is how grants are synced.

The masking key is used only in the platform's DuckDB while loading: it is in no table, view,
function or statement on the server, so no privilege can reveal it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import duckdb

from mesh_platform.governance.masking import mask_expression
from mesh_platform.pg_warehouse import URL_ENV, WarehouseConfigError
from mesh_platform.pg_warehouse.roles import PLATFORM_ROLE, PlatformSession
from mesh_platform.pg_warehouse.transfer import BATCH_ROWS, ingest_and_swap
from mesh_platform.sql.syntax import literal, quote
from mesh_platform.storage.duckdb_warehouse import memory_limit

if TYPE_CHECKING:
    from mesh_platform.governance.read import ReadGrant

PUBLISHED_SCHEMA = "mesh_published"


@dataclass(frozen=True)
class GovernedView:
    """A masking view in a consumer's database, as its comment records it."""

    schema: str
    name: str
    product: str
    version: str
    masked: dict[str, str]
    copy: str

    @property
    def relation(self) -> str:
        return f"{quote(self.schema)}.{quote(self.name)}"


def token_column(column: str) -> str:
    """The copy's column holding `column`'s tokens (a name no descriptor column can have)."""
    name = f"{column}#token"
    return name if len(name.encode()) <= 63 else f"#token_{hashlib.sha1(column.encode()).hexdigest()[:16]}"


def token_columns(grant: ReadGrant) -> dict[str, str]:
    """The product's `token`-masked columns in the published version (column -> type). Computed for
    every consumer alike, so a change of `pii_readers` needs no new copy."""
    published = grant.published.columns
    return {c.name: c.type for c in grant.product.columns if c.mask_policy == "token" and c.name in published}


def copy_name(grant: ReadGrant, key: str) -> str:
    """The copy's table name (PostgreSQL identifiers stop at 63 bytes). The key enters as a digest."""
    tokens = ",".join(sorted(token_columns(grant)))
    basis = "|".join((grant.published.version, hashlib.sha256(key.encode()).hexdigest(), tokens))
    return f"{grant.producer.domain}__{grant.product.name}"[:40] + "__" + hashlib.sha1(basis.encode()).hexdigest()[:12]


def ensure_schema(cur: Any, schema: str) -> None:
    """`schema`, owned by the platform: one owned by anyone else is refused, never written into."""
    cur.execute("select pg_get_userbyid(nspowner) from pg_namespace where nspname = %s", (schema,))
    found = cur.fetchall()
    if not found:
        cur.execute(f"create schema {quote(schema)}")
    elif found[0][0] != PLATFORM_ROLE:
        cur.execute("select current_database()")
        database = cur.fetchall()[0][0]
        raise WarehouseConfigError(
            f"{URL_ENV}: schema {schema!r} of database {database!r} belongs to {found[0][0]!r}, not to "
            f"{PLATFORM_ROLE!r}; the platform does not write governed reads into it (drop it)"
        )


def load_copy(pg: PlatformSession, grant: ReadGrant, key: str) -> str:
    """The published version with its token columns as `mesh_published.<copy>`, loaded once."""
    table = copy_name(grant, key)
    relation = f"{PUBLISHED_SCHEMA}.{quote(table)}"
    with pg.cursor() as cur:
        ensure_schema(cur, PUBLISHED_SCHEMA)
        cur.execute("select to_regclass(%s) is not null", (relation,))
        if cur.fetchall()[0][0]:
            return table
    tokens = [
        f"{mask_expression('token', name, kind, key)} as {quote(token_column(name))}"
        for name, kind in token_columns(grant).items()
    ]
    with duckdb.connect() as duck, pg.arrow() as arrow:
        duck.execute(f"set memory_limit = '{memory_limit()}'")
        select = ", ".join(["*", *tokens])
        reader = duck.sql(f"select {select} from read_parquet({literal(grant.published.path)})").to_arrow_reader(
            BATCH_ROWS
        )
        ingest_and_swap(arrow, reader, PUBLISHED_SCHEMA, table)
    return table


def view_sql(grant: ReadGrant, copy: str) -> str:
    """The consumer's projection of the copy: `governed_sql()`'s columns, with tokens read from the
    copy's token columns."""
    exprs = []
    for column in grant.product.columns:
        if column.name not in grant.published.columns:
            continue
        policy = grant.masked.get(column.name)
        if policy == "token":
            exprs.append(f"{quote(token_column(column.name))} as {quote(column.name)}")
        elif policy:  # no other policy uses the key
            exprs.append(f"{mask_expression(policy, column.name, column.type, '', 'postgres')} as {quote(column.name)}")
        else:
            exprs.append(quote(column.name))
    return f"select {', '.join(exprs)} from {PUBLISHED_SCHEMA}.{quote(copy)}"


def create_view(pg: PlatformSession, grant: ReadGrant, copy: str, reader: str) -> GovernedView:
    """`"<producer>"."<product>"` over `copy` for the consumer's role `reader`, in one transaction
    (a reader sees the old view or the new one, with its grant). Replaced in place, which keeps the
    consumer's own views over it (every policy keeps a column's type); dropped and made again, with
    them, when the product's columns changed."""
    view = GovernedView(
        grant.producer.domain, grant.product.family, grant.ref, grant.published.version, grant.masked, copy
    )
    note = json.dumps({"product": view.product, "version": view.version, "masked": view.masked, "copy": copy})
    select = view_sql(grant, copy)
    with pg.cursor() as cur:
        ensure_schema(cur, view.schema)
        cur.execute("begin")
        try:
            cur.execute(f"create or replace view {view.relation} as {select}")
        except Exception:  # a column renamed, dropped or retyped: replace cannot do that
            cur.execute("rollback")
            cur.execute("begin")
            cur.execute(f"drop view if exists {view.relation} cascade")
            cur.execute(f"create view {view.relation} as {select}")
        cur.execute(f"comment on view {view.relation} is {literal(note)}")
        cur.execute(f"grant usage on schema {quote(view.schema)} to {quote(reader)}")
        cur.execute(f"grant select on {view.relation} to {quote(reader)}")
        cur.execute("commit")
    return view


def governed_views(pg: PlatformSession) -> list[GovernedView]:
    """The platform's views in this database; one without a readable comment has product ''."""
    with pg.cursor() as cur:
        cur.execute(
            "select n.nspname, c.relname, obj_description(c.oid, 'pg_class') from pg_class c "
            "join pg_namespace n on n.oid = c.relnamespace "
            "where c.relkind = 'v' and pg_get_userbyid(c.relowner) = %s and n.nspname <> %s",
            (PLATFORM_ROLE, PUBLISHED_SCHEMA),
        )
        rows = cur.fetchall()
    views = []
    for schema, name, comment in rows:
        try:
            note = json.loads(comment or "")
            views.append(GovernedView(schema, name, note["product"], note["version"], note["masked"], note["copy"]))
        except (ValueError, KeyError, TypeError):
            views.append(GovernedView(schema, name, "", "", {}, ""))
    return views


def drop_view(pg: PlatformSession, view: GovernedView) -> None:
    """Drop a view the consumer may no longer read, with the consumer's own views over it."""
    with pg.cursor() as cur:
        cur.execute(f"drop view if exists {view.relation} cascade")


def drop_unused(pg: PlatformSession) -> list[str]:
    """Drop the copies no view reads and the platform's schemas left empty; returns the copies."""
    with pg.cursor() as cur:
        cur.execute(
            "select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace "
            "where n.nspname = %s and c.relkind = 'r' and not exists ("
            "  select 1 from pg_depend d join pg_rewrite r on r.oid = d.objid "
            "  where d.classid = 'pg_rewrite'::regclass and d.refobjid = c.oid and r.ev_class <> c.oid)",
            (PUBLISHED_SCHEMA,),
        )
        copies = [name for (name,) in cur.fetchall()]
        for name in copies:
            cur.execute(f"drop table if exists {PUBLISHED_SCHEMA}.{quote(name)}")
        cur.execute(
            "select n.nspname from pg_namespace n where pg_get_userbyid(n.nspowner) = %s and n.nspname <> %s "
            "and not exists (select 1 from pg_class c where c.relnamespace = n.oid)",
            (PLATFORM_ROLE, PUBLISHED_SCHEMA),
        )
        for (schema,) in cur.fetchall():
            cur.execute(f"drop schema if exists {quote(schema)}")
    return copies
