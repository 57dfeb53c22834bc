"""Kept SQLite connections for `mesh run`'s embedded Dagster instance.

Dagster's SQLite storages create (and dispose of) an engine for every connection: every event a
run stores, every read of a run's events, every run created or updated. Each time
the statement cache dies with the engine, the database file is opened again, and closing the last
connection checkpoints the write-ahead log, with its fsyncs. Together that was about a third of a
warm `mesh run` at scale 0.05 (py-spy: SQLite opens, commits and closes).

`cache_engines` gives the event log and run storage objects of one process an engine per database
file that keeps its connections (SQLAlchemy's QueuePool). Commits are still commits: another
process (the UI, the daemon, a forked domain) sees each one. The connections run with
`synchronous=NORMAL`, SQLite's recommended setting in WAL mode: a commit survives a crash of the
process, and only a power cut can lose the last ones, never the database. A forked child drops the
parent's engines without closing their connections and opens its own.

A run's new event file starts as a copy of an empty one that Dagster's own `_initdb` made once
(`history/runs/.templates/`, per Dagster version): `_initdb` reads and runs alembic's migration
scripts for every new file, twice, about 0.1 s a run.

Only `mesh run` uses this; the UI and the daemon keep Dagster's behaviour.
"""

from __future__ import annotations

import os
import shutil
import types
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

_ENGINES: dict[str, Any] = {}
MAX_ENGINES = 64  # one file per run: keep the index and the recent runs


def _drop_in_child() -> None:
    for engine in _ENGINES.values():
        engine.dispose(close=False)  # the parent's connections stay the parent's
    _ENGINES.clear()


os.register_at_fork(after_in_child=_drop_in_child)


def _synchronous_normal(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.execute("PRAGMA synchronous=NORMAL")


def engine_for(conn_string: str) -> Any:
    """The process's engine for one SQLite file, created on first use."""
    from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
    from sqlalchemy import create_engine, event

    engine = _ENGINES.get(conn_string)
    if engine is None:
        if len(_ENGINES) >= MAX_ENGINES:
            for old in _ENGINES.values():
                old.dispose()
            _ENGINES.clear()
        engine = create_engine(conn_string, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS})
        event.listen(engine, "connect", _synchronous_normal)
        _ENGINES[conn_string] = engine
    return engine


def _template(storage: Any) -> Path:
    """An empty event file as Dagster initialises one (tables, indexes, alembic stamp)."""
    from dagster import __version__
    from dagster._core.storage.event_log.sqlite.sqlite_event_log import INDEX_SHARD_NAME
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    template = Path(storage.path_for_shard(INDEX_SHARD_NAME)).parent / ".templates" / f"run-{__version__}.db"
    if not template.exists():
        template.parent.mkdir(exist_ok=True)
        tmp = template.with_name(f".{uuid.uuid4().hex}.db")
        engine = create_engine(f"sqlite:///{tmp}", poolclass=NullPool)
        storage._initdb(engine)
        engine.dispose()  # its last connection closed: the write-ahead log is checkpointed
        os.replace(tmp, template)
    return template


def _from_template(storage: Any, shard: str) -> bool:
    """Create a run's event file from the template; False if it exists (Dagster checks it then)."""
    from dagster._core.storage.event_log.sqlite.sqlite_event_log import INDEX_SHARD_NAME

    path = Path(storage.path_for_shard(shard))
    if shard == INDEX_SHARD_NAME or path.exists():
        return False
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    shutil.copyfile(_template(storage), tmp)
    try:
        os.link(tmp, path)  # never over a file another process created meanwhile
    except FileExistsError:
        return False
    finally:
        tmp.unlink()
    return True


def cache_engines(instance: Any) -> bool:
    """Patch this instance's SQLite event log and run storage objects; False (and nothing done)
    when they are not Dagster's SQLite storages."""
    from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage
    from dagster._core.storage.runs.sqlite.sqlite_run_storage import SqliteRunStorage

    events, runs = instance.event_log_storage, instance.run_storage
    if type(events) is not SqliteEventLogStorage or not hasattr(events, "_initialized_dbs"):
        return False
    if type(runs) is not SqliteRunStorage or not hasattr(runs, "_conn_string"):
        return False

    @contextmanager
    def connect_shard(self: Any, shard: str) -> Iterator[Any]:
        # as SqliteEventLogStorage._connect, but the engine and its connections outlive the call
        with self._db_lock:
            engine = engine_for(self.conn_string_for_shard(shard))
            if shard not in self._initialized_dbs:
                if not _from_template(self, shard):
                    self._initdb(engine)
                self._initialized_dbs.add(shard)
            with engine.connect() as conn, conn.begin():
                yield conn

    @contextmanager
    def connect_runs(self: Any) -> Iterator[Any]:
        with engine_for(self._conn_string).connect() as conn, conn.begin():
            yield conn

    events._connect = types.MethodType(connect_shard, events)
    runs.connect = types.MethodType(connect_runs, runs)
    return True
