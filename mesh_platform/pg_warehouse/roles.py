"""One PostgreSQL role per domain, made by the platform from the admin role of `MESH_WAREHOUSE_URL`.

- `mesh_platform` (NOLOGIN): owns every domain's database and, in each, the schema
  `mesh_published` (raw published copies) and the consumers' masking views. The admin is made a
  member and acts as it with `SET ROLE`.
- `mesh_domain_<domain>` (LOGIN, no CREATEDB, no CREATEROLE, member of no role): its password is
  made once and kept in `MESH_HOME/pg_roles/<role>` (mode 0600), and sent to the server as a
  SCRAM verifier, so the password itself is in no statement the server could log. It may CONNECT
  to its own database only (CONNECT is revoked from PUBLIC) and create temporary tables there, and
  owns the schema `main`, where its dbt and landed tables live. It cannot create schemas, so it
  cannot make one the platform would later write into.

Everything is idempotent, and serialised across processes with an advisory lock in the admin
database (concurrent GRANTs on one object fail with "tuple concurrently updated" otherwise).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

from mesh_platform.pg_warehouse import URL_ENV, PgWarehouse, WarehouseConfigError
from mesh_platform.project.locations import MeshHome
from mesh_platform.sql.syntax import literal, quote

PLATFORM_ROLE = "mesh_platform"
DOMAIN_ROLE_PREFIX = "mesh_domain_"
PASSWORDS_DIR = "pg_roles"
LOCK_KEY = int.from_bytes(b"meshplat", "big") >> 1  # one advisory lock key, per database
MAX_IDENTIFIER = 63  # PostgreSQL truncates longer names
_PROVISIONED: set[tuple[str, int, str, str, str]] = set()  # (host, port, admin, home, domain) this process made


def domain_role(domain: str) -> str:
    """The domain's login role (distinct from `mesh_platform` whatever the domain is called)."""
    role = DOMAIN_ROLE_PREFIX + domain
    if len(role) <= MAX_IDENTIFIER:
        return role
    return f"{role[: MAX_IDENTIFIER - 9]}_{hashlib.sha1(domain.encode()).hexdigest()[:8]}"


def role_password(home: MeshHome, role: str) -> str:
    """The role's password, made once per MESH_HOME (mode 0600; the first of concurrent writers wins)."""
    folder = home.path / PASSWORDS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    path = folder / role
    if not path.exists():
        tmp = folder / f".{role}.{os.getpid()}.{secrets.token_hex(4)}"
        with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as out:
            out.write(secrets.token_urlsafe(32))
        with suppress(FileExistsError):
            os.link(tmp, path)
        tmp.unlink()
    return path.read_text().strip()


def scram_verifier(password: str, iterations: int = 4096) -> str:
    """What PostgreSQL stores for a SCRAM-SHA-256 password (RFC 5802, RFC 7677): the server accepts it
    in place of the password, and a log of the statement does not reveal the password. The
    passwords made here are ASCII, which SASLprep leaves as they are."""
    salt = secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    stored_key = hashlib.sha256(hmac.new(salted, b"Client Key", "sha256").digest()).digest()
    server_key = hmac.new(salted, b"Server Key", "sha256").digest()
    encoded = [base64.b64encode(part).decode() for part in (salt, stored_key, server_key)]
    return f"SCRAM-SHA-256${iterations}:{encoded[0]}${encoded[1]}:{encoded[2]}"


@dataclass(frozen=True)
class PlatformSession:
    """A connection to a domain's `database` acting as `mesh_platform`, holding that database's
    advisory lock (one platform writer per database), and resolving names in pg_catalog only, so no
    function or operator a domain made can capture the platform's SQL."""

    pg: PgWarehouse
    database: str
    con: Any

    def cursor(self) -> Any:
        return self.con.cursor()

    @contextmanager
    def arrow(self) -> Iterator[Any]:
        """An ADBC connection to the same database, as `mesh_platform`, to move a table in."""
        with self.pg.connect_arrow(self.database) as con:
            with con.cursor() as cur:
                cur.execute(f"set role {quote(PLATFORM_ROLE)}")
                cur.execute("set search_path = pg_catalog, pg_temp")
            yield con


@contextmanager
def platform_session(pg: PgWarehouse, database: str) -> Iterator[PlatformSession]:
    with pg.connect(database) as con, con.cursor() as cur:
        cur.execute(f"set role {quote(PLATFORM_ROLE)}")
        cur.execute("set search_path = pg_catalog, pg_temp")
        cur.execute("select pg_advisory_lock(%s)", (LOCK_KEY,))
        yield PlatformSession(pg, database, con)


@contextmanager
def _admin_locked(pg: PgWarehouse) -> Iterator[Any]:
    """A cursor on the admin database holding the platform's lock (released with the connection)."""
    with pg.connect(pg.admin_database) as con, con.cursor() as cur:
        cur.execute("set search_path = pg_catalog, pg_temp")
        cur.execute("select pg_advisory_lock(%s)", (LOCK_KEY,))
        yield cur


def _failed(pg: PgWarehouse, what: str, exc: Exception) -> WarehouseConfigError:
    return WarehouseConfigError(f"{URL_ENV}: {what} at {pg.where} failed: {pg.reason(exc)}")


