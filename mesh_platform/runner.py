"""`mesh run`: materialize domains through the Dagster instance in MESH_HOME, headless.

Each domain is one run of its job (in-process executor: one process, imports paid once), so the
runs appear in the Dagster UI afterwards. Which domains run, in what order and how many at once is
`run_scheduler`'s.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from mesh_platform.descriptor.problems import MeshDefinitionError
from mesh_platform.mesh import Mesh
from mesh_platform.orchestration.sqlite_events import cache_engines
from mesh_platform.processes import local_runner_pid, process_alive
from mesh_platform.run_report import DomainResult, ProductResult, product_result
from mesh_platform.store import ProductStore

# progress is streamed by `_Progress`, and a step's failure is reported from what the run recorded
# (`run_report`) with its stack trace in the run's log file: Dagster's console logger would repeat
# every event and print each failure's stack trace on the terminal
QUIET_CONSOLE = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


def use_instance_home(mesh: Mesh) -> None:
    mesh.project.home.ensure()
    os.environ["DAGSTER_HOME"] = str(mesh.project.home.dagster_home)


@contextlib.contextmanager
def open_instance(mesh: Mesh) -> Iterator[Any]:
    """The Dagster instance of MESH_HOME. Its SQLite storage is created on first use; two `mesh run`
    started at the same moment would both try to create it, so creation holds a file lock."""
    from dagster import DagsterInstance

    use_instance_home(mesh)
    with open(mesh.project.home.dagster_home / ".init.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        instance = DagsterInstance.get()
        cache_engines(instance)
        instance.get_runs(limit=1)
        instance.event_log_storage.get_latest_materialization_events([])
        reap_orphaned_runs(instance)
        fcntl.flock(lock, fcntl.LOCK_UN)
    with instance:
        yield instance


def _runner_tags() -> dict[str, str]:
    return {"mesh/launched_by": "mesh run", "mesh/host": socket.gethostname(), "mesh/pid": str(os.getpid())}


def reap_orphaned_runs(instance: Any) -> list[str]:
    """Runs of a `mesh run` process that died (killed, out of memory) stay STARTED and keep their
    pool slot, so every later run of that domain would wait for it forever. Mark them failed and
    free their slots. (Runs the daemon launches are watched by Dagster's own run monitoring.)"""
    from dagster import DagsterRunStatus, RunsFilter

    active = [DagsterRunStatus.NOT_STARTED, DagsterRunStatus.STARTING, DagsterRunStatus.STARTED]
    reaped = []
    for run in instance.get_runs(RunsFilter(statuses=active, tags={"mesh/launched_by": "mesh run"})):
        pid = local_runner_pid(run.tags)
        if pid is None or process_alive(pid):
            continue
        instance.report_run_failed(run, f"its `mesh run` process (pid {pid}) died before the run ended")
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        reaped.append(run.run_id)
    return reaped


class _Progress:
    """Streams a run's notable events as Dagster stores them (an instance event listener, called in
    the run's own thread: no polling) and keeps each step's duration."""

    def __init__(self, emit: Callable[[str], None]) -> None:
        self.emit = emit
        self.started: dict[str, float] = {}
        self.durations: dict[str, float] = {}

    def __call__(self, entry: Any) -> None:
        with contextlib.suppress(OSError):  # a closed terminal must not fail the run
            self._show(entry)

    def _show(self, entry: Any) -> None:
        from dagster import AssetCheckSeverity, DagsterEventType

        event = entry.dagster_event
        if event is None:
            return
        step = event.step_key or ""
        kind = event.event_type
        if kind == DagsterEventType.STEP_START:
            self.started[step] = entry.timestamp
            self.emit(f"  ▶ {step}")
        elif kind in (DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE):
            self.durations[step] = entry.timestamp - self.started.get(step, entry.timestamp)
            mark = "✔" if kind == DagsterEventType.STEP_SUCCESS else "✘"
            self.emit(f"  {mark} {step} ({self.durations[step]:.1f}s)")
        elif kind == DagsterEventType.ASSET_MATERIALIZATION:
            self.emit(f"    materialized {event.asset_key.to_user_string()}")
        elif kind == DagsterEventType.ASSET_CHECK_EVALUATION:
            data = event.event_specific_data
            if not data.passed:
                warn = data.severity == AssetCheckSeverity.WARN
                what = "warning (did not block)" if warn else "check failed"
                self.emit(f"    {what}: {data.asset_key.to_user_string()} {data.check_name}")


def _product_results(mesh: Mesh, domain: str, run_id: str, durations: dict[str, float]) -> list[ProductResult]:
    store, results = ProductStore(mesh.project.home), []
    for product in mesh.descriptors[domain].products:
        status = store.status(domain, product.name) or {}
        if status.get("run_id") != run_id:
            results.append(ProductResult(domain, product.name, "not run"))
            continue
        step = next((s for s in durations if s in (f"{domain}__{product.name}", f"{domain}__dbt")), None)
        current = store.current(domain, product.name)
        seconds = durations.get(step) if step else None
        results.append(product_result(domain, product.name, status, seconds, current.version if current else None))
    return results


def _blocked_by_checks(event: Any) -> bool:
    """A step that failed because blocking checks failed (`Audit.failure`): an expected outcome,
    reported from the products' results rather than as an error."""
    failure = event.step_failure_data
    user = failure.user_failure_data if failure else None
    return user is not None and "blocking_failures" in (user.metadata or {})


def _failure_message(event: Any) -> str:
    error = event.step_failure_data.error if event.step_failure_data else None
    message = str(error.message if error else "step failed").strip()
    return message.removeprefix("dagster._core.definitions.events.Failure: ")


def record_failures(log_path: Path, failures: list[Any]) -> None:
    """Each failed step's error with its stack trace, appended to the run's log file."""
    with open(log_path, "a") as log:
        for event in failures:
            error = event.step_failure_data.error if event.step_failure_data else None
            log.write(
                f"\n--- step {event.step_key} failed ---\n{error.to_string() if error else 'no error recorded'}\n"
            )


def run_domain(mesh: Mesh, domain: str, instance: Any, emit: Callable[[str], None]) -> DomainResult:
    import uuid

    from mesh_platform.defs.domain import build_domain, definitions_from

    started = time.monotonic()
    try:
        job = definitions_from([build_domain(mesh, domain)]).resolve_job_def(domain)
    except MeshDefinitionError as exc:
        return DomainResult(domain, "invalid", error="\n".join(str(p) for p in mesh.located(exc.problems)))
    except Exception as exc:  # a definition Dagster refuses: report it, let other domains run
        return DomainResult(domain, "invalid", error=f"{type(exc).__name__}: {exc}")
    run_id = str(uuid.uuid4())
    emit(f"{domain}: run {run_id}")
    progress = _Progress(emit)
    instance.add_event_listener(run_id, progress)
    log_path = mesh.project.home.path / "logs" / f"{domain}-{run_id}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    # tool output (dbt's log lines) goes to a file; the terminal gets progress and the summary
    with open(log_path, "w") as log, contextlib.redirect_stdout(log):
        result = job.execute_in_process(
            instance=instance, raise_on_error=False, run_id=run_id, run_config=QUIET_CONSOLE, tags=_runner_tags()
        )
    failures = [e for e in result.all_events if e.is_step_failure]
    record_failures(log_path, failures)
    errors = [_failure_message(e) for e in failures if not _blocked_by_checks(e)]
    if not result.success and not failures:
        errors.append("the run failed before any step ran")
    return DomainResult(
        domain,
        "success" if result.success else "failure",
        run_id,
        time.monotonic() - started,
        "\n".join(errors),
        _product_results(mesh, domain, run_id, progress.durations),
        str(log_path),
    )
