"""`mesh run`'s event log keeps one engine per shard and still stores what Dagster stores."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from mesh_platform.orchestration.sqlite_events import cache_engines


@dg.asset
def counted() -> int:
    return 1


def test_cached_engines_store_events_other_processes_read(tmp_path: Path) -> None:
    instance = dg.DagsterInstance.local_temp(str(tmp_path))
    assert cache_engines(instance.event_log_storage)
    engines = []
    for _ in range(3):
        with instance.event_log_storage.index_connection() as conn:
            engines.append(conn.engine)
    assert engines[1] is engines[0] and engines[2] is engines[0]  # its statement cache lives on
    result = dg.materialize([counted], instance=instance)
    assert result.success
    elsewhere = dg.DagsterInstance.from_config(str(tmp_path))  # what the UI or another run reads
    event = elsewhere.get_latest_materialization_event(dg.AssetKey("counted"))
    assert event is not None and event.run_id == result.run_id
    assert len(elsewhere.all_logs(result.run_id)) == len(instance.all_logs(result.run_id))


def test_other_storages_are_left_alone() -> None:
    with dg.DagsterInstance.ephemeral() as instance:
        assert not cache_engines(instance.event_log_storage)
