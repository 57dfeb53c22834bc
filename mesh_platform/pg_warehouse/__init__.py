"""The PostgreSQL warehouse (`MESH_WAREHOUSE=postgres`): the dbt `postgres` target plus the
platform's read and write adapters for it.

`MESH_WAREHOUSE_URL` names an admin role (CREATEROLE and CREATEDB). From it the platform makes
(`roles`) one NOLOGIN role that owns what the platform keeps, `mesh_platform`, and one LOGIN role per
domain, `mesh_domain_<domain>`, whose password is made once and kept in MESH_HOME. Each domain
builds in its own database, named after it, schema `main`, as its own role; PostgreSQL has no
cross-database queries and only the domain's role (and the platform) may connect to it, so a domain
reaches another's product only through the governed read (`governed`):

- read: the product's current published version is loaded once into the consumer's database
  (`mesh_published`, the platform's schema, where the consumer's role has no privileges), with
  `token` columns computed by the platform, and exposed as the view `"<domain>"."<product>"`,
  owned by the platform, which applies the consumer's masking; the consumer's role may select the
  view only. The masking key never reaches PostgreSQL. `grants` drops and re-masks views when
  grants and policies change.
- write: a Python asset computes in the domain's DuckDB (its SQL is DuckDB's) and its table is
  landed in the domain's database as the domain's role, where dbt models read it (`transfer`).
- publish: a built table is exported as Parquet (streamed, numeric as double) and audited and
  published by the same write-audit-publish as on DuckDB.

Data moves as Arrow over ADBC (PostgreSQL's COPY binary protocol); the platform's own SQL goes through
psycopg2, whose connections open in milliseconds.

Must not import: `cli`, `defs`, `checks`, `contracts`, `catalog`, `lineage`, `orchestration`,
`scaffold`, `sdk`, `upstream`, `devtools`.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote as url_quote

from mesh_platform.project.postgres_url import PostgresUrlError, parse_postgres_url
from mesh_platform.sql.syntax import quote

KIND_ENV, URL_ENV = "MESH_WAREHOUSE", "MESH_WAREHOUSE_URL"
KINDS = ("duckdb", "postgres")
URL_FORM = "postgresql://user:password@host:port/database"


class WarehouseConfigError(Exception):
    """MESH_WAREHOUSE / MESH_WAREHOUSE_URL missing, malformed, the server does not answer, or the
    admin role cannot do what the platform needs."""


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
    """A server and the credentials of one role on it: the admin's (`from_env`) or a domain's
    (`as_login`)."""

    host: str
    port: int
    user: str
    password: str = dataclasses.field(repr=False)
    admin_database: str

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> PgWarehouse:
        environ = os.environ if environ is None else environ
        url = (environ.get(URL_ENV) or "").strip()
        if not url:
            raise WarehouseConfigError(f"{KIND_ENV}=postgres needs {URL_ENV} ({URL_FORM}), which is not set")
        try:
            parsed = parse_postgres_url(URL_ENV, url, ("postgresql", "postgres"), URL_FORM, URL_FORM, "postgres")
        except PostgresUrlError as exc:
            raise WarehouseConfigError(str(exc)) from None
        return cls(parsed.host, parsed.port, parsed.user, parsed.password, parsed.database)

    def as_login(self, user: str, password: str) -> PgWarehouse:
        """The same server as another role."""
        return dataclasses.replace(self, user=user, password=password)

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port} as {self.user}"

    def uri(self, database: str) -> str:
        auth = url_quote(self.user, safe="") + (":" + url_quote(self.password, safe="") if self.password else "")
        return f"postgresql://{auth}@{self.host}:{self.port}/{url_quote(database, safe='')}?connect_timeout=10"

    def dbt_env(self, database: str) -> dict[str, str]:
        """What the `postgres` output of dbt_projects/profiles.yml reads: this role, that database
        (dbt keeps `DBT_ENV_SECRET_` variables out of its logs)."""
        return {
            "MESH_PG_HOST": self.host,
            "MESH_PG_PORT": str(self.port),
            "MESH_PG_USER": self.user,
            "DBT_ENV_SECRET_MESH_PG_PASSWORD": self.password,
            "MESH_PG_DBNAME": database,
        }

    @contextmanager
    def connect(self, database: str) -> Iterator[Any]:
        """A psycopg2 connection (autocommit) for the platform's SQL: it opens in a few milliseconds."""
        import psycopg2

        try:
            con = psycopg2.connect(
                host=self.host,
                port=self.port,
                user=self.user,
                password=self.password,
                dbname=database,
                connect_timeout=10,
            )
        except Exception as exc:
            raise self.unreachable(database, exc) from None
        con.autocommit = True
        try:
            yield con
        finally:
            con.close()

    @contextmanager
    def connect_arrow(self, database: str) -> Iterator[Any]:
        """An ADBC connection (autocommit) to move tables as Arrow: it costs tens of milliseconds to
        open (the driver reads the server's types), so it is opened only where data moves."""
        import adbc_driver_postgresql.dbapi as adbc

        try:
            con = adbc.connect(self.uri(database), autocommit=True)
        except Exception as exc:
            raise self.unreachable(database, exc) from None
        try:
            yield con
        finally:
            con.close()

    def unreachable(self, database: str, exc: BaseException) -> WarehouseConfigError:
        return WarehouseConfigError(
            f"{URL_ENV}: cannot connect to PostgreSQL at {self.where}, database {database!r}: {self.reason(exc)}"
        )

    def reason(self, exc: BaseException) -> str:
        """The server's reason in one line, without this role's password."""
        text = str(exc).replace(self.password, "***") if self.password else str(exc)
        for pattern in (
            r"password authentication failed[^\n]*",
            r"Connection refused",
            r'database "[^"]+" does not exist',
            r"timeout expired",
            r"could not translate host name[^\n]*",
            r"permission denied[^\n]*",
            r"must be [^\n]*",
        ):
            found = re.search(pattern, text)
            if found:
                return found.group(0)
        return text.strip().splitlines()[0] if text.strip() else type(exc).__name__

    def require_admin(self, cur: Any) -> None:
        """On a connection as this role: it may make the domains' roles and databases."""
        cur.execute("select rolsuper, rolcreaterole, rolcreatedb from pg_roles where rolname = current_user")
        superuser, createrole, createdb = cur.fetchall()[0]
        lacks = (
            [] if superuser else [name for name, has in (("CREATEROLE", createrole), ("CREATEDB", createdb)) if not has]
        )
        if lacks:
            raise WarehouseConfigError(
                f"{URL_ENV}: role {self.user!r} at {self.host}:{self.port} lacks {' and '.join(lacks)}; the URL must "
                f"name an admin role that makes a login role and a database per domain "
                f"(as a superuser: ALTER ROLE {quote(self.user)} CREATEROLE CREATEDB)"
            )
