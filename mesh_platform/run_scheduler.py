"""`mesh run --jobs N`: domains run producers first, at most N at a time.

A run of several domains imports the libraries once (`warm.warm_up`: dbt's while the domains before
the first dbt domain run) and runs each domain in a process forked from this one, so the children
start warm, independent domains overlap with N > 1
(patients, pharmacy and scheduling; then patient_360 and site_operations), and each domain's
memory goes back to the system when its process ends. The domains running at once split DuckDB's
memory limit between them, so the run as a whole stays within it. A single domain runs in this
process.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from mesh_platform.mesh import Mesh
from mesh_platform.project import MeshHome
from mesh_platform.runner import DomainResult, open_instance, reap_orphaned_runs, run_domain
from mesh_platform.warehouse import MEMORY_LIMIT_ENV, memory_limit_bytes, memory_limit_share

Emit = Callable[[str], None]


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
    makes DuckDB spill. Measured on 2 cores with the 1GB default, one job against two: a warm
    scale-1 run (about 160 MB of input) 28.9 s against 21.3 s, scale 5 (812 MB) 84.9 s against 79.2 s,
    scale 20 (about 3.3 GB) 302 s against 333 s.
    """
    return 2 if input_bytes(home) < memory_limit_bytes() else 1


def forks(domains: int) -> bool:
    """Whether each domain runs in a process of its own. A single domain runs in this one. Several
    run in forked children even one at a time: a child's memory (DuckDB's buffers, which its
    allocator keeps after the database closes) goes back to the system when it exits, so a long
    run's peak is one domain's, not the domains' added up. At scale 20 with one job, everything in
    one process peaked at 2.1 GB RSS, the last domain on top of what the others had left."""
    return domains > 1


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


@dataclass
class _Child:
    """A domain's run in a forked process, which sends its DomainResult back on a pipe."""

    domain: str
    process: Any
    results: Any  # the pipe's read end

    @classmethod
    def start(cls, mesh: Mesh, domain: str, instance: Any, emit: Emit, share: dict[str, str]) -> _Child:
        import multiprocessing

        context = multiprocessing.get_context("fork")  # the parent's imports, not a fresh interpreter
        receive, send = context.Pipe(duplex=False)

        def child() -> None:
            os.setpgid(0, 0)  # Ctrl-C reaches the parent, which passes it on once
            os.environ.update(share)  # this domain's part of DuckDB's memory limit
            receive.close()
            try:
                result = run_domain(mesh, domain, instance, emit)
            except BaseException as exc:
                result = DomainResult(domain, "failure", error=f"{type(exc).__name__}: {exc}")
            send.send(result)
            sys.stdout.flush()
            sys.stderr.flush()

        process = context.Process(target=child, name=f"mesh run {domain}", daemon=False)
        process.start()
        send.close()
        return cls(domain, process, receive)

    def collect(self, instance: Any) -> DomainResult:
        try:
            result = self.results.recv()
        except EOFError:  # the process died before reporting (killed, out of memory)
            self.process.join()
            reap_orphaned_runs(instance)
            result = DomainResult(
                self.domain, "failure", error=f"its run process died (exit code {self.process.exitcode})"
            )
        self.results.close()
        self.process.join()
        return result

    def interrupt(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.process.pid, signal.SIGINT)


