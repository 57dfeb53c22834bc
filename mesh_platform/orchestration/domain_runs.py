"""`mesh run`: one Dagster run per selected domain, submitted through the instance, producers first.

Each domain's run is a run of the domain's job, linked to its code location (the location of
`workspace.yaml` named after the domain), as a run launched from the UI is: it is listed with the
job's runs and can be re-executed from the UI. It is submitted through the instance
(`submit_run`: the instance's run coordinator, then its run launcher), so Dagster executes it with
the job's executor, tags and pools, in the run worker the launcher starts (in the dev instance a
warm one, `launcher.py`; in prod the daemon dequeues it). This module only decides when to submit
each run and waits for it: a domain is submitted once the runs of the domains it consumes have
succeeded (skipped if one failed), at most `jobs` runs at a time; progress is read from the events
each run stores, and the report from what the run recorded (`run_report`).

A domain's run is created ahead of its turn, between polls, once the domains it consumes are all
running or done (`DomainRuns.prepare`): when they succeed it is only submitted, so the time Dagster
takes to create a run (its execution plan, a planned event per asset and check: 0.15-0.5 s) is not
spent between a producer's end and its consumer's start. A run created ahead whose producer then
fails, or any run that `mesh run` leaves unsubmitted (Ctrl-C while it was created ahead, being
created or being submitted), is deleted: it never started. Each carries the
tag `mesh/prepared_by` (`<pid>@<host>`), so that one left by a `mesh run` that was killed is
deleted by the next `mesh run` (`reap_orphaned_runs`).

The runs in flight split DuckDB's memory limit between them: each run carries its share as the tag
`mesh/duckdb_memory_limit`, which its steps read (`warehouse.memory_limit`).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

from mesh_platform.descriptor.problems import MeshDefinitionError
from mesh_platform.orchestration.ctrl_c import CtrlC, deferred_ctrl_c
from mesh_platform.orchestration.job_loader import JobLoader
from mesh_platform.orchestration.process_health import local_pid, local_runner_pid, process_alive
from mesh_platform.orchestration.run_report import DomainResult, ProductResult, product_result
from mesh_platform.orchestration.run_worker_server import prestart
from mesh_platform.project.dagster_instance import mesh_env
from mesh_platform.project.locations import MeshHome
from mesh_platform.project.mesh import Mesh
from mesh_platform.storage.duckdb_warehouse import MEMORY_LIMIT_TAG, memory_limit_bytes, memory_limit_share
from mesh_platform.storage.product_store import ProductStore

if TYPE_CHECKING:
    from mesh_platform.upstream.dagster_runs import LinkedJob

Emit = Callable[[str], None]
LAUNCHED_BY = {"mesh/launched_by": "mesh run"}
PREPARED_BY = "mesh/prepared_by"
WORKSPACE = "workspace.yaml"  # one code location per domain
POLL_S = 0.2
HEALTH_EVERY_S = 2.0
# prod: a queued run waits for dagster-daemon. One that has not reported for DAEMON_SILENT_S is not
# running (it reports every 30 s); after QUEUED_HINT_S in the queue without one, `mesh run` says so,
# and after QUEUED_WITHOUT_DAEMON_S it gives up. A daemon started with `mesh run` may take minutes
# on a loaded machine to load its code locations and report for the first time.
DAEMON_SILENT_S = 90.0
QUEUED_HINT_S = 30.0
QUEUED_WITHOUT_DAEMON_S = 300.0
CANCEL_WAIT_S = 60.0
LOADER_STOP_WAIT_S = 30.0  # a location's load in progress when `mesh run` ends (or Ctrl-C)
Loader: TypeAlias = "JobLoader[LinkedJob]"


def input_bytes(home: MeshHome) -> int:
    """The size of what a run reads: the source extracts and the landing folder."""
    total = 0
    for folder in (home.sources, home.landing):
        for parent, _, files in os.walk(folder):
            for name in files:
                with contextlib.suppress(OSError):
                    total += os.stat(os.path.join(parent, name)).st_size
    return total


def default_jobs(home: MeshHome) -> int:
    """Two domains at a time while the run's input is smaller than DuckDB's memory limit, else one.

    Small runs are mostly fixed costs per domain (a Dagster run, dbt's invocation, GX), which two
    processes overlap. Large runs are SQL, which already uses every core, and half the memory limit
    makes DuckDB spill (figures in docs/performance.md).
    """
    return 2 if input_bytes(home) < memory_limit_bytes() else 1


def topological(mesh: Mesh, selected: list[str]) -> list[str]:
    """The selected domains in the mesh's order, producers first; unknown ones last."""
    return [d for d in mesh.domains if d in selected] + [d for d in selected if d not in mesh.descriptors]


def submission_order(mesh: Mesh, selected: list[str]) -> list[str]:
    """The order runs are submitted in when slots are free: the longest chain of waiting consumers
    first (a producer has more than any of its consumers, so producers still come first)."""
    ordered = topological(mesh, selected)
    waits = consumer_counts(mesh, ordered)
    return sorted(ordered, key=lambda d: -waits[d])


def consumer_counts(mesh: Mesh, selected: list[str]) -> dict[str, int]:
    """How many selected domains wait, directly or not, on each domain: the longest waits go first."""
    consumers: dict[str, set[str]] = {d: set() for d in selected}
    for domain in selected:
        descriptor = mesh.descriptors.get(domain)
        for upstream in descriptor.consumed_domains if descriptor else ():
            if upstream in consumers and upstream != domain:
                consumers[upstream].add(domain)

    def reach(domain: str, seen: set[str]) -> set[str]:
        for consumer in consumers[domain] - seen:
            seen.add(consumer)
            reach(consumer, seen)
        return seen

    return {d: len(reach(d, set())) for d in selected}


@contextlib.contextmanager
def open_instance(mesh: Mesh) -> Iterator[Any]:
    """The Dagster instance of MESH_HOME. Its SQLite storage is created on first use; two `mesh run`
    started at the same moment would both try to create it, so creation holds a file lock."""
    from dagster import DagsterInstance

    mesh.project.home.ensure()
    os.environ["DAGSTER_HOME"] = str(mesh.project.home.dagster_home)
    with open(mesh.project.home.dagster_home / ".init.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        instance = DagsterInstance.get()
        reap_orphaned_runs(instance)
        fcntl.flock(lock, fcntl.LOCK_UN)
    with instance:
        yield instance


def reap_orphaned_runs(instance: Any) -> list[str]:
    """Runs whose worker process on this machine died (killed, out of memory) stay STARTED and keep
    their pool slot, so every later run of that domain would wait for them. Mark them failed and
    free their slots: what run monitoring does while the daemon runs, done here when it does not.
    Runs a killed `mesh run` created ahead and never submitted are deleted."""
    from dagster import DagsterRunStatus, RunsFilter

    for run in instance.get_runs(RunsFilter(statuses=[DagsterRunStatus.NOT_STARTED], tags=LAUNCHED_BY)):
        pid, _, host = run.tags.get(PREPARED_BY, "").partition("@")
        creator = local_pid(pid, host)
        if creator is not None and not process_alive(creator):
            instance.delete_run(run.run_id)
    active = [DagsterRunStatus.STARTING, DagsterRunStatus.STARTED, DagsterRunStatus.CANCELING]
    reaped = []
    for run in instance.get_runs(RunsFilter(statuses=active)):
        pid = local_runner_pid(run.tags)
        if pid is None or process_alive(pid):
            continue
        if fail_dead_run(instance, run, f"its run worker (pid {pid}) died before the run ended"):
            reaped.append(run.run_id)
    return reaped


def fail_dead_run(instance: Any, run: Any, why: str) -> bool:
    """Mark `run`, whose worker is gone, failed (cancelled if it was being cancelled) and free its
    slots; False if it ended meanwhile. A worker stores its run's end and then exits, so a run read
    before its worker was found gone may have ended since: it is read again (as Dagster's run
    monitoring does), and a dead worker writes nothing more."""
    current = instance.get_run_by_id(run.run_id)
    if current is None or current.is_finished:
        return False
    if current.status.value == "CANCELING":
        instance.report_run_canceled(current, message=why)
    else:
        instance.report_run_failed(current, why)
    instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
    return True


class Progress:
    """A run's notable events, shown as they are stored, and each step's duration."""

    def __init__(self, emit: Emit) -> None:
        self.emit = emit
        self.started: dict[str, float] = {}
        self.durations: dict[str, float] = {}
        self.failures: list[Any] = []  # STEP_FAILURE events

    def show(self, entry: Any) -> None:
        with contextlib.suppress(OSError):  # a closed terminal must not stop the wait
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
            if kind == DagsterEventType.STEP_FAILURE:
                self.failures.append(event)
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
        if product.sunset_passed():
            continue  # an older major past its sunset: no longer built (`mesh validate` says so)
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
    """The step's error and, when it wraps another (retries exhausted: the last attempt's error),
    the innermost one: what failed, not only that it was retried."""
    error = event.step_failure_data.error if event.step_failure_data else None
    message = str(error.message if error else "step failed").strip()
    inner = error
    while inner is not None and inner.cause is not None:
        inner = inner.cause
    if inner is not None and inner is not error:
        detail = str(inner.message).strip()
        named, _, text = detail.partition(": ")  # the error's qualified class, then its text
        if (text if named.rsplit(".", 1)[-1] == inner.cls_name else detail) not in message:
            message = f"{message}: {detail}"
    return message.removeprefix("dagster._core.definitions.events.Failure: ")


def record_failures(log_path: Path, failures: list[Any]) -> None:
    """Each failed step's error with its stack trace, appended to the run's log file."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "a") as log:
        for event in failures:
            error = event.step_failure_data.error if event.step_failure_data else None
            log.write(
                f"\n--- step {event.step_key} failed ---\n{error.to_string() if error else 'no error recorded'}\n"
            )


@dataclass
class InFlight:
    """A submitted run and what has been read of its events."""

    domain: str
    run_id: str
    started: float
    progress: Progress
    cursor: str | None = None
    checked: float = 0.0
    queued_since: float | None = None
    hinted: bool = False  # said that no daemon is running
    notes: list[str] = field(default_factory=list)  # why the run ended, when the run did not say


class DomainRuns:
    """Submits the selected domains' runs, producers first, `jobs` at a time, and waits for them."""

    def __init__(
        self,
        mesh: Mesh,
        by_priority: list[str],
        instance: Any,
        emit: Emit,
        jobs: int,
        loader: Loader,
        ctrl_c: CtrlC | None = None,
    ) -> None:
        """`by_priority`: the selected domains in `submission_order`; `ctrl_c`: checked between polls."""
        self.mesh, self.instance, self.emit, self.jobs, self.loader = mesh, instance, emit, jobs, loader
        self.ctrl_c = ctrl_c or CtrlC()
        self.ordered = topological(mesh, by_priority)  # the report's order
        self.by_priority = by_priority
        self.results: dict[str, DomainResult] = {}
        self.running: dict[str, InFlight] = {}
        self.prepared: dict[str, str] = {}  # domain -> its run, created ahead and not yet submitted
        self.created: list[str] = []  # every run this `mesh run` created (or began to create)
        self.tags = {
            **LAUNCHED_BY,
            PREPARED_BY: f"{os.getpid()}@{socket.gethostname()}",
            **({MEMORY_LIMIT_TAG: memory_limit_share(jobs)} if jobs > 1 else {}),
        }

    def finish(self, result: DomainResult) -> None:
        self.results[result.domain] = result
        if (run_id := self.prepared.pop(result.domain, None)) is not None:  # it will not run: skipped
            self.instance.delete_run(run_id)

    def producers(self, domain: str) -> set[str]:
        """The domains of this run whose products `domain` consumes."""
        descriptor = self.mesh.descriptors.get(domain)
        return (descriptor.consumed_domains if descriptor else set()) & set(self.ordered) - {domain}

    def failed(self) -> set[str]:
        return {d for d, r in self.results.items() if r.status != "success"}

    def step(self, domain: str) -> None:
        """Settle or submit `domain` if it can be; leave it pending if it waits on a producer or a slot."""
        descriptor = self.mesh.descriptors.get(domain)
        if descriptor is None:
            problems = "\n".join(str(p) for p in self.mesh.problems_for(domain))
            return self.finish(DomainResult(domain, "invalid", error=problems))
        upstream = self.producers(domain)
        if upstream_failed := sorted(upstream & self.failed()):
            names = ", ".join(upstream_failed)
            self.emit(f"{domain}: skipped, upstream {names} failed")
            return self.finish(DomainResult(domain, "skipped", error=f"upstream domain(s) failed: {names}"))
        if upstream - self.results.keys() or len(self.running) >= self.jobs:
            return None
        self.submit(domain)
        return None

    def prepare(self) -> None:
        """Create the run of one domain ahead of its turn: the first, in submission order, whose job
        is loaded and whose producers are all running or have succeeded; at most one per slot (with
        `--jobs 1` only the next run waits, shown as "Not started" in the UI)."""
        if len(self.prepared) >= self.jobs:
            return
        ready = self.running.keys() | (self.results.keys() - self.failed())
        for domain in self.by_priority:
            if domain in self.results or domain in self.running or domain in self.prepared:
                continue
            linked = self.loader.loaded(domain) if self.producers(domain) <= ready else None
            if linked is not None:
                self.prepared[domain] = self.create(linked)
                return

    def create(self, linked: Any) -> str:
        """A new NOT_STARTED run of `linked`, recorded before it is created: a Ctrl-C at any point
        leaves no run behind that `delete_unstarted` does not find."""
        from mesh_platform.upstream.dagster_runs import create_linked_run

        run_id = str(uuid.uuid4())
        self.created.append(run_id)
        create_linked_run(self.instance, linked, run_id, self.tags)
        return run_id

    def submit(self, domain: str) -> None:
        from mesh_platform.upstream.dagster_runs import CodeLocationNotFound, submit_run

        started = time.monotonic()
        if (run_id := self.prepared.pop(domain, None)) is None:
            try:
                linked = self.loader.get(domain)
            except MeshDefinitionError as exc:
                error = "\n".join(str(p) for p in self.mesh.located(exc.problems))
                return self.finish(DomainResult(domain, "invalid", error=error))
            except CodeLocationNotFound as exc:
                return self.finish(DomainResult(domain, "invalid", error=str(exc)))
            except Exception as exc:  # a definition Dagster refuses: report it, let other domains run
                return self.finish(DomainResult(domain, "invalid", error=f"{type(exc).__name__}: {exc}"))
            run_id = self.create(linked)
        self.ctrl_c.check()
        self.emit(f"{domain}: run {run_id}")
        flight = InFlight(domain, run_id, started, Progress(self.emit))
        self.running[domain] = flight
        try:
            submit_run(self.instance, run_id)
        except Exception as exc:  # the launcher could not start it; the instance marked the run failed
            flight.notes.append(f"the run could not be launched: {type(exc).__name__}: {exc}")
        return None

    def poll(self, flight: InFlight) -> DomainResult | None:
        """Show the run's new events; its result once it has ended."""
        from dagster import DagsterRunStatus

        while True:
            page = self.instance.get_records_for_run(flight.run_id, cursor=flight.cursor, limit=1000)
            for record in page.records:
                flight.progress.show(record.event_log_entry)
            flight.cursor = page.cursor
            if not page.has_more:
                break
        run = self.instance.get_run_by_id(flight.run_id)
        if run.is_finished:
            return self.result(flight, run)
        now = time.monotonic()
        if run.status == DagsterRunStatus.QUEUED:
            flight.queued_since = flight.queued_since or now
            self.check_queue(flight, now - flight.queued_since)
        elif now - flight.checked > HEALTH_EVERY_S:
            flight.checked = now
            # killed, out of memory: no one else will end the run (unless it ended since it was read)
            if (why := self.dead_worker(run)) and fail_dead_run(self.instance, run, why):
                flight.notes.append(why)
        return None

    def dead_worker(self, run: Any) -> str | None:
        """Why the run's worker is gone, when the launcher can tell that it is; None otherwise."""
        launcher = self.instance.run_launcher
        if not launcher.supports_check_run_worker_health:
            return None
        health = launcher.check_run_worker_health(run)
        return (health.msg or "its run worker died") if health.status.value == "FAILED" else None

    def check_queue(self, flight: InFlight, queued_s: float) -> None:
        """A run queued while no dagster-daemon reports: say so, then give up on it."""
        if queued_s < QUEUED_HINT_S or self.daemon_running():
            return
        start = "start `dagster-daemon run -w workspace.yaml` for this instance"
        if queued_s < QUEUED_WITHOUT_DAEMON_S:
            if not flight.hinted:
                flight.hinted = True
                self.emit(f"{flight.domain}: queued, and no dagster-daemon is running to launch it")
                self.emit(f"  {start} (waiting up to {QUEUED_WITHOUT_DAEMON_S:.0f} s)")
            return
        self.instance.run_coordinator.cancel_run(flight.run_id)
        flight.notes.append(f"the run waited in the queue and no dagster-daemon is running to launch it ({start})")

    def daemon_running(self) -> bool:
        beats = self.instance.get_daemon_heartbeats()
        return any(time.time() - beat.timestamp < DAEMON_SILENT_S for beat in beats.values())

    def result(self, flight: InFlight, run: Any) -> DomainResult:
        from mesh_platform.orchestration.launcher import LOG_TAG

        failures = flight.progress.failures
        log = Path(run.tags[LOG_TAG]) if run.tags.get(LOG_TAG) else None
        if log is not None and failures:
            record_failures(log, failures)
        errors = [_failure_message(e) for e in failures if not _blocked_by_checks(e)]
        success = run.status.value == "SUCCESS"
        if not success and not failures:
            errors += flight.notes or [f"the run ended {run.status.value.lower()} before any step failed"]
        return DomainResult(
            flight.domain,
            "success" if success else "failure",
            flight.run_id,
            time.monotonic() - flight.started,
            "\n".join(errors),
            _product_results(self.mesh, flight.domain, flight.run_id, flight.progress.durations),
            str(log) if log else None,
        )

    def run(self) -> list[DomainResult]:
        try:
            while len(self.results) < len(self.ordered):
                self.ctrl_c.check()
                pending = [d for d in self.by_priority if d not in self.results and d not in self.running]
                for domain in pending:
                    self.ctrl_c.check()  # loading a job can take seconds: none is launched after Ctrl-C
                    self.step(domain)
                # the first runs are loaded and created in this thread, at full speed; the other
                # domains' jobs then load while runs are in flight
                self.loader.start()
                if not self.running and not self.results.keys() & set(pending):  # they wait on each other
                    for domain in pending:
                        self.finish(DomainResult(domain, "invalid", error="its domains consume each other in a cycle"))
                ended = False
                for flight in list(self.running.values()):
                    if (result := self.poll(flight)) is not None:
                        del self.running[flight.domain]
                        self.finish(result)
                        ended = True
                if self.running and not ended:  # a run that ended frees a slot: submit at once
                    self.prepare()
                    time.sleep(POLL_S)
        except BaseException:
            self.cancel_running()
            raise
        finally:
            self.delete_unstarted()
        return [self.results[d] for d in self.ordered]

    def delete_unstarted(self) -> None:
        """Runs this `mesh run` created and never launched (Ctrl-C or an error came while one was
        created ahead, being created, or being submitted): they never started, so they go."""
        from dagster import DagsterRunStatus, RunsFilter

        if not self.created:
            return
        unstarted = RunsFilter(run_ids=self.created, statuses=[DagsterRunStatus.NOT_STARTED])
        for run in self.instance.get_runs(unstarted):
            with contextlib.suppress(Exception):  # one that cannot be deleted must not keep the others
                self.instance.delete_run(run.run_id)

    def cancel_running(self) -> None:
        """Ctrl-C: end every run in flight as cancelled (its worker is signalled) and wait for it."""
        for flight in self.running.values():
            with contextlib.suppress(Exception):
                self.instance.run_coordinator.cancel_run(flight.run_id)
        deadline = time.monotonic() + CANCEL_WAIT_S
        for flight in self.running.values():
            while time.monotonic() < deadline:
                run = self.instance.get_run_by_id(flight.run_id)
                if run is None or run.is_finished:
                    break
                # a worker stopped before Dagster had taken over its signals never ends its run
                if why := self.dead_worker(run):
                    fail_dead_run(self.instance, run, why)  # cancelled: the run is being cancelled
                    break
                time.sleep(0.2)
        reap_orphaned_runs(self.instance)


def run_mesh(mesh: Mesh, domains: list[str] | None, emit: Emit, jobs: int | None = None) -> list[DomainResult]:
    """Run the selected domains (all by default), producers before their consumers, `jobs` at a
    time (`default_jobs` if None); a domain whose producer failed is skipped (it keeps reading the
    last published versions)."""
    selected = domains or mesh.project.domain_names()
    jobs = max(1, min(jobs or default_jobs(mesh.project.home), len(selected)))
    # the dev launcher's warm server: started now if it is not up, it imports while the domains load
    cold = mesh_env() == "dev" and not prestart(mesh.project.home.dagster_home, sys.executable)
    by_priority = submission_order(mesh, selected)
    loader = job_loader(mesh, by_priority)
    if cold:  # the first run waits for the server's imports: every job loads meanwhile, in the background
        loader.start()
    with deferred_ctrl_c() as ctrl_c:
        try:
            with open_instance(mesh) as instance:
                results = DomainRuns(mesh, by_priority, instance, emit, jobs, loader, ctrl_c).run()
        finally:
            loader.stop(LOADER_STOP_WAIT_S)
        ctrl_c.check()  # it came as the last run ended, or while the instance and loader closed
        return results


def job_loader(mesh: Mesh, order: list[str]) -> Loader:
    """The selected domains' jobs, loaded from their code locations ahead of their runs."""
    from mesh_platform.upstream.dagster_runs import load_linked_job

    workspace = mesh.project.root / WORKSPACE
    return JobLoader(
        lambda domain: load_linked_job(workspace, domain, domain), [d for d in order if d in mesh.descriptors]
    )
