"""The embedded instance's run launcher tells run monitoring when a run's process is gone."""

from __future__ import annotations

import os
import socket
import subprocess
import time
import uuid
from pathlib import Path

import dagster as dg
from dagster._core.events import EngineEventData
from dagster._core.launcher import WorkerStatus

from mesh_platform.instance import prepare_instance
from mesh_platform.orchestration.launcher import MeshRunLauncher
from mesh_platform.processes import process_alive


def _instance(tmp_path: Path) -> dg.DagsterInstance:
    prepare_instance(tmp_path / "dagster", {})
    return dg.DagsterInstance.from_config(str(tmp_path / "dagster"))


def _started_run(instance: dg.DagsterInstance, tags: dict[str, str] | None = None) -> dg.DagsterRun:
    run = dg.DagsterRun(job_name="scheduling", run_id=str(uuid.uuid4()), status=dg.DagsterRunStatus.STARTED)
    return instance.add_run(run.with_tags(tags or {}))


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_dev_instance_uses_the_launcher_and_monitors_runs(tmp_path: Path) -> None:
    instance = _instance(tmp_path)
    assert isinstance(instance.run_launcher, MeshRunLauncher)
    assert instance.run_launcher.supports_check_run_worker_health
    assert instance.run_monitoring_enabled and instance.run_monitoring_poll_interval_seconds <= 30
    # the slots a dead run holds are freed once it is marked failed (Dagster reads 0 as "never")
    assert instance.run_monitoring_settings["free_slots_after_run_end_seconds"] >= 1


def test_a_run_whose_worker_process_died_is_reported_failed(tmp_path: Path) -> None:
    instance = _instance(tmp_path)
    launcher = instance.run_launcher
    run = _started_run(instance)
    # nothing recorded yet (the code server writes the pid once the process started): not judged
    assert launcher.check_run_worker_health(run).status == WorkerStatus.RUNNING

    pid = _dead_pid()
    instance.report_engine_event(f"Started process for run (pid: {pid}).", run, EngineEventData.in_process(pid))
    result = launcher.check_run_worker_health(run)
    assert result.status == WorkerStatus.FAILED and str(pid) in (result.msg or "")

    alive = os.getpid()  # resumed by a new worker: the latest one counts
    instance.report_engine_event(f"Started process for run (pid: {alive}).", run, EngineEventData.in_process(alive))
    assert launcher.check_run_worker_health(run).status == WorkerStatus.RUNNING


def test_runs_of_mesh_run_are_judged_by_their_process_tag(tmp_path: Path) -> None:
    instance = _instance(tmp_path)
    here = socket.gethostname()
    dead = _started_run(instance, {"mesh/pid": str(_dead_pid()), "mesh/host": here})
    alive = _started_run(instance, {"mesh/pid": str(os.getpid()), "mesh/host": here})
    elsewhere = _started_run(instance, {"mesh/pid": str(_dead_pid()), "mesh/host": f"not-{here}"})
    assert instance.run_launcher.check_run_worker_health(dead).status == WorkerStatus.FAILED
    assert instance.run_launcher.check_run_worker_health(alive).status == WorkerStatus.RUNNING
    assert instance.run_launcher.check_run_worker_health(elsewhere).status == WorkerStatus.RUNNING


def test_a_zombie_is_not_alive() -> None:
    proc = subprocess.Popen(["true"])
    deadline = time.monotonic() + 10
    while process_alive(proc.pid) and time.monotonic() < deadline:  # exited, not yet reaped
        time.sleep(0.05)
    assert not process_alive(proc.pid)
    proc.wait()
    assert process_alive(os.getpid())