class _Scheduler:
    def __init__(self, mesh: Mesh, selected: list[str], instance: Any, emit: Emit, jobs: int) -> None:
        self.mesh, self.instance, self.emit, self.jobs = mesh, instance, emit, jobs
        # topological order first (the mesh's), then the longest chain of waiting consumers first
        ordered = [d for d in mesh.domains if d in selected] + [d for d in selected if d not in mesh.descriptors]
        waits = consumer_counts(mesh, ordered)
        self.ordered = ordered
        self.by_priority = sorted(ordered, key=lambda d: -waits[d])
        self.results: dict[str, DomainResult] = {}
        self.share = {MEMORY_LIMIT_ENV: memory_limit_share(jobs)}
        self.running: dict[str, _Child] = {}
        self.forks = forks(len(ordered))
        self.warm: Callable[[], None] | None = None
        self.warm_for: Collection[str] = ()

    def finish(self, result: DomainResult) -> None:
        self.results[result.domain] = result

    def failed(self) -> set[str]:
        return {d for d, r in self.results.items() if r.status != "success"}

    def step(self, domain: str) -> None:
        """Settle or start `domain` if it can be; leave it pending if it waits on a producer or a job."""
        descriptor = self.mesh.descriptors.get(domain)
        if descriptor is None:
            problems = "\n".join(str(p) for p in self.mesh.problems_for(domain))
            return self.finish(DomainResult(domain, "invalid", error=problems))
        upstream = descriptor.consumed_domains & set(self.ordered) - {domain}
        if upstream_failed := sorted(upstream & self.failed()):
            names = ", ".join(upstream_failed)
            self.emit(f"{domain}: skipped, upstream {names} failed")
            return self.finish(DomainResult(domain, "skipped", error=f"upstream domain(s) failed: {names}"))
        if upstream - self.results.keys() or len(self.running) >= self.jobs:
            return None
        if not self.forks:
            return self.finish(run_domain(self.mesh, domain, self.instance, self.emit))
        if domain in self.warm_for:
            self.warm_up()
        self.running[domain] = _Child.start(self.mesh, domain, self.instance, self.emit, self.share)
        return None

    def warm_up(self) -> None:
        if self.warm is not None:
            self.warm()
            self.warm = None

    def run(self, warm: Callable[[], None] | None = None, warm_for: Collection[str] = ()) -> list[DomainResult]:
        """Run every domain. `warm` runs once in this process before any domain of `warm_for` is
        forked: while other domains run, as soon as one of those is next in line."""
        from multiprocessing.connection import wait

        self.warm, self.warm_for = warm, warm_for
        try:
            while len(self.results) < len(self.ordered):
                pending = [d for d in self.by_priority if d not in self.results and d not in self.running]
                for domain in pending:
                    self.step(domain)
                if not self.running and not self.results.keys() & set(pending):  # they wait on each other
                    for domain in pending:
                        self.finish(DomainResult(domain, "invalid", error="its domains consume each other in a cycle"))
                waiting = [d for d in pending if d not in self.results and d not in self.running]
                if self.running and waiting and waiting[0] in warm_for:
                    self.warm_up()
                if self.running:
                    ready = wait([child.results for child in self.running.values()])
                    for child in [c for c in self.running.values() if c.results in ready]:
                        self.finish(self.running.pop(child.domain).collect(self.instance))
        except BaseException:
            for child in self.running.values():
                child.interrupt()
            for child in self.running.values():
                child.process.join()
            if self.running:  # their runs end as failed now, not at the next `mesh run`
                reap_orphaned_runs(self.instance)
            raise
        return [self.results[d] for d in self.ordered]


def run_mesh(mesh: Mesh, domains: list[str] | None, emit: Emit, jobs: int | None = None) -> list[DomainResult]:
    """Run the selected domains (all by default), producers before their consumers, `jobs` at a
    time (`default_jobs` if None); a domain whose producer failed is skipped (it keeps reading the
    last published versions)."""
    selected = domains or mesh.project.domain_names()
    # never more jobs than domains: a single domain runs in this process, with the whole memory limit
    jobs = max(1, min(jobs or default_jobs(mesh.project.home), len(selected)))
    with open_instance(mesh) as instance:
        scheduler = _Scheduler(mesh, selected, instance, emit, jobs)
        if not scheduler.forks:
            return scheduler.run()
        from mesh_platform.warm import warm_up

        # imported once here, shared by every forked domain: what every domain uses before the
        # first fork; dbt (about 1.5 s) while the domains before the first dbt domain run
        warm_up(dbt=False)
        with_dbt = [d for d in selected if mesh.project.dbt_project_dir(d)]
        return scheduler.run(warm=lambda: warm_up(libraries=False), warm_for=with_dbt)
