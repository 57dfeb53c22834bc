"""The embedded instance's run launcher: runs launch at once, a dead worker fails its run, Terminate
stops the worker, and the warm server goes away when it is no longer wanted."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import dagster as dg
import pytest

from mesh_platform.orchestration.launcher import MeshRunLauncher
from mesh_platform.orchestration.process_health import process_alive
from mesh_platform.orchestration.run_worker_server import IDLE_ENV, ServerPaths, ensure_server, fork_worker, prestart
from mesh_platform.project.dagster_instance import prepare_instance
from mesh_platform.upstream.dagster_runs import WorkerStatus
from tests.conftest import copy_project, mesh_env, run_mesh_cli


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


def _wait_gone(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while process_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    return not process_alive(pid)


def test_dev_instance_launches_at_once_with_the_launcher_and_monitors_runs(tmp_path: Path) -> None:
    instance = _instance(tmp_path)
    assert isinstance(instance.run_launcher, MeshRunLauncher)
    assert instance.run_launcher.supports_check_run_worker_health
    # a submitted run goes to the launcher at once: `mesh run` needs no daemon
    assert type(instance.run_coordinator).__name__ in ("DefaultRunCoordinator", "SyncInMemoryRunCoordinator")
    assert instance.run_monitoring_enabled and instance.run_monitoring_poll_interval_seconds <= 30
    # the slots a dead run holds are freed once it is marked failed (Dagster reads 0 as "never")
    assert instance.run_monitoring_settings["free_slots_after_run_end_seconds"] >= 1


def test_a_run_whose_worker_process_died_is_reported_failed(tmp_path: Path) -> None:
    instance = _instance(tmp_path)
    here = socket.gethostname()
    dead = _started_run(instance, {"mesh/pid": str(_dead_pid()), "mesh/host": here})
    alive = _started_run(instance, {"mesh/pid": str(os.getpid()), "mesh/host": here})
    elsewhere = _started_run(instance, {"mesh/pid": str(_dead_pid()), "mesh/host": f"not-{here}"})
    unrecorded = _started_run(instance)  # not launched here, or its pid not recorded yet: not judged
    assert instance.run_launcher.check_run_worker_health(unrecorded).status == WorkerStatus.RUNNING
    assert instance.run_launcher.check_run_worker_health(dead).status == WorkerStatus.FAILED
    assert instance.run_launcher.check_run_worker_health(alive).status == WorkerStatus.RUNNING
    assert instance.run_launcher.check_run_worker_health(elsewhere).status == WorkerStatus.RUNNING


def test_terminate_stops_the_worker_and_cancels_the_run(tmp_path: Path) -> None:
    """A worker that does not end on SIGTERM (as Dagster's does inside a step with a retry policy)
    is stopped after the grace period; the run ends cancelled either way."""
    instance = _instance(tmp_path)
    stubborn = subprocess.Popen(
        [sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(300)"],
        start_new_session=True,
    )
    time.sleep(0.5)  # its handler is installed
    run = _started_run(instance, {"mesh/pid": str(stubborn.pid), "mesh/host": socket.gethostname()})
    assert instance.run_coordinator.cancel_run(run.run_id) is True
    assert stubborn.wait(timeout=30) == -signal.SIGKILL
    assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.CANCELED

    gone = _started_run(instance, {"mesh/pid": str(_dead_pid()), "mesh/host": socket.gethostname()})
    assert instance.run_coordinator.cancel_run(gone.run_id) is False  # nothing left to stop...
    assert instance.get_run_by_id(gone.run_id).status == dg.DagsterRunStatus.CANCELED  # ...and not left hanging


@pytest.mark.slow
def test_the_warm_server_leaves_when_idle_or_when_its_instance_is_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(IDLE_ENV, "2")
    idle = ServerPaths.of(tmp_path / "idle" / "dagster", sys.executable)
    ensure_server(idle, sys.executable)
    pid = int(idle.suffixed(".pid").read_text())
    assert _wait_gone(pid, 60), "an idle server stays"
    assert not idle.socket.exists()
    assert "exiting: idle" in idle.suffixed(".log").read_text()

    monkeypatch.setenv(IDLE_ENV, "600")
    removed = ServerPaths.of(tmp_path / "removed" / "dagster", sys.executable)
    ensure_server(removed, sys.executable)
    pid = int(removed.suffixed(".pid").read_text())
    shutil.rmtree(tmp_path / "removed")  # a test's or a bench's home, deleted
    assert _wait_gone(pid, 60), "a server outlives its instance"


def test_a_zombie_is_not_alive() -> None:
    proc = subprocess.Popen(["true"])
    deadline = time.monotonic() + 10
    while process_alive(proc.pid) and time.monotonic() < deadline:  # exited, not yet reaped
        time.sleep(0.05)
    assert not process_alive(proc.pid)
    proc.wait()
    assert process_alive(os.getpid())


def test_a_run_that_ended_after_it_was_read_is_not_failed_when_its_worker_is_gone(tmp_path: Path) -> None:
    """A worker stores its run's end and exits: `mesh run` read the run as started, then found the
    worker gone. The run succeeded in between, and stays a success (it had been marked failed:
    `mesh run` reported a domain whose run succeeded as failed, and skipped its consumers)."""
    from mesh_platform.orchestration.domain_runs import fail_dead_run, reap_orphaned_runs

    instance = _instance(tmp_path)
    tags = {"mesh/pid": str(_dead_pid()), "mesh/host": socket.gethostname()}
    read_before = _started_run(instance, tags)
    success = dg.DagsterEvent(dg.DagsterEventType.RUN_SUCCESS.value, job_name=read_before.job_name)
    instance.report_dagster_event(success, run_id=read_before.run_id)  # what its worker stores last
    assert instance.get_run_by_id(read_before.run_id).status == dg.DagsterRunStatus.SUCCESS
    assert not fail_dead_run(instance, read_before, "its run worker is gone")
    assert instance.get_run_by_id(read_before.run_id).status == dg.DagsterRunStatus.SUCCESS
    # still started in the instance, its worker gone: failed
    orphan = _started_run(instance, tags)
    assert reap_orphaned_runs(instance) == [orphan.run_id]
    assert instance.get_run_by_id(orphan.run_id).status == dg.DagsterRunStatus.FAILURE
    assert instance.get_run_by_id(read_before.run_id).status == dg.DagsterRunStatus.SUCCESS


def test_runs_whose_process_tags_are_not_pids_are_left_alone(tmp_path: Path) -> None:
    """Tags a person can type in the launchpad: `mesh run` does not stop on them, and judges no run by
    them (the run is neither failed nor deleted)."""
    from mesh_platform.orchestration.domain_runs import LAUNCHED_BY, PREPARED_BY, reap_orphaned_runs

    instance = _instance(tmp_path)
    host = socket.gethostname()
    started = _started_run(instance, {"mesh/pid": "12x", "mesh/host": host})
    waiting = dg.DagsterRun(job_name="scheduling", run_id=str(uuid.uuid4()), status=dg.DagsterRunStatus.NOT_STARTED)
    instance.add_run(waiting.with_tags({**LAUNCHED_BY, PREPARED_BY: f"-1; drop@{host}"}))
    assert reap_orphaned_runs(instance) == []
    assert instance.get_run_by_id(started.run_id).status == dg.DagsterRunStatus.STARTED
    assert instance.get_run_by_id(waiting.run_id) is not None
    # run monitoring asks the launcher, which reads the same tags: nothing to judge by
    assert instance.run_launcher.check_run_worker_health(started).status == WorkerStatus.RUNNING


@pytest.mark.slow
def test_prestart_says_whether_the_server_was_up_and_starts_it_if_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`mesh run` loads every domain's job in the background on a cold start (the first run waits
    for the server's imports): that choice rests on this answer."""
    monkeypatch.setenv(IDLE_ENV, "30")
    instance_dir = tmp_path / "dagster"
    paths = ServerPaths.of(instance_dir, sys.executable)
    try:
        assert prestart(instance_dir, sys.executable) is False  # none was up: one is starting
        ensure_server(paths, sys.executable)  # waits until that one listens; starts no other
        assert prestart(instance_dir, sys.executable) is True
        assert paths.suffixed(".log").read_text().count("ready in") == 1  # one server, not two
    finally:
        pid = int(paths.suffixed(".pid").read_text())
        os.kill(pid, signal.SIGTERM)
        assert _wait_gone(pid, 60)


@pytest.mark.slow
def test_a_malformed_request_is_refused_and_the_server_keeps_serving(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Valid JSON that is not a worker request (`{}`, a list, argv not strings, env not strings)
    used to raise in the server's loop after the fork, and the server died."""
    monkeypatch.setenv(IDLE_ENV, "60")
    instance_dir = tmp_path / "dagster"
    paths = ServerPaths.of(instance_dir, sys.executable)
    ensure_server(paths, sys.executable)
    pid = int(paths.suffixed(".pid").read_text())
    log = tmp_path / "w.log"
    good = {"argv": ["--version"], "env": {}, "cwd": str(tmp_path), "log": str(log)}
    malformed = [
        *({}, [], "x", 5),
        *({**good, "argv": 5}, {**good, "argv": []}, {**good, "env": {"A": 1}}, {**good, "log": None}),
    ]
    try:
        for bad in malformed:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(30)
                sock.connect(str(paths.socket))
                sock.sendall(json.dumps(bad).encode() + b"\n")
                assert sock.makefile("r").readline() == "", f"{bad!r} was answered"
        assert process_alive(pid), "a malformed request ended the server"
        assert paths.suffixed(".log").read_text().count("bad request") == len(malformed)
        # and it still forks a worker for a real request
        assert fork_worker(instance_dir, sys.executable, ["--version"], {}, str(tmp_path), log) > 0
        deadline = time.monotonic() + 60
        while not (log.exists() and "version" in log.read_text()) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "dagster, version" in log.read_text()
    finally:
        os.kill(pid, signal.SIGTERM)
        assert _wait_gone(pid, 60)


def test_dbts_warm_up_parse_succeeds_and_leaves_no_thread_behind() -> None:
    """The server forks its workers after the warm-up: a thread it left running (the static
    parser's Rust pool, a DuckDB connection's) would be missing in every forked worker, and a
    worker could hang on a lock that thread held. Counted as the kernel sees threads."""
    script = (
        "import json, os\n"
        "from mesh_platform.orchestration import run_worker_server as server\n"
        "server.warm_up(server.PRELOAD + server.PRELOAD_DBT)\n"
        "before = len(os.listdir('/proc/self/task'))\n"
        "parsed = server.first_dbt_invocation()\n"
        "print(json.dumps([parsed, before, len(os.listdir('/proc/self/task'))]))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    parsed, before, after = json.loads(done.stdout.strip().splitlines()[-1])
    assert parsed, done.stdout
    assert after == before, f"dbt's warm-up left {after - before} thread(s) running"


@pytest.mark.slow
def test_a_dbt_domain_runs_in_a_worker_forked_after_dbts_warm_up(tmp_path: Path) -> None:
    """Once no worker runs, the server warms dbt up (and says so in its log); a dbt domain's run
    forked afterwards builds its models and publishes."""
    root = copy_project(tmp_path / "project")
    home = tmp_path / "home"
    env = mesh_env(root, home)
    run_mesh_cli("seed", "--scale", "0.01", env=env, cwd=root, check=True)
    run_mesh_cli("run", "--domain", "pharmacy", env=env, cwd=root, check=True)  # starts the server
    (log,) = (home / "dagster" / "run_workers").glob("*.log")
    deadline = time.monotonic() + 180
    while "dbt warmed up" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert "dbt warmed up" in log.read_text(), log.read_text()
    assert "warm-up parse" not in log.read_text(), log.read_text()  # neither failed nor raised
    run_mesh_cli("run", "--domain", "immunizations", env=env, cwd=root, check=True)
    instance = dg.DagsterInstance.from_config(str(home / "dagster"))
    (run,) = instance.get_runs(dg.RunsFilter(job_name="immunizations"))
    assert run.status == dg.DagsterRunStatus.SUCCESS
    assert "forked from the warm run worker server" in "".join(
        r.event_log_entry.dagster_event.message or ""
        for r in instance.get_records_for_run(run.run_id, of_type=dg.DagsterEventType.ENGINE_EVENT).records
    )
    server = int(next((home / "dagster" / "run_workers").glob("*.pid")).read_text())
    os.kill(server, signal.SIGTERM)
    assert _wait_gone(server, 30)
