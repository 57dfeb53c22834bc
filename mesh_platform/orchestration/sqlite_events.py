"""One SQLAlchemy engine per event-log shard for `mesh run`'s embedded instance.

Dagster's SQLite event log storage creates (and disposes of) a new engine for every connection:
every event a run stores and every poll of `mesh run`'s progress watcher. An engine's compiled
statement cache dies with it, so each statement is compiled again each time; that was about a
tenth of a warm `mesh run` at scale 0.05 (~1.2 s of 10.7 s, measured with py-spy and by
timing). `cache_engines` gives the storage object of one process a connect method that keeps an
engine per shard (still NullPool: connections are not kept, so a forked child or another process
sees every commit). Only `mesh run` uses it; the UI and the daemon keep Dagster's behaviour.
"""

from __future__ import annotations

import types
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


def cache_engines(storage: Any) -> bool:
    """Patch this SQLite event log storage object; False (and nothing done) for any other storage."""
    from dagster._core.storage.event_log.sqlite.sqlite_event_log import (
        SQLITE_BUSY_TIMEOUT_SECONDS,
        SqliteEventLogStorage,
    )
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    if type(storage) is not SqliteEventLogStorage or not hasattr(storage, "_initialized_dbs"):
        return False
    engines: dict[str, Any] = {}

    @contextmanager
    def connect(self: Any, shard: str) -> Iterator[Any]:
        # as SqliteEventLogStorage._connect, but the engine outlives the connection
        with self._db_lock:
            engine = engines.get(shard)
            if engine is None:
                if len(engines) > 64:  # one shard per run: keep the index and recent runs
                    engines.clear()
                engine = engines[shard] = create_engine(
                    self.conn_string_for_shard(shard),
                    poolclass=NullPool,
                    connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS},
                )
            if shard not in self._initialized_dbs:
                self._initdb(engine)
                self._initialized_dbs.add(shard)
            with engine.connect() as conn, conn.begin():
                yield conn

    storage._connect = types.MethodType(connect, storage)
    return True
