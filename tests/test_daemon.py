"""Everything at once, on a real Dagster webserver and daemon (`dagster dev`): a schedule ticking,
the landing sensor folding a live feed, automation updating consumers, and a person launching runs
from the UI (the GraphQL mutation the UI sends). No lock failure, no lost or duplicated event."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from devtools.appointment_feed import Feed
from devtools.ui_screenshot import graphql, webserver
from mesh_platform.project.locations import MeshHome
from mesh_platform.storage.duckdb_warehouse import open_warehouse
from mesh_platform.upstream.dagster_automation import AUTOMATION_RUN_TAG
from tests.conftest import E2E_SCALE, copy_project, mesh_env, run_mesh_cli

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("daemon")]

LAUNCH = """mutation($params: ExecutionParams!) { launchRun(executionParams: $params) {
  __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message } } }"""
START_SCHEDULE = """mutation($s: ScheduleSelector!) { startSchedule(scheduleSelector: $s) {
  __typename ... on PythonError { message } } }"""
RESET_SCHEDULE = """mutation($s: ScheduleSelector!) { resetSchedule(scheduleSelector: $s) {
  __typename ... on PythonError { message } } }"""
ACTIVE = (
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
)


class Live:
    def __init__(self, root: Path, home: Path, port: int):
        self.root, self.home, self.port = root, home, port

    def instance(self) -> dg.DagsterInstance:
        return dg.DagsterInstance.from_config(str(self.home / "dagster"))

    def launch(self, location: str, job: str) -> str:
        params = {
            "selector": {"repositoryLocationName": location, "repositoryName": "__repository__", "jobName": job},
            "runConfigData": {},
        }
        result = graphql(self.port, LAUNCH, {"params": params})["launchRun"]
        assert result["__typename"] == "LaunchRunSuccess", result
        return result["run"]["runId"]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    base = tmp_path_factory.mktemp("daemon")
    root = copy_project(base / "project")
    descriptor = root / "domains" / "pharmacy" / "domain.yaml"  # a schedule that ticks during the test
    descriptor.write_text(descriptor.read_text().replace('schedule: "0 4 * * *"', 'schedule: "* * * * *"', 1))
    home = base / "home"
    env = mesh_env(root, home)
    run_mesh_cli("seed", "--scale", E2E_SCALE, env=env, cwd=root, check=True)
    run_mesh_cli("run", env=env, cwd=root, check=True)
    env = {**env, "DAGSTER_HOME": str(home / "dagster")}
    with webserver(root, env, base / "webserver.log") as server:  # `dagster dev`: webserver and daemon
        yield Live(root, home, server.port)


def test_schedule_sensor_automation_and_ui_launches_together(live: Live) -> None:
    started = time.time()
    selector = {
        "repositoryLocationName": "pharmacy",
        "repositoryName": "__repository__",
        "scheduleName": "pharmacy_schedule",
    }
    assert graphql(live.port, START_SCHEDULE, {"s": selector})["startSchedule"]["__typename"] == "ScheduleStateResult"

    feed = Feed(live.home, seed=21, bookings=25, malformed_rate=0.02, late_rate=0.2)
    batches = []
    for number in range(1, 9):
        batches.append(feed.batch(number))
        if number == 3:
            batches.append(feed.redeliver(batches[-1]))
            ui_runs = [live.launch("scheduling", "scheduling"), live.launch("pharmacy", "pharmacy")]
        time.sleep(3)

    instance = live.instance()
    ingested_files = {b.path.name for b in batches}
    deadline = time.monotonic() + 1200
    schedule_on = True
    while time.monotonic() < deadline:
        runs = instance.get_runs(dg.RunsFilter(created_after=_utc(started)))
        done = _ingested_files(instance, started) >= ingested_files
        automated = [r for r in runs if r.tags.get("dagster/sensor_name", "").endswith("_automation")]
        consumers = {key.path[0] for r in automated for key in r.asset_selection or ()}
        scheduled = [r for r in runs if r.tags.get("dagster/schedule_name") == "pharmacy_schedule"]
        if scheduled and schedule_on:  # it ticked: a person switches it off again in the UI
            result = graphql(live.port, RESET_SCHEDULE, {"s": selector})["resetSchedule"]
            assert result["__typename"] == "ScheduleStateResult", result
            schedule_on = False
        settled = not [r for r in runs if r.status in ACTIVE]
        if done and scheduled and {"patient_360", "site_operations"} <= consumers and settled:
            break
        time.sleep(5)
    else:
        raise AssertionError(
            f"not settled in 20 min: ingested all files={done} (missing "
            f"{sorted(ingested_files - _ingested_files(instance, started))}), schedule ticked={bool(scheduled)}, "
            f"consumers automated={sorted(consumers)}, active={[r.job_name for r in runs if r.status in ACTIVE]}; "
            f"runs: {[(r.job_name, r.status.value, _origin(r)) for r in runs]}"
        )

    failed = [r for r in runs if r.status != dg.DagsterRunStatus.SUCCESS]
    assert failed == [], [(r.job_name, r.status) for r in failed]
    assert set(ui_runs) <= {r.run_id for r in runs}
    assert any(r.tags.get("dagster/sensor_name") == "scheduling__appointment_events_landing" for r in runs)
    # the consumers' condition tells the runs automation requested by this tag (mesh_platform/upstream)
    assert automated and all(r.tags.get(AUTOMATION_RUN_TAG) == "true" for r in automated)
    for run in runs:  # no step hit a lock, even transiently
        for record in instance.get_records_for_run(run.run_id).records:
            event = record.event_log_entry.dagster_event
            if event and event.event_type in (dg.DagsterEventType.STEP_FAILURE, dg.DagsterEventType.STEP_UP_FOR_RETRY):
                raise AssertionError(f"{run.job_name}: {event.message}")

    events = []
    for batch in batches:
        if batch.redelivery_of:
            continue
        for line in batch.path.read_text().splitlines():
            try:
                events.append(json.loads(line)["event_id"])
            except json.JSONDecodeError:
                continue
    with open_warehouse(MeshHome(live.home), "scheduling", read_only=True) as con:  # waits out a writer
        con.execute("create temp table want (event_id varchar)")
        con.executemany("insert into want values (?)", [[e] for e in events])
        counts = {
            n
            for (n,) in con.execute(
                "select count(e.event_id) from want w "
                "left join appointment_events e using (event_id) group by w.event_id"
            ).fetchall()
        }
    assert counts == {1}, "an event was lost or stored twice"


def _ingested_files(instance: dg.DagsterInstance, since: float) -> set[str]:
    """The landing files the ingesting asset reports in its materializations (read from Dagster, so
    the test never opens the warehouse while a run writes it)."""
    records = instance.fetch_materializations(dg.AssetKey(["scheduling", "appointment_events"]), limit=1000).records
    files: set[str] = set()
    for record in records:
        if record.timestamp >= since:
            listed = record.asset_materialization.metadata.get("mesh/source_files")
            files |= {f.strip() for f in str(listed.value if listed else "").split(",") if f.strip()}
    return files


def _origin(run: dg.DagsterRun) -> str:
    tags = run.tags
    return tags.get("dagster/sensor_name") or tags.get("dagster/schedule_name") or "launched"


def _utc(timestamp: float) -> Any:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(timestamp, UTC)


def _worker_pid(instance: dg.DagsterInstance, run_id: str) -> int | None:
    """The pid in the run's "Started process for run (pid: N)." event, as the UI shows it."""
    for record in instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT).records:
        event = record.event_log_entry.dagster_event
        if event and (event.message or "").startswith("Started process for run"):
            return int(event.message.split("pid: ")[1].rstrip(")."))
    return None


