"""`mesh run` loads the domains' jobs ahead of their runs: in order, the one needed now first, one at
a time, errors handed to whoever asks, nothing more after stop."""

from __future__ import annotations

import threading
import time

import pytest

from mesh_platform.orchestration.job_loader import JobLoader


class Recorder:
    """A load that records its calls; `gate` holds a domain's load until it is set."""

    def __init__(self, gates: dict[str, threading.Event] | None = None, fail: str | None = None) -> None:
        self.calls: list[tuple[str, str]] = []  # (domain, thread name)
        self.gates = gates or {}
        self.fail = fail
        self.active = 0
        self.most_active = 0
        self.lock = threading.Lock()

    def __call__(self, domain: str) -> str:
        with self.lock:
            self.calls.append((domain, threading.current_thread().name))
            self.active += 1
            self.most_active = max(self.most_active, self.active)
        try:
            if domain in self.gates:
                assert self.gates[domain].wait(10)
            time.sleep(0.01)
            if domain == self.fail:
                raise ValueError(f"{domain}/definitions.py is broken")
            return f"job of {domain}"
        finally:
            with self.lock:
                self.active -= 1


def test_before_start_each_domain_loads_in_the_asking_thread_and_only_it() -> None:
    load = Recorder()
    loader = JobLoader(load, ["a", "b", "c"])
    assert loader.get("b") == "job of b"
    assert load.calls == [("b", threading.current_thread().name)]
    loader.stop(5)


def test_after_start_the_rest_loads_in_the_background_in_order_once_each() -> None:
    load = Recorder()
    loader = JobLoader(load, ["a", "b", "c"])
    assert loader.get("a") == "job of a"
    loader.start()
    deadline = time.monotonic() + 10
    while len(load.calls) < 3 and time.monotonic() < deadline:  # nobody asks: the thread loads them
        time.sleep(0.01)
    assert load.calls[1:] == [("b", "mesh-job-loader"), ("c", "mesh-job-loader")]
    assert [loader.get(d) for d in ("c", "b")] == ["job of c", "job of b"]
    assert len(load.calls) == 3  # loaded once each
    loader.stop(5)


def test_a_domain_asked_for_jumps_the_queue_and_loads_happen_one_at_a_time() -> None:
    gate = threading.Event()
    load = Recorder(gates={"a": gate})
    loader = JobLoader(load, ["a", "b", "c", "d"])
    loader.start()
    while not load.calls:  # the background thread is inside a's load
        time.sleep(0.01)
    got: list[str] = []
    asker = threading.Thread(target=lambda: got.append(loader.get("d")))
    asker.start()
    time.sleep(0.1)
    gate.set()
    asker.join(10)
    assert got == ["job of d"]
    assert [d for d, _ in load.calls][:2] == ["a", "d"]  # d before b and c, which were queued first
    assert load.most_active == 1
    loader.stop(5)


def test_a_broken_location_is_raised_to_the_asker_and_the_others_still_load() -> None:
    loader = JobLoader(Recorder(fail="b"), ["a", "b", "c"])
    loader.start()
    with pytest.raises(ValueError, match=r"b/definitions\.py is broken"):
        loader.get("b")
    assert loader.get("c") == "job of c"
    loader.stop(5)


def test_stop_loads_nothing_more_and_waits_for_the_load_in_progress() -> None:
    gate = threading.Event()
    load = Recorder(gates={"a": gate})
    loader = JobLoader(load, ["a", "b", "c"])
    loader.start()
    while not load.calls:
        time.sleep(0.01)
    threading.Timer(0.2, gate.set).start()
    loader.stop(10)
    assert [d for d, _ in load.calls] == ["a"]
    with pytest.raises(RuntimeError, match="stopped"):
        loader.get("b")
