"""A sensor per landing folder: new JSON-lines files launch a micro-batch run.

The cursor maps each file it has handed to a run to its size and mtime, so a file is requested
once, a re-delivered (rewritten) file again, and the run key (a hash of the batch) makes a tick that
died before saving its cursor request the same run, not a second one. Exactly-once is the asset's
job (it keeps every event once by id and records the files in the same transaction), so a run that
dies mid-batch loses nothing: every run ingests every file not yet ingested, and when the sensor's
last run failed or was cancelled it requests a catch-up run. While a run it requested is in flight
it requests none: files that land meanwhile go to the next run together (the dev instance launches
every run at once, and runs of one domain wait for each other's pool slot, each in a process).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dagster as dg

from mesh_platform.orchestration.automation import EVERY_DAEMON_LOOP_S

CATCH_UP_TAG = "mesh/catch_up_of"


def _already_ingested(instance: dg.DagsterInstance, key: dg.AssetKey, files: dict[str, str]) -> dict[str, str]:
    """With no cursor yet: files that landed before the last run that ingested into `key` started."""
    event = instance.get_latest_materialization_event(key)
    record = instance.get_run_record_by_id(event.run_id) if event else None
    if record is None or record.start_time is None:
        return {}
    started_ns = int(record.start_time * 1e9)
    return {name: sig for name, sig in files.items() if int(sig.split(":")[1]) < started_ns}


IN_FLIGHT = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]


def _run_in_flight(context: dg.SensorEvaluationContext) -> bool:
    runs = context.instance.get_runs(
        dg.RunsFilter(tags={"dagster/sensor_name": context.sensor_name}, statuses=IN_FLIGHT), limit=1
    )
    return bool(runs)


def _catch_up(context: dg.SensorEvaluationContext, key: dg.AssetKey) -> dg.RunRequest | None:
    """When this sensor's latest run failed (or was cancelled) after the asset last ingested."""
    runs = context.instance.get_runs(dg.RunsFilter(tags={"dagster/sensor_name": context.sensor_name}), limit=1)
    if not runs or runs[0].status not in (dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED):
        return None
    failed = runs[0]
    if failed.tags.get(CATCH_UP_TAG) and context.instance.get_run_by_id(failed.tags[CATCH_UP_TAG]):
        return None  # a catch-up failed too: that needs a person (the failure was alerted)
    event = context.instance.get_latest_materialization_event(key)
    failed_record = context.instance.get_run_record_by_id(failed.run_id)
    if event and failed_record and failed_record.start_time and event.timestamp > failed_record.start_time:
        return None
    return dg.RunRequest(run_key=f"catch-up-{failed.run_id}", tags={CATCH_UP_TAG: failed.run_id})


def landing_sensor(
    name: str,
    folder: Path,
    signatures: Callable[[], dict[str, str]],
    key: dg.AssetKey,
    job: dg.UnresolvedAssetJobDefinition,
    domain: str,
) -> dg.SensorDefinition:
    """`signatures`: each file of `folder` the asset would ingest, by name, with its size and mtime
    (the asset's own listing: an entry it would not read never launches a run)."""

    @dg.sensor(
        name=name,
        job=job,
        minimum_interval_seconds=EVERY_DAEMON_LOOP_S,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"New files in {folder} launch a micro-batch run of {key.to_user_string()} and what the "
        f"{domain} domain builds from it.",
    )
    def _sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
        if _run_in_flight(context):  # the cursor stays: what is new now goes to the next run
            return dg.SkipReason("a batch run of this sensor is in flight; new files go to the next one")
        files = signatures()
        state: dict[str, Any] = (
            json.loads(context.cursor) if context.cursor else {"seen": _already_ingested(context.instance, key, files)}
        )
        seen: dict[str, str] = state["seen"]
        new = {n: sig for n, sig in files.items() if seen.get(n) != sig}
        requests = []
        if new:
            digest = hashlib.sha256(json.dumps(sorted(new.items())).encode()).hexdigest()[:20]
            listing = ",".join(sorted(new))
            requests.append(
                dg.RunRequest(
                    run_key=f"batch-{digest}",
                    tags={"mesh/landing_files": listing if len(listing) < 1000 else f"{len(new)} files"},
                )
            )
        elif (catch_up := _catch_up(context, key)) is not None:
            requests.append(catch_up)
        # files that left the folder leave the cursor too: it stays the size of the folder
        cursor = {"seen": {n: sig for n, sig in files.items() if n in seen or n in new}}
        return dg.SensorResult(run_requests=requests, cursor=json.dumps(cursor))

    return _sensor
