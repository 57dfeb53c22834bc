"""The embedded instance's run launcher: every run in a warm run worker, watched by run monitoring.

Whoever launches a run — the UI, a schedule, a sensor, automation, `mesh run` — the instance hands
it to this launcher, which starts Dagster's own run worker for it (`dagster api execute_run
<ExecuteRunArgs>`, as Dagster's K8sRunLauncher starts one in a pod) in a process forked from the
warm server of this instance (`run_worker_server.py`: Dagster, dbt, Great Expectations and the
other libraries already imported). Without a server to use (it cannot start, or its socket path
is too long) the worker starts as a plain `python -m dagster api execute_run` process. The run
worker loads the job from the run's code origin (the domain's `definitions.py`) and executes it
with the job's executor, tags and pools; its output goes to `run_logs/<job>-<run id>.log` in the
instance's directory.

The worker's pid and host are recorded as the run's tags `mesh/pid` and `mesh/host`, so that:
- run monitoring (enabled in the dev instance, `mesh_platform/project/dagster_instance.py`) asks
  `check_run_worker_health`, and a run whose worker died (out of memory, `kill -9`) is marked
  failed and its pool slots freed, where it would otherwise stay STARTED and block its domain;
- `terminate` (the UI's "Terminate", `mesh run`'s Ctrl-C) signals the worker, which ends the run
  as cancelled.
Both rely on the workers being processes of this machine: the embedded instance runs everything on
one machine. The `prod` instance keeps Dagster's DefaultRunLauncher.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dagster import DagsterRun

from mesh_platform.orchestration.process_health import local_runner_pid, process_alive
from mesh_platform.orchestration.run_worker_server import ServerUnavailable, fork_worker
from mesh_platform.upstream.dagster_runs import (
    CheckRunHealthResult,
    ConfigurableClass,
    ConfigurableClassData,
    LaunchRunContext,
    RunLauncher,
    WorkerStatus,
    run_executable,
    run_worker_args,
    run_working_directory,
)

PID_TAG, HOST_TAG, LOG_TAG = "mesh/pid", "mesh/host", "mesh/log"
TERMINATE_GRACE_S = 3.0


class MeshRunLauncher(RunLauncher, ConfigurableClass):
    def __init__(self, inst_data: ConfigurableClassData | None = None) -> None:
        self._inst_data = inst_data
        self._plain: list[subprocess.Popen] = []  # workers started without the server, reaped here
        super().__init__()

    @property
    def inst_data(self) -> ConfigurableClassData | None:
        return self._inst_data

    @classmethod
    def config_type(cls) -> dict:
        return {}

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData, config_value: Mapping[str, Any]) -> MeshRunLauncher:
        return cls(inst_data=inst_data)

    def log_path(self, run: DagsterRun) -> Path:
        return Path(self._instance.root_directory) / "run_logs" / f"{run.job_name}-{run.run_id}.log"

    def launch_run(self, context: LaunchRunContext) -> None:
        run = context.dagster_run
        self._reap()
        argv = run_worker_args(self._instance, run)
        executable = run_executable(run)
        log = self.log_path(run)
        log.parent.mkdir(parents=True, exist_ok=True)
        cwd = run_working_directory(run) or os.getcwd()
        instance_dir = Path(self._instance.root_directory)
        try:
            pid = fork_worker(instance_dir, executable, argv, os.environ, cwd, log)
            how = "forked from the warm run worker server"
        except ServerUnavailable as exc:
            with open(log, "ab") as out:
                worker = subprocess.Popen(
                    [executable, "-m", "dagster", *argv],
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    cwd=cwd,
                    start_new_session=True,  # as a forked worker: Ctrl-C in a terminal is not its
                )
            self._plain.append(worker)
            pid, how = worker.pid, f"started as a new process ({exc})"
        self._instance.add_run_tags(run.run_id, {PID_TAG: str(pid), HOST_TAG: socket.gethostname(), LOG_TAG: str(log)})
        self._instance.report_engine_event(f"Run worker (pid {pid}) {how}; its output: {log}", run, cls=type(self))

    def _reap(self) -> None:
        self._plain = [p for p in self._plain if p.poll() is None]

    def terminate(self, run_id: str) -> bool:
        run = self._instance.get_run_by_id(run_id)
        if run is None or run.is_finished:
            return False
        self._instance.report_run_canceling(run)
        pid = self._worker_pid(run)
        if pid is None or not process_alive(pid):  # nothing to stop: the run ends here
            self._instance.report_run_canceled(run, message="Its run worker was not running.")
            return False
        # Dagster's run worker takes SIGTERM as an interrupt, and ends the run as cancelled between
        # steps; inside a step with a retry policy it retries the step instead, so the worker is
        # stopped if it has not ended after a grace period
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + TERMINATE_GRACE_S
        while process_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if process_alive(pid):
            os.kill(pid, signal.SIGKILL)
            run = self._instance.get_run_by_id(run_id)
            if run is not None and not run.is_finished:
                self._instance.report_run_canceled(run, message=f"Its run worker (pid {pid}) was stopped.")
                self._instance.event_log_storage.free_concurrency_slots_for_run(run_id)
        return True

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: DagsterRun) -> CheckRunHealthResult:
        self._reap()
        pid = self._worker_pid(run)
        if pid is None:  # not started by this launcher or not recorded yet: nothing to judge by
            return CheckRunHealthResult(WorkerStatus.RUNNING, "no worker process recorded")
        if process_alive(pid):
            return CheckRunHealthResult(WorkerStatus.RUNNING)
        return CheckRunHealthResult(WorkerStatus.FAILED, f"the run's worker process (pid {pid}) is gone")

    def _worker_pid(self, run: DagsterRun) -> int | None:
        return local_runner_pid(run.tags)
