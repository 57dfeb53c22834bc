"""A private PostgreSQL server for tests: initdb + pg_ctl from Debian's packages, on 127.0.0.1.

PostgreSQL refuses to run as root, so as root the cluster belongs to the `postgres` user (made by
the Debian package) and every server command runs through `runuser -u postgres --`. The cluster
lives in a temporary directory and is stopped and removed at the end. Roles log in with a password
over TCP (scram-sha-256), so a wrong password is refused as it would be in production.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SUPERUSER = "postgres"


def postgres_bin_dir() -> Path | None:
    """The newest Debian PostgreSQL, or the one on PATH; None when there is none."""
    candidates = sorted(
        (Path(p).parent for p in glob.glob("/usr/lib/postgresql/*/bin/postgres")),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    if candidates:
        return candidates[-1]
    on_path = shutil.which("pg_ctl")
    return Path(on_path).parent if on_path and (Path(on_path).parent / "initdb").exists() else None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class PostgresServer:
    host: str
    port: int
    superuser_password: str
    log: Path

    def url(self, user: str, password: str, database: str) -> str:
        """The SQLAlchemy URL (psycopg2 driver) Dagster's storage and MESH_PG_URL take."""
        return f"postgresql+psycopg2://{user}:{password}@{self.host}:{self.port}/{database}"

    def connect(self, database: str = "postgres", user: str = SUPERUSER, password: str | None = None) -> Any:
        import psycopg2

        con = psycopg2.connect(
            host=self.host,
            port=self.port,
            dbname=database,
            user=user,
            password=self.superuser_password if password is None else password,
            connect_timeout=5,
        )
        con.autocommit = True
        return con

    def query(self, sql: str, params: tuple = (), database: str = "postgres") -> list[tuple]:
        con = self.connect(database)
        try:
            with con.cursor() as cur:
                cur.execute(sql, params)
                return cur.fetchall() if cur.description else []
        finally:
            con.close()

    def create_role(self, role: str, password: str, *options: str) -> None:
        """A login role with a password (and e.g. CREATEDB)."""
        con = self.connect()
        try:
            with con.cursor() as cur:
                cur.execute(f'CREATE ROLE "{role}" LOGIN {" ".join(options)} PASSWORD %s', (password,))
        finally:
            con.close()

    def create_role_and_database(self, role: str, password: str, database: str) -> str:
        """A login role with a password and a database it owns; returns the role's URL."""
        con = self.connect()
        try:
            with con.cursor() as cur:
                cur.execute(f'CREATE ROLE "{role}" LOGIN PASSWORD %s', (password,))
                cur.execute(f'CREATE DATABASE "{database}" OWNER "{role}"')
        finally:
            con.close()
        return self.url(role, password, database)


def _as_server_user(args: list[str]) -> list[str]:
    return ["runuser", "-u", SUPERUSER, "--", *args] if os.geteuid() == 0 else args


@contextlib.contextmanager
def postgres_server(bin_dir: Path) -> Iterator[PostgresServer]:
    """initdb a cluster in a fresh temporary directory, start it on 127.0.0.1:<free port>, stop it."""
    root = Path(tempfile.mkdtemp(prefix="mesh-pg-"))
    data, log, pwfile = root / "data", root / "server.log", root / "pwfile"
    password = secrets.token_hex(12)
    pwfile.write_text(password + "\n")
    if os.geteuid() == 0:
        user = pwd.getpwnam(SUPERUSER)
        for path in (root, pwfile):
            os.chown(path, user.pw_uid, user.pw_gid)
    port = free_port()
    started = False

    def run(*args: str) -> None:
        proc = subprocess.run(_as_server_user(list(args)), capture_output=True, text=True, timeout=120)
        if proc.returncode != 0:
            detail = log.read_text() if log.exists() else ""
            raise RuntimeError(f"{' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}\n{detail}")

    try:
        run(
            str(bin_dir / "initdb"),
            "-D",
            str(data),
            "-U",
            SUPERUSER,
            f"--pwfile={pwfile}",
            "--auth-local=scram-sha-256",
            "--auth-host=scram-sha-256",
            "-E",
            "UTF8",
            "--no-sync",
        )
        options = f"-h 127.0.0.1 -p {port} -k {root} -c fsync=off -c max_connections=200"
        run(str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(log), "-w", "-t", "60", "start")
        started = True
        yield PostgresServer("127.0.0.1", port, password, log)
    finally:
        if started:
            with contextlib.suppress(Exception):
                run(str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def postgres_or_skip() -> Iterator[PostgresServer]:
    """A private server for a test fixture; the test is skipped where Debian's binaries are missing."""
    import pytest

    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        pytest.skip("no PostgreSQL server binaries (initdb, pg_ctl): install Debian's postgresql package")
    with postgres_server(bin_dir) as server:
        yield server
