"""Loads the domains' jobs for `mesh run` in a background thread, ahead of their turn.

A run is created from its job loaded in the `mesh run` process (`upstream.dagster_runs.
load_linked_job`). Loading a code location costs from a fraction of a second to several seconds
(the first dbt domain imports dagster-dbt and reads its manifest), and loaded one after the other
between runs, those seconds would sit on the mesh's critical path: a consumer would wait for its
producer's run and then for its own load. This loader loads every selected domain, in the order
`mesh run` will need them, while runs are in flight; `get` returns a domain's job (or the error
its load raised) as soon as it is loaded, and moves a domain that is needed now to the front.

One thread loads, one location at a time: loading imports the locations' `definitions.py`, and
two imports of code locations at once would race in `sys.modules`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

T = TypeVar("T")


class JobLoader(Generic[T]):
    """`load(domain)` for each domain of `order`: in the calling thread while `start` has not been
    called, then in a daemon thread ahead of `get`."""

    def __init__(self, load: Callable[[str], T], order: Iterable[str]) -> None:
        self._load = load
        self._queue = list(order)
        self._loading: str | None = None  # the domain being loaded, by whichever thread
        self._done: dict[str, T | BaseException] = {}
        self._changed = threading.Condition()
        self._stopped = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Load the domains not asked for yet in the background (once; later calls do nothing)."""
        with self._changed:
            if self._thread is None and not self._stopped:
                self._thread = threading.Thread(target=self._work, name="mesh-job-loader", daemon=True)
                self._thread.start()

    def _take(self, domain: str | None) -> str | None:
        """Claim `domain` (the queue's first if None) for loading; None when there is none to load."""
        with self._changed:
            while self._loading is not None:  # one load at a time
                if self._loading == domain:
                    return None
                self._changed.wait()
            if domain is None and not self._stopped:
                domain = self._queue[0] if self._queue else None
            if domain is None or domain in self._done:
                return None
            if domain in self._queue:
                self._queue.remove(domain)
            self._loading = domain
            return domain

    def _load_one(self, domain: str) -> None:
        try:
            loaded: T | BaseException = self._load(domain)
        except BaseException as exc:  # even `sys.exit()` in a definitions.py: `get` reports it
            loaded = exc
        with self._changed:
            self._done[domain] = loaded
            self._loading = None
            self._changed.notify_all()

    def _work(self) -> None:
        while (domain := self._take(None)) is not None:
            self._load_one(domain)

    def get(self, domain: str) -> T:
        """The job of `domain`: loaded already, being loaded, or loaded now in this thread (ahead of
        what the background thread would load next); re-raises its load's error."""
        with self._changed:
            if self._stopped and domain not in self._done:
                raise RuntimeError("the job loader was stopped")
            if domain in self._queue:  # next, whichever thread takes it
                self._queue.remove(domain)
                self._queue.insert(0, domain)
        if self._take(domain) == domain:
            self._load_one(domain)
        with self._changed:
            while domain not in self._done:
                self._changed.wait()
            loaded = self._done[domain]
        if isinstance(loaded, BaseException):
            raise loaded
        return loaded

    def loaded(self, domain: str) -> T | None:
        """The job of `domain` if it has loaded without error; None otherwise (never waits)."""
        with self._changed:
            loaded = self._done.get(domain)
        return None if loaded is None or isinstance(loaded, BaseException) else loaded

    def stop(self, timeout: float) -> None:
        """Load nothing more; wait up to `timeout` seconds for the load in progress to end."""
        with self._changed:
            self._stopped = True
            self._queue.clear()
        if self._thread is not None and self._thread.is_alive():
            self._thread.join(timeout)
