"""PostgreSQL: one role per domain, tried as an attacker would, from inside a consumer's role.

The mesh is `materialized_pg` (a private server, an admin role with CREATEROLE and CREATEDB); every
attack connects as a domain's own login role, with the password the platform keeps in MESH_HOME.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg2
import pytest

from mesh_platform.pg_warehouse import PgWarehouse
from mesh_platform.pg_warehouse.roles import PASSWORDS_DIR, PLATFORM_ROLE, domain_role, provision
from mesh_platform.project.locations import MeshHome, MeshProject
from mesh_platform.project.mesh import Mesh
from tests.conftest import PG_PASSWORD, PG_ROLE, MaterializedMesh
from tests.pg_support import postgres_bin_dir

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.xdist_group("e2e_pg")]

CONSUMER, PRODUCER, PRODUCT = "patient_360", "patients", "patient_accounts"
PII = ("email", "first_name", "last_name", "phone")


def domains(mm: MaterializedMesh) -> list[str]:
    return Mesh.load(MeshProject.discover(mm.root)).project.domain_names()


def password(mm: MaterializedMesh, domain: str) -> str:
    return (mm.home / PASSWORDS_DIR / domain_role(domain)).read_text().strip()


def login(mm: MaterializedMesh, domain: str, database: str) -> Any:
    """A connection as the domain's role, with the password the platform keeps for it."""
    return mm.server.connect(database, user=domain_role(domain), password=password(mm, domain))  # type: ignore[attr-defined]


@contextmanager
def as_domain(mm: MaterializedMesh, domain: str, database: str | None = None) -> Iterator[Any]:
    """A cursor logged in as the domain's role (to its own database unless told)."""
    con = login(mm, domain, database or domain)
    try:
        with con.cursor() as cur:
            yield cur
    finally:
        con.close()


def refused(mm: MaterializedMesh, domain: str, sql: str, database: str | None = None) -> str:
    """The error the domain's role gets for `sql`; fails the test if the statement succeeds."""
    with as_domain(mm, domain, database) as cur:
        try:
            cur.execute(sql)
        except psycopg2.Error as exc:
            return str(exc).splitlines()[0]
    raise AssertionError(f"{domain_role(domain)} was allowed: {sql}")


def copies(mm: MaterializedMesh, database: str) -> list[str]:
    """The platform's raw copies in a consumer's database (seen as the superuser)."""
    rows = mm.server.query(  # type: ignore[attr-defined]
        "select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace "
        "where n.nspname = 'mesh_published' and c.relkind = 'r'",
        database=database,
    )
    return sorted(name for (name,) in rows)


def test_each_domain_has_a_login_role_with_its_own_database_only(materialized_pg: MaterializedMesh) -> None:
    mm, server = materialized_pg, materialized_pg.server  # type: ignore[attr-defined]
    assert mm.run.returncode == 0, mm.run.stdout + mm.run.stderr  # type: ignore[attr-defined]
    roles = {
        name: flags
        for name, *flags in server.query(
            "select rolname, rolcanlogin, rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls "
            "from pg_roles where starts_with(rolname, 'mesh')"
        )
    }
    assert roles[PLATFORM_ROLE] == [False, False, False, False, False, False]  # NOLOGIN, nothing else
    members = server.query(
        "select r.rolname, pg_get_userbyid(m.member) from pg_auth_members m join pg_roles r on r.oid = m.roleid"
    )
    for domain in domains(mm):
        role = domain_role(domain)
        assert roles[role] == [True, False, False, False, False, False], role  # LOGIN, nothing else
        assert not [m for m in members if m[1] == role], f"{role} is a member of a role"
        owner, acl = server.query(
            "select pg_get_userbyid(datdba), "
            "array(select coalesce(pg_get_userbyid(nullif(a.grantee, 0)), 'PUBLIC') || ':' || a.privilege_type "
            "from aclexplode(datacl) a order by 1) from pg_database where datname = %s",
            (domain,),
        )[0]
        assert owner == PLATFORM_ROLE, domain
        assert sorted(acl) == sorted(
            [f"{PLATFORM_ROLE}:{p}" for p in ("CONNECT", "CREATE", "TEMPORARY")]
            + [f"{role}:CONNECT", f"{role}:TEMPORARY"]
            + [f"{PG_ROLE}:{p}" for p in ("CONNECT", "CREATE", "TEMPORARY")]
        ), domain
        # whatever the domain built or landed is its own, in its own schema
        owners = server.query(
            "select distinct pg_get_userbyid(nspowner) from pg_namespace where nspname = 'main' "
            "union all select distinct pg_get_userbyid(c.relowner) from pg_class c "
            "join pg_namespace n on n.oid = c.relnamespace where n.nspname = 'main'",
            database=domain,
        )
        assert {o for (o,) in owners} == {role}, domain
        path = mm.home / PASSWORDS_DIR / role
        assert stat.S_IMODE(path.stat().st_mode) == 0o600 and len(password(mm, domain)) >= 32
    assert stat.S_IMODE((mm.home / PASSWORDS_DIR).stat().st_mode) == 0o700


