"""`mesh run`'s instance keeps its SQLite connections and still stores what Dagster stores."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg

from mesh_platform.orchestration.sqlite_events import cache_engines


@dg.asset
def counted() -> int:
    return 1


def test_kept_connections_store_runs_and_events_other_processes_read(tmp_path: Path) -> None:
    instance = dg.DagsterInstance.local_temp(str(tmp_path))
    assert cache_engines(instance)
    engines = []
    for _ in range(3):
        with instance.event_log_storage.index_connection() as conn:
            engines.append(conn.engine)
            assert conn.exec_driver_sql("pragma synchronous").scalar() == 1  # NORMAL
    assert engines[1] is engines[0] and engines[2] is engines[0]  # its statement cache lives on
    with instance.run_storage.connect() as first, instance.run_storage.connect() as second:
        assert first.engine is second.engine
    result = dg.materialize([counted], instance=instance)
    assert result.success
    elsewhere = dg.DagsterInstance.from_config(str(tmp_path))  # what the UI or another run reads
    event = elsewhere.get_latest_materialization_event(dg.AssetKey("counted"))
    assert event is not None and event.run_id == result.run_id
    assert len(elsewhere.all_logs(result.run_id)) == len(instance.all_logs(result.run_id))
    assert elsewhere.get_run_by_id(result.run_id).is_success  # type: ignore[union-attr]


def test_a_forked_child_opens_its_own_connections(tmp_path: Path) -> None:
    instance = dg.DagsterInstance.local_temp(str(tmp_path))
    assert cache_engines(instance)
    with instance.event_log_storage.index_connection() as conn:
        parent_engine = conn.engine
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: a new engine, and a run its parent can read
        os.close(read)
        try:
            with instance.event_log_storage.index_connection() as conn:
                fresh = conn.engine is not parent_engine
            ok = fresh and dg.materialize([counted], instance=instance).success
            os.write(write, b"1" if ok else b"0")
        finally:
            os._exit(0)
    os.close(write)
    answer = os.read(read, 1)
    os.waitpid(pid, 0)
    assert answer == b"1"
    assert instance.get_latest_materialization_event(dg.AssetKey("counted")) is not None
    with instance.event_log_storage.index_connection() as conn:  # the parent's own still work
        assert conn.engine is parent_engine


def test_other_storages_are_left_alone() -> None:
    with dg.DagsterInstance.ephemeral() as instance:
        assert not cache_engines(instance)
