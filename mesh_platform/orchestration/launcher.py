"""The embedded instance's run launcher: Dagster's DefaultRunLauncher, plus a worker health check.

DefaultRunLauncher starts each run (from the UI, a schedule, a sensor or automation) as a process
of the code location's server, and cannot tell whether that process is still alive. A run whose
process was killed (out of memory, `kill -9`, a crashed machine) would stay STARTED for ever and
keep its domain's pool slot, so every later run of the domain would wait behind it, and the landing
sensor would never re-deliver its batch. With this health check, Dagster's run monitoring (enabled
in the dev instance, `mesh_platform/instance.py`) marks such a run failed and frees its slots; the
landing sensor then requests the batch again (`orchestration/landing.py`).

The worker's pid comes from the engine event the code server writes when it starts the process,
or, for runs `mesh run` executes in its own process, from their `mesh/pid` tag. Both are processes
of this machine: the embedded instance runs everything on one machine.
"""

from __future__ import annotations

from dagster import DagsterEventType, DagsterRun, DefaultRunLauncher
from dagster._core.launcher import CheckRunHealthResult, WorkerStatus

from mesh_platform.processes import local_runner_pid, process_alive


class MeshRunLauncher(DefaultRunLauncher):
    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: DagsterRun) -> CheckRunHealthResult:
        pid = self._worker_pid(run)
        if pid is None:  # not started by this launcher or not recorded yet: nothing to judge by
            return CheckRunHealthResult(WorkerStatus.RUNNING, "no worker process recorded")
        if process_alive(pid):
            return CheckRunHealthResult(WorkerStatus.RUNNING)
        return CheckRunHealthResult(WorkerStatus.FAILED, f"the run's process (pid {pid}) is gone")

    def _worker_pid(self, run: DagsterRun) -> int | None:
        if run.tags.get("mesh/pid"):  # executed by `mesh run` in its own process
            return local_runner_pid(run.tags)
        records = self._instance.get_records_for_run(run.run_id, of_type=DagsterEventType.ENGINE_EVENT).records
        for record in reversed(records):  # the latest worker, if the run was ever resumed
            event = record.event_log_entry.dagster_event
            pid = event.engine_event_data.metadata.get("pid") if event and event.engine_event_data else None
            message = (event.message if event else None) or record.event_log_entry.user_message
            if pid is not None and message.startswith("Started process for run"):
                return int(str(pid.value))
        return None
