"""Peak memory of a process tree: the sum of its processes' proportional set sizes, sampled.

A run's work happens in run workers forked from the warm run worker server
(`mesh_platform/orchestration/run_worker_server.py`), which share the server's imported libraries
page for page until written; the server is not a child of `mesh run` once it outlives one, so the
sampler follows several roots: the command and the servers of its home. Summing RSS would count those pages once per
process; the largest single RSS (what `wait4` reports for children) would miss the others. PSS
charges each shared page to its sharers in equal parts, so the sum over the tree is what the run
takes from the machine.

Reading smaps_rollup walks the process's page tables under its memory-map lock, which slows a
process that maps and unmaps memory as fast as DuckDB does: sampling every 0.2 s made a large
`mesh run` measurably slower (docs/performance.md), so the bench samples once a second.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

PROC = Path("/proc")


def _children() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for stat in PROC.glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    return children


def tree(root: int) -> list[int]:
    children, found, todo = _children(), [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, ()))
    return found


def servers(home: Path) -> list[int]:
    """The run worker servers of a MESH_HOME (their pid files, `<home>/dagster/run_workers/*.pid`)."""
    found = []
    for pid_file in (home / "dagster" / "run_workers").glob("*.pid"):
        with contextlib.suppress(OSError, ValueError):
            found.append(int(pid_file.read_text()))
    return found


def hwm_kb(pid: int) -> int:
    with contextlib.suppress(OSError):
        for line in (PROC / str(pid) / "status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def pss_kb(pid: int) -> int:
    with contextlib.suppress(OSError):
        for line in (PROC / str(pid) / "smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    return 0


class PeakSampler:
    """Samples the summed PSS of the roots and their descendants every `interval` s while open;
    `roots` is called at each sample (a server may start during the command)."""

    def __init__(self, roots: Callable[[], Iterable[int]], interval: float = 1.0) -> None:
        self.roots, self.interval, self.peak_kb = roots, interval, 0
        self.largest_kb = 0  # the largest peak RSS of any one process (its VmHWM)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            pids = {pid for root in self.roots() for pid in tree(root)}
            self.peak_kb = max(self.peak_kb, sum(pss_kb(pid) for pid in pids))
            self.largest_kb = max([self.largest_kb, *(hwm_kb(pid) for pid in pids)])
            self._stop.wait(self.interval)

    @property
    def peak_mb(self) -> float:
        return self.peak_kb / 1024

    @property
    def largest_mb(self) -> float:
        return self.largest_kb / 1024

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


@contextlib.contextmanager
def sampling(*roots: int, home: Path | None = None, interval: float = 1.0) -> Iterator[PeakSampler]:
    """Peak memory of `roots` and, with `home`, of its run worker servers and their workers."""
    sampler = PeakSampler(lambda: [*roots, *(servers(home) if home else ())], interval)
    sampler.start()
    try:
        yield sampler
    finally:
        sampler.stop()