def _wait_for_status(instance: dg.DagsterInstance, run_id: str, seconds: float) -> dg.DagsterRun:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        run = instance.get_run_by_id(run_id)
        assert run is not None
        if run.status not in ACTIVE:
            return run
        time.sleep(1)
    raise AssertionError(f"run {run_id} still {run.status.value} after {seconds:.0f} s")


def test_a_run_whose_process_is_killed_is_marked_failed_and_frees_its_domain(live: Live) -> None:
    instance = live.instance()
    killed = live.launch("scheduling", "scheduling")
    deadline, pid = time.monotonic() + 300, None
    while pid is None:
        assert time.monotonic() < deadline, "the run's process never started"
        run = instance.get_run_by_id(killed)
        assert run is not None and run.status in ACTIVE, f"the run ended before it could be killed: {run}"
        if run.status == dg.DagsterRunStatus.STARTED:
            pid = _worker_pid(instance, killed)
        time.sleep(0.2)
    os.kill(pid, signal.SIGKILL)  # out of memory, kill -9: the process ends without a word

    # run monitoring (every 15 s in the dev instance) asks the launcher, which finds the process gone
    assert _wait_for_status(instance, killed, 180).status == dg.DagsterRunStatus.FAILURE
    # ...and its pool slot is free: the domain's next run is not stuck behind it
    after = live.launch("scheduling", "scheduling")
    assert _wait_for_status(instance, after, 600).status == dg.DagsterRunStatus.SUCCESS
