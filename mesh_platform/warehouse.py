"""Each domain's private DuckDB warehouse file, opened by that domain's steps only.

DuckDB allows one writing process per file. The mesh gives every domain its own file and
serialises a domain's writers across runs with the Dagster pool `warehouse_<domain>`; consumers
never open another domain's file (they read published Parquet), so runs of different domains
never contend. A lock that is still held (for example by a person's ad-hoc session) is waited for.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import duckdb

from mesh_platform.project import MeshHome

LOCK_WAIT_S = 120.0


def pool_for(domain: str) -> str:
    return f"warehouse_{domain}"


def _is_lock_error(exc: duckdb.Error) -> bool:
    return "lock" in str(exc).lower()


@contextmanager
def open_warehouse(home: MeshHome, domain: str, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
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