def test_a_domain_role_cannot_connect_to_another_domains_database(materialized_pg: MaterializedMesh) -> None:
    names = domains(materialized_pg)
    for domain in names:
        for other in names:
            if other != domain:
                with pytest.raises(psycopg2.OperationalError, match=f'permission denied for database "{other}"'):
                    login(materialized_pg, domain, other)
    # and the role logs in by its password only
    server = materialized_pg.server  # type: ignore[attr-defined]
    with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
        server.connect(CONSUMER, user=domain_role(CONSUMER), password="not-the-password")
    # a stray grant (here a superuser's) is revoked the next time the platform makes the domain's role
    server.query(f"grant connect on database {PRODUCER} to {domain_role(CONSUMER)}")
    login(materialized_pg, CONSUMER, PRODUCER).close()
    url = f"postgresql://{PG_ROLE}:{PG_PASSWORD}@{server.host}:{server.port}/postgres"
    provision(PgWarehouse.from_env({"MESH_WAREHOUSE_URL": url}), MeshHome(materialized_pg.home), PRODUCER)
    with pytest.raises(psycopg2.OperationalError, match=f'permission denied for database "{PRODUCER}"'):
        login(materialized_pg, CONSUMER, PRODUCER)


def test_a_consumer_reads_masked_values_through_its_view_only(materialized_pg: MaterializedMesh) -> None:
    mm = materialized_pg
    with as_domain(mm, CONSUMER) as cur:
        cur.execute(f"select patient_id, {', '.join(PII)} from {PRODUCER}.{PRODUCT}")
        rows = cur.fetchall()
    via_cli = json.loads(mm.mesh("read", f"{PRODUCER}.{PRODUCT}", "--as", CONSUMER, "--limit", "0", "--json").stdout)
    assert len(rows) == len(via_cli) > 0
    expected = {r["patient_id"]: tuple(r[c] for c in PII) for r in via_cli}
    for patient_id, email, *redacted in rows:
        assert email is None or (email.startswith("tok_") and "@" not in email)
        assert set(redacted) <= {None, "[redacted]"}
        assert (email, *redacted) == expected[patient_id]

    raw = copies(mm, CONSUMER)
    copy = next(name for name in raw if name.startswith(f"{PRODUCER}__{PRODUCT}__"))
    for sql in (
        f'select email from mesh_published."{copy}" limit 1',
        f'copy mesh_published."{copy}" to stdout',
        f'grant select on mesh_published."{copy}" to {domain_role(CONSUMER)}',
        f'create view main.peek as select * from mesh_published."{copy}"',
    ):
        assert "permission denied for schema mesh_published" in refused(mm, CONSUMER, sql), sql
    # nor can it act as the platform, take over or replace the view, or make the platform's schemas
    assert "permission denied to set role" in refused(mm, CONSUMER, f"set role {PLATFORM_ROLE}")
    for sql in (
        f"alter view {PRODUCER}.{PRODUCT} owner to {domain_role(CONSUMER)}",
        f"drop view {PRODUCER}.{PRODUCT}",
    ):
        assert "must be owner of view" in refused(mm, CONSUMER, sql), sql
    for sql in (
        f"create or replace view {PRODUCER}.{PRODUCT} as select 1 as patient_id",
        f"create view {PRODUCER}.other as select 1",
    ):
        assert f"permission denied for schema {PRODUCER}" in refused(mm, CONSUMER, sql), sql
    assert "permission denied for database" in refused(mm, CONSUMER, "create schema mesh_published_too")
    # PostgreSQL keeps column statistics of the copy; the consumer sees none of them
    mm.server.query(f'analyze mesh_published."{copy}"', database=CONSUMER)  # type: ignore[attr-defined]
    with as_domain(mm, CONSUMER) as cur:
        cur.execute("select count(*) from pg_stats where schemaname = 'mesh_published'")
        assert cur.fetchall() == [(0,)]


