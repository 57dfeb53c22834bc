"""The PostgreSQL warehouse (`MESH_WAREHOUSE=postgres`): the dbt `postgres` target plus the
platform's read and write adapters for it.

Each domain builds in its own database on the server `MESH_WAREHOUSE_URL` names, called after the
domain (as each domain has its own DuckDB file otherwise), schema `main`; PostgreSQL has no
cross-database queries, so a domain can only reach another's product through the governed read:

- read: the product's current published version is loaded once into the consumer's database
  (`mesh_published."<domain>__<product>__<version>"`) and exposed as the view
  `"<domain>"."<product>"`, which applies the consumer's masking in PostgreSQL SQL. Recreated on
  every run, so grant changes apply on the next run; the views are what dbt sources read.
- write: a Python asset computes in the domain's DuckDB (its SQL is DuckDB's) and its table is
  landed in the domain's database, where dbt models read it.
- publish: a built table is exported as Parquet (streamed, numeric as double) and audited and
  published by the same write-audit-publish as on DuckDB.

Data moves as Arrow over ADBC (PostgreSQL's COPY binary protocol).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote as url_quote
from urllib.parse import unquote, urlsplit

import duckdb

from mesh_platform.governance.policies import quote

KIND_ENV, URL_ENV = "MESH_WAREHOUSE", "MESH_WAREHOUSE_URL"
KINDS = ("duckdb", "postgres")
URL_FORM = "postgresql://user:password@host:port/database"
PUBLISHED_SCHEMA = "mesh_published"
BATCH_ROWS = 100_000
_ENSURED: set[tuple[str, int, str]] = set()  # domain databases known to exist, per server


class WarehouseConfigError(Exception):
    """MESH_WAREHOUSE / MESH_WAREHOUSE_URL missing, malformed, or the server does not answer."""


def warehouse_kind(environ: Mapping[str, str] | None = None) -> str:
    environ = os.environ if environ is None else environ
    kind = (environ.get(KIND_ENV) or "duckdb").strip().lower()
    if kind not in KINDS:
        raise WarehouseConfigError(
            f"{KIND_ENV}={environ.get(KIND_ENV)!r} is not a known warehouse; use one of: {', '.join(KINDS)}"
        )
    return kind


@dataclass(frozen=True)
class PgWarehouse:
    host: str
    port: int
    user: str
    password: str
    admin_database: str

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> PgWarehouse:
        environ = os.environ if environ is None else environ
        url = (environ.get(URL_ENV) or "").strip()
        if not url:
            raise WarehouseConfigError(f"{KIND_ENV}=postgres needs {URL_ENV} ({URL_FORM}), which is not set")
        try:
            parts = urlsplit(url)
            port = parts.port or 5432
        except ValueError as exc:
            raise WarehouseConfigError(f"{URL_ENV} is not a valid URL: {exc}") from None
        if parts.scheme not in ("postgresql", "postgres"):
            raise WarehouseConfigError(f"{URL_ENV} must start with postgresql:// ({URL_FORM}), got {parts.scheme}://")
        missing = [n for n, v in (("user", parts.username), ("host", parts.hostname)) if not v]
        if missing:
            raise WarehouseConfigError(f"{URL_ENV} has no {' and no '.join(missing)}: expected {URL_FORM}")
        database = parts.path.lstrip("/") or "postgres"
        return cls(parts.hostname or "", port, unquote(parts.username or ""), unquote(parts.password or ""), database)

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port} as {self.user}"

    def uri(self, database: str) -> str:
        auth = url_quote(self.user, safe="") + (":" + url_quote(self.password, safe="") if self.password else "")
        return f"postgresql://{auth}@{self.host}:{self.port}/{url_quote(database, safe='')}?connect_timeout=10"

    def dbt_env(self, domain: str) -> dict[str, str]:
        """What the `postgres` output of dbt_projects/profiles.yml reads."""
        return {
            "MESH_PG_HOST": self.host,
            "MESH_PG_PORT": str(self.port),
            "MESH_PG_USER": self.user,
            "DBT_ENV_SECRET_MESH_PG_PASSWORD": self.password,
            "MESH_PG_DBNAME": domain,
        }

    @contextmanager
    def connect(self, database: str) -> Iterator[Any]:
        import adbc_driver_postgresql.dbapi as adbc

        try:
            con = adbc.connect(self.uri(database), autocommit=True)
        except Exception as exc:
            raise WarehouseConfigError(
                f"{URL_ENV}: cannot connect to PostgreSQL at {self.where}, database {database!r}: {_reason(exc)}"
            ) from None
        try:
            yield con
        finally:
            con.close()

    def check(self) -> None:
        """Connect once to the admin database: a refused connection or a wrong password is one line."""
        with self.connect(self.admin_database) as con, con.cursor() as cur:
            cur.execute("select 1")
            cur.fetchall()

    def ensure_database(self, domain: str) -> None:
        """The domain's database and its `main` schema (the role needs CREATEDB, or a DBA makes them);
        checked once per process and server."""
        if (self.host, self.port, domain) in _ENSURED:
            return
        with self.connect(self.admin_database) as con, con.cursor() as cur:
            cur.execute("select 1 from pg_database where datname = $1", parameters=(domain,))
            if not cur.fetchall():
                try:
                    cur.execute(f"create database {quote(domain)}")
                except Exception as exc:
                    if "already exists" not in str(exc):  # another run made it meanwhile
                        raise
        with self.connect(domain) as con, con.cursor() as cur:
            cur.execute("create schema if not exists main")
        _ENSURED.add((self.host, self.port, domain))


def _reason(exc: BaseException) -> str:
    text = str(exc)
    for pattern in (
        r"password authentication failed[^\n]*",
        r"Connection refused",
        r'database "[^"]+" does not exist',
        r"timeout expired",
        r"could not translate host name[^\n]*",
    ):
        found = re.search(pattern, text)
        if found:
            return found.group(0)
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__


def land(duck: duckdb.DuckDBPyConnection, relation: str, pg: Any, table: str) -> int:
    """Copy a DuckDB relation into `main.<table>` of the domain's PostgreSQL database: loaded under
    a new name, then swapped in one transaction (dbt's views over the old table are dropped with it
    and rebuilt by the domain's dbt build)."""
    reader = duck.cursor().sql(f"select * from {relation}").to_arrow_reader(BATCH_ROWS)
    incoming = f"_mesh_incoming_{hashlib.sha1(table.encode()).hexdigest()[:16]}"
    with pg.cursor() as cur:
        cur.execute(f"drop table if exists main.{quote(incoming)}")
        rows = int(cur.adbc_ingest(incoming, reader, mode="create", db_schema_name="main"))
        cur.execute("begin")
        cur.execute(f"drop table if exists main.{quote(table)} cascade")
        cur.execute(f"alter table main.{quote(incoming)} rename to {quote(table)}")
        cur.execute("commit")
    return rows


def export_parquet(pg: Any, schema: str, table: str, path: Path) -> None:
    """Stream a PostgreSQL table to a Parquet file (numeric columns as double)."""
    import pyarrow.parquet as pq

    with pg.cursor() as cur:
        cur.execute(
            "select column_name, data_type from information_schema.columns "
            "where table_schema = $1 and table_name = $2 order by ordinal_position",
            parameters=(schema, table),
        )
        columns = cur.fetchall()
        if not columns:
            raise LookupError(f"{schema}.{table} does not exist in the warehouse")
        select = ", ".join(
            f"cast({quote(c)} as double precision) as {quote(c)}" if t == "numeric" else quote(c) for c, t in columns
        )
        cur.execute(f"select {select} from {quote(schema)}.{quote(table)}")
        reader = cur.fetch_record_batch()
        plain = _plain(reader.schema)
        path.parent.mkdir(parents=True, exist_ok=True)
        with pq.ParquetWriter(path, plain, compression="zstd") as writer:
            for batch in reader:
                writer.write_batch(pa_batch(batch, plain))


def pa_batch(batch: Any, schema: Any) -> Any:
    import pyarrow as pa

    return pa.RecordBatch.from_arrays(batch.columns, schema=schema)


def _plain(schema: Any) -> Any:
    """The schema without ADBC's per-field PostgreSQL metadata."""
    import pyarrow as pa

    return pa.schema([pa.field(f.name, f.type, f.nullable) for f in schema])


def published_table(domain: str, product: str, version: str) -> str:
    """A published version's table name (PostgreSQL identifiers stop at 63 bytes)."""
    return f"{domain}__{product}"[:40] + "__" + hashlib.sha1(version.encode()).hexdigest()[:12]


def load_published(pg: Any, table: str, parquet: str) -> str:
    """A published version (its Parquet file) as `mesh_published.<table>`, loaded once per version."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    relation = f"{PUBLISHED_SCHEMA}.{quote(table)}"
    with pg.cursor() as cur:
        cur.execute(f"create schema if not exists {PUBLISHED_SCHEMA}")
        cur.execute("select to_regclass($1) is not null", parameters=(relation,))
        if not cur.fetchall()[0][0]:
            source = pq.ParquetFile(parquet)
            reader = pa.RecordBatchReader.from_batches(source.schema_arrow, source.iter_batches(BATCH_ROWS))
            cur.adbc_ingest(table, reader, mode="create", db_schema_name=PUBLISHED_SCHEMA)
    return relation


def drop_stale_versions(pg: Any, keep: str) -> None:
    """Drop the other loaded versions of `keep`'s product once no view refers to them."""
    prefix = keep.rsplit("__", 1)[0] + "__"
    with pg.cursor() as cur:
        cur.execute(
            "select table_name from information_schema.tables "
            "where table_schema = $1 and left(table_name::text, $2::int) = $3",
            parameters=(PUBLISHED_SCHEMA, len(prefix), prefix),
        )
        for (name,) in cur.fetchall():
            if name != keep:
                cur.execute(f"drop table if exists {PUBLISHED_SCHEMA}.{quote(name)}")


def create_view(pg: Any, schema: str, view: str, select: str) -> str:
    """`schema.view` as `select`, replaced whole (a changed grant may change a column's type)."""
    relation = f"{quote(schema)}.{quote(view)}"
    with pg.cursor() as cur:
        cur.execute(f"create schema if not exists {quote(schema)}")
        cur.execute(f"drop view if exists {relation}")
        cur.execute(f"create view {relation} as {select}")
    return relation