def _ensure_role(cur: Any, role: str, options: str) -> None:
    cur.execute("select 1 from pg_roles where rolname = %s", (role,))
    verb = "alter" if cur.fetchall() else "create"
    cur.execute(f"{verb} role {quote(role)} {options}")


def _ensure_member(cur: Any, role: str) -> None:
    """The admin may act as `role` (SET ROLE, objects it owns)."""
    cur.execute("select rolsuper from pg_roles where rolname = current_user")
    if not cur.fetchall()[0][0]:
        cur.execute(f"grant {quote(role)} to current_user")


def _ensure_platform_role(pg: PgWarehouse, cur: Any) -> None:
    """That the admin is one, the platform role, and the admin a member of it."""
    pg.require_admin(cur)
    _ensure_role(cur, PLATFORM_ROLE, "nologin")
    _ensure_member(cur, PLATFORM_ROLE)


def ensure_platform(pg: PgWarehouse) -> dict[str, str]:
    """The platform role (`_ensure_platform_role`); returns every database's owner."""
    try:
        with _admin_locked(pg) as cur:
            _ensure_platform_role(pg, cur)
            cur.execute("select datname, pg_get_userbyid(datdba) from pg_database")
            return dict(cur.fetchall())
    except WarehouseConfigError:
        raise
    except Exception as exc:
        raise _failed(pg, f"making the role {PLATFORM_ROLE}", exc) from None


def check_owner(pg: PgWarehouse, database: str, owner: str) -> None:
    """A domain's database must be the platform's: one that exists otherwise is left alone."""
    if owner != PLATFORM_ROLE:
        raise WarehouseConfigError(
            f"{URL_ENV}: database {database!r} on {pg.host}:{pg.port} belongs to {owner!r}, not to "
            f"{PLATFORM_ROLE!r}, so the platform did not make it (or made it before each domain had its own "
            f"role); it holds only what a run rebuilds: drop it (DROP DATABASE {quote(database)}) and run again"
        )


def provision(pg: PgWarehouse, home: MeshHome, domain: str) -> PgWarehouse:
    """The domain's login role, its database and its `main` schema, with the privileges above;
    returns the domain's login. Done once per process."""
    role = domain_role(domain)
    login = pg.as_login(role, role_password(home, role))
    key = (pg.host, pg.port, pg.user, str(home.path), domain)
    if key in _PROVISIONED:
        return login
    try:
        with _admin_locked(pg) as cur:
            _ensure_platform_role(pg, cur)
            password = literal(scram_verifier(login.password))
            _ensure_role(cur, role, f"login nocreatedb nocreaterole password {password}")
            _ensure_member(cur, role)
            _ensure_database(pg, cur, domain)
            _restrict_database(cur, domain, {role: "connect, temporary", pg.user: "connect, create, temporary"})
            _ensure_main_schema(pg, domain, role)
    except WarehouseConfigError:
        raise
    except Exception as exc:
        raise _failed(pg, f"making the role and database of domain {domain!r}", exc) from None
    _PROVISIONED.add(key)
    return login


def _ensure_database(pg: PgWarehouse, cur: Any, domain: str) -> None:
    cur.execute("select pg_get_userbyid(datdba) from pg_database where datname = %s", (domain,))
    found = cur.fetchall()
    if found:
        check_owner(pg, domain, found[0][0])
    else:
        cur.execute(f"create database {quote(domain)} owner {quote(PLATFORM_ROLE)}")


def _restrict_database(cur: Any, database: str, grants: dict[str, str]) -> None:
    """Exactly these roles' privileges on the database besides its owner's: revoked from PUBLIC and
    from any other role."""
    cur.execute(f"set role {quote(PLATFORM_ROLE)}")
    cur.execute(
        "select distinct pg_get_userbyid(a.grantee) from pg_database d, aclexplode(d.datacl) a "
        "where d.datname = %s and a.grantee <> 0 and a.grantee <> d.datdba",
        (database,),
    )
    others = [name for (name,) in cur.fetchall() if name not in grants]
    for grantee in ["public", *(quote(name) for name in others)]:
        cur.execute(f"revoke all on database {quote(database)} from {grantee}")
    for grantee, privileges in grants.items():
        cur.execute(f"grant {privileges} on database {quote(database)} to {quote(grantee)}")
    cur.execute("reset role")


def _ensure_main_schema(pg: PgWarehouse, domain: str, role: str) -> None:
    """`main`, owned by the domain's role (whatever it builds there is its own)."""
    with pg.connect(domain) as con, con.cursor() as cur:
        cur.execute("set search_path = pg_catalog, pg_temp")
        cur.execute("select pg_get_userbyid(nspowner) from pg_namespace where nspname = 'main'")
        found = cur.fetchall()
        if not found:
            cur.execute(f"create schema main authorization {quote(role)}")
        elif found[0][0] != role:
            raise WarehouseConfigError(
                f"{URL_ENV}: schema main of database {domain!r} on {pg.host}:{pg.port} belongs to {found[0][0]!r}, "
                f"not to {role!r}; drop the database (DROP DATABASE {quote(domain)}) and run again"
            )