def test_a_consumer_role_can_read_its_own_tables_and_its_views_only(materialized_pg: MaterializedMesh) -> None:
    """In its own database a consumer may read what it built and the views of what it consumes,
    nothing of the platform's (the producers' own tables live in databases it may not enter)."""
    with as_domain(materialized_pg, CONSUMER) as cur:
        cur.execute(
            "select n.nspname, c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace "
            "where c.relkind in ('r', 'v', 'm', 'f', 'p') and n.nspname not in ('pg_catalog', 'information_schema') "
            "and has_table_privilege(c.oid, 'select')"
        )
        readable = set(cur.fetchall())
    assert {(s, n) for s, n in readable if s != "main"} == {
        ("patients", "patient_accounts"),
        ("scheduling", "appointments"),
        ("immunizations", "administered_doses"),
        ("immunizations", "test_results"),
    }
    assert ("main", "patient_journey") in readable


def test_the_masking_key_is_nowhere_on_the_server(materialized_pg: MaterializedMesh) -> None:
    """Tokens are computed by the platform while it loads a copy: the key is in no table, view,
    function, comment or setting, so no privilege can reveal it. Checked from a full dump of the
    server (as its superuser), then by the means a consumer has."""
    mm, server = materialized_pg, materialized_pg.server  # type: ignore[attr-defined]
    key = (mm.home / "masking.key").read_text().strip()
    bin_dir = postgres_bin_dir()
    assert bin_dir is not None
    dump = subprocess.run(
        [str(bin_dir / "pg_dumpall"), "-h", server.host, "-p", str(server.port), "-U", "postgres", "--no-password"],
        env={**os.environ, "PGPASSWORD": server.superuser_password},
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    ).stdout
    assert "tok_" in dump and f"CREATE VIEW {PRODUCER}.{PRODUCT}" in dump  # the dump holds the views and tokens
    assert key not in dump
    assert key not in server.log.read_text()
    with as_domain(mm, CONSUMER) as cur:
        for sql in (
            "select string_agg(pg_get_viewdef(c.oid), ' ') from pg_class c where c.relkind in ('v', 'm')",
            "select string_agg(view_definition, ' ') from information_schema.views",
            "select string_agg(prosrc, ' ') from pg_proc",
            "select string_agg(description, ' ') from pg_description",
            "select string_agg(setting, ' ') from pg_settings",
        ):
            cur.execute(sql)
            found = cur.fetchall()[0][0] or ""
            assert key not in found, sql
        cur.execute(f"select pg_get_viewdef('{PRODUCER}.{PRODUCT}'::regclass)")
        definition = cur.fetchall()[0][0]
    assert "sha256" not in definition and '"email#token" AS email' in definition


def test_domain_passwords_never_leave_mesh_home(materialized_pg: MaterializedMesh) -> None:
    """Not in the run's output, the server's log, Dagster's storage, dbt's logs or anything else the
    project or MESH_HOME holds: only in the password files."""
    mm = materialized_pg
    secrets = {domain_role(d): password(mm, d) for d in domains(mm)}
    output = mm.run.stdout + mm.run.stderr  # type: ignore[attr-defined]
    server_log = mm.server.log.read_text()  # type: ignore[attr-defined]
    for role, secret in secrets.items():
        assert secret not in output and secret not in server_log, role
    for path in [*mm.home.rglob("*"), *mm.root.rglob("*")]:
        if path.is_file() and path.parent.name != PASSWORDS_DIR:
            content = path.read_bytes()
            leaked = [role for role, secret in secrets.items() if secret.encode() in content]
            assert not leaked, f"{path} holds the password of {leaked}"


def edit_descriptor(mm: MaterializedMesh, old: str, new: str) -> None:
    path = mm.root / "domains" / PRODUCER / "domain.yaml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def consumer_sees(mm: MaterializedMesh) -> list[tuple[Any, ...]] | str:
    """The consumer's view of the product, as its role; or the error it gets."""
    try:
        with as_domain(mm, CONSUMER) as cur:
            cur.execute(f"select email, zip from {PRODUCER}.{PRODUCT} where email is not null order by patient_id")
            return cur.fetchall()
    except psycopg2.Error as exc:
        return str(exc).splitlines()[0]


