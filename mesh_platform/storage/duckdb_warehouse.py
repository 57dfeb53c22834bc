"""Each domain's private DuckDB warehouse file, opened by that domain's steps only.

DuckDB allows one writing process per file. The mesh gives every domain its own file and
serialises a domain's writers across runs with the Dagster pool `warehouse_<domain>`; consumers
never open another domain's file (they read published Parquet), so runs of different domains
never contend. A lock that is still held (for example by a person's ad-hoc session) is waited for.
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import duckdb

from mesh_platform.project.locations import MeshHome

LOCK_WAIT_S = 120.0
MEMORY_LIMIT_ENV = "MESH_DUCKDB_MEMORY_LIMIT"
MEMORY_LIMIT_TAG = "mesh/duckdb_memory_limit"  # a run's share, when runs share the limit (`mesh run`)
DEFAULT_MEMORY_LIMIT = "1GB"  # DuckDB's own default is 80% of RAM; past the limit it spills to disk


SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([KMGT])(i?)B")


def memory_limit() -> str:
    """DuckDB's memory limit for the mesh's connections (read when a connection opens): the share
    of the run whose step is executing (its tag `mesh/duckdb_memory_limit`), else
    MESH_DUCKDB_MEMORY_LIMIT, else 1GB."""
    share = run_memory_share()
    name, value = (MEMORY_LIMIT_TAG, share) if share else (MEMORY_LIMIT_ENV, os.environ.get(MEMORY_LIMIT_ENV))
    value = value or DEFAULT_MEMORY_LIMIT
    if not SIZE.fullmatch(value):
        raise ValueError(f"{name}={value!r}: expected a size like '512MB' or '2GB'")
    return value


def run_memory_share() -> str | None:
    """The memory limit tag of the run whose step this process is executing, if any."""
    if "dagster" not in sys.modules:  # not in a Dagster step (and no import of Dagster for it)
        return None
    import dagster as dg

    try:
        context = dg.OpExecutionContext.get()
    except dg.DagsterInvariantViolationError:
        return None
    return context.run.tags.get(MEMORY_LIMIT_TAG)


def memory_limit_bytes() -> int:
    number, unit, binary = SIZE.fullmatch(memory_limit()).groups()  # type: ignore[union-attr]
    return int(float(number) * (1024 if binary else 1000) ** ("KMGT".index(unit) + 1))


def memory_limit_share(parts: int) -> str:
    """The memory limit split between `parts` runs in flight at once (`mesh run --jobs`), so the
    whole stays within it."""
    return f"{max(memory_limit_bytes() // parts // 1000**2, 64)}MB"


def pool_for(domain: str) -> str:
    return f"warehouse_{domain}"


def _is_lock_error(exc: duckdb.Error) -> bool:
    return "lock" in str(exc).lower()


@contextmanager
def connect_warehouse(home: MeshHome, domain: str, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection to the domain's warehouse file, waiting for a lock another process holds. Its
    configuration is the caller's: a step locks it into its sandbox (`governance.sandbox`)."""
    path = home.warehouse(domain)
    path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + LOCK_WAIT_S
    delay = 0.1
    while True:
        try:
            con = duckdb.connect(str(path), read_only=read_only)
            break
        except duckdb.IOException as exc:
            if not _is_lock_error(exc) or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 2.0)
    try:
        yield con
    finally:
        con.close()


@contextmanager
def open_warehouse(home: MeshHome, domain: str, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """The platform's own connection to a domain's warehouse (never handed to domain code)."""
    with connect_warehouse(home, domain, read_only) as con:
        if not read_only:
            con.execute(f"set memory_limit = '{memory_limit()}'")
        yield con