def test_grant_revoke_and_policy_changes_hold_from_the_next_run(materialized_pg: MaterializedMesh) -> None:
    """Any `mesh run` (here of an unrelated domain) first syncs every consumer's views with the
    descriptors; the consumer's own next run makes them again once granted."""
    mm = materialized_pg
    path = mm.root / "domains" / PRODUCER / "domain.yaml"
    original = path.read_text()
    masked = consumer_sees(mm)
    assert isinstance(masked, list) and masked and all(e.startswith("tok_") and z.endswith("XX") for e, z in masked)
    try:
        # a tighter policy: zip goes from zip3 to null
        edit_descriptor(mm, "mask: zip3", 'mask: "null"')
        mm.mesh("run", "--domain", "pharmacy", check=True)
        tightened = consumer_sees(mm)
        assert isinstance(tightened, list) and [e for e, _ in tightened] == [e for e, _ in masked]
        assert {z for _, z in tightened} == {None}

        # revoked: the view and its raw copy are gone on the next run, and the consumer's run is refused
        path.write_text(original)
        edit_descriptor(mm, f"consumers: [{CONSUMER}, scheduling]", "consumers: [scheduling]")
        mm.mesh("run", "--domain", "pharmacy", check=True)
        assert "does not exist" in str(consumer_sees(mm))
        assert not [c for c in copies(mm, CONSUMER) if c.startswith(f"{PRODUCER}__{PRODUCT}__")]
        refused_run = mm.mesh("run", "--domain", CONSUMER)
        assert refused_run.returncode == 1
        assert f"{PRODUCER}.{PRODUCT} is not granted to '{CONSUMER}'" in " ".join(refused_run.stderr.split())
        read = mm.mesh("read", f"{PRODUCER}.{PRODUCT}", "--as", CONSUMER)
        assert read.returncode == 1 and "is not granted to" in read.stderr
    finally:
        path.write_text(original)
        regranted = mm.mesh("run", "--domain", CONSUMER)  # also puts the shared mesh back as it was
    # granted again: the consumer's next run makes its view again, masked as before
    assert regranted.returncode == 0, regranted.stderr
    assert consumer_sees(mm) == masked


def test_an_admin_url_without_createrole_is_refused_in_one_line(materialized_pg: MaterializedMesh) -> None:
    server = materialized_pg.server  # type: ignore[attr-defined]
    server.create_role("mesh_not_admin", "n0t-admin", "CREATEDB")
    url = f"postgresql://mesh_not_admin:n0t-admin@{server.host}:{server.port}/postgres"
    proc = materialized_pg.mesh_with({"MESH_WAREHOUSE_URL": url}, "run", "--domain", "pharmacy")
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: MESH_WAREHOUSE_URL: role 'mesh_not_admin'") and "lacks CREATEROLE" in lines[0]
    assert "n0t-admin" not in proc.stderr


def test_concurrent_runs_make_a_domains_role_and_database_once(
    materialized_pg: MaterializedMesh, tmp_path: Path
) -> None:
    """Six processes' worth of first runs of a new domain at once: one role, one password, one
    database, and every one of them logs in with it."""
    server = materialized_pg.server  # type: ignore[attr-defined]
    url = f"postgresql://{PG_ROLE}:{PG_PASSWORD}@{server.host}:{server.port}/postgres"
    admin, home = PgWarehouse.from_env({"MESH_WAREHOUSE_URL": url}), MeshHome(tmp_path / "home")
    with ThreadPoolExecutor(max_workers=6) as pool:
        logins = list(pool.map(lambda _: provision(admin, home, "newcomer"), range(6)))
    assert len({(login.user, login.password) for login in logins}) == 1
    assert server.query("select count(*) from pg_database where datname = 'newcomer'") == [(1,)]
    with logins[0].connect("newcomer") as con, con.cursor() as cur:
        cur.execute("create table main.mine as select 1 as x")
        cur.execute("select current_user, pg_get_userbyid(relowner) from pg_class where relname = 'mine'")
        assert cur.fetchall() == [(domain_role("newcomer"),) * 2]


def test_role_names_fit_postgresql_identifiers() -> None:
    """PostgreSQL cuts names at 63 bytes: two long domain names must not end up as one role."""
    long_a, long_b = "a" * 60 + "_one", "a" * 60 + "_two"
    assert len(domain_role(long_a)) <= 63 and len(domain_role(long_b)) <= 63
    assert domain_role(long_a) != domain_role(long_b)
    assert domain_role("patient_360") == "mesh_domain_patient_360" != PLATFORM_ROLE
