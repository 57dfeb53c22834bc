"""The micro-batch path with the daemon running: latency from an event file landing to its
appointments being published, and to a consumer updated from them; throughput in events per second.

`python -m bench.stream [--scale 1] [--batches 50] [--interval 2]` (also part of `python -m bench`).
It seeds a temporary MESH_HOME, runs the whole mesh once, starts `dagster-daemon run` over the
workspace (the landing sensor launches runs, automation updates the consumers) with the home's run
worker server up (as once any run has happened), and then
- latency: writes `--batches` files, one every `--interval` seconds, and for each records when the
  published `scheduling.appointments` version first contains its appointments, and when a run of
  the consumer `patient_360.patient_journey` that started after that published it;
- throughput: drops a backlog of files at once and times until all of it is published.
Measures; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import duckdb

from devtools.appointment_feed import Batch, Feed
from devtools.process_groups import stop_process_group
from mesh_platform.orchestration.run_worker_server import ServerPaths, ensure_server
from mesh_platform.project.locations import MeshHome, MeshProject
from mesh_platform.storage.product_store import ProductStore

BIN = Path(sys.executable).parent


CONSUMER = ("patient_360", "patient_journey")


class Watcher(threading.Thread):
    """Polls the published appointments; notes when each batch's appointments first appear, and
    each new version of the consumer (when it was seen, the run that published it)."""

    def __init__(self, home: Path, token: str):
        super().__init__(daemon=True)
        self.store, self.token = ProductStore(MeshHome(home)), token
        self.visible: dict[int, float] = {}
        self.consumer: list[tuple[float, str | None]] = []
        self.stop = threading.Event()
        self.version: str | None = None
        self.consumer_version: str | None = None

    def run(self) -> None:
        while not self.stop.is_set():
            consumer = self.store.current(*CONSUMER)
            if consumer and consumer.version != self.consumer_version:
                self.consumer_version = consumer.version
                self.consumer.append((time.time(), consumer.run_id))
            published = self.store.current("scheduling", "appointments")
            if published and published.version != self.version:
                seen_at = time.time()
                self.version = published.version
                batches = duckdb.sql(
                    f"select distinct cast(split_part(appointment_id, '-', 2) as integer) "
                    f"from read_parquet('{published.path}') where appointment_id like 'L{self.token}-%'"
                ).fetchall()
                for (number,) in batches:
                    self.visible.setdefault(number, seen_at)
            self.stop.wait(0.2)

    def wait_for(self, numbers: set[int], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if numbers <= set(self.visible):
                return True
            time.sleep(0.5)
        return False


def _run(cmd: list[str], env: dict[str, str], cwd: Path) -> None:
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")


def measure(
    scale: float, batches: int, interval: float, bookings: int, backlog: int, backlog_bookings: int, work: Path
) -> dict[str, Any]:
    root = MeshProject.discover().root
    home = work / "stream-home"
    env = {**os.environ, "MESH_HOME": str(home), "MESH_PROJECT_DIR": str(root), "DAGSTER_HOME": str(home / "dagster")}
    _run([str(BIN / "mesh"), "seed", "--scale", str(scale)], env, root)
    _run([str(BIN / "mesh"), "run"], env, root)
    ensure_server(ServerPaths.of(home / "dagster", sys.executable), sys.executable)
    load_before = round(os.getloadavg()[0], 2)
    daemon = subprocess.Popen(
        [str(BIN / "dagster-daemon"), "run", "-w", "workspace.yaml"],
        env=env,
        cwd=root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        time.sleep(20)  # the daemon loads the workspace and the sensor takes its first tick
        feed = Feed(home, seed=5, bookings=bookings)
        watcher = Watcher(home, feed.token)
        watcher.start()
        landed: dict[int, Batch] = {}
        for number in range(1, batches + 1):
            landed[number] = feed.batch(number)
            time.sleep(interval)
        watcher.wait_for(set(landed), timeout=600)
        latencies = sorted(watcher.visible[n] - b.landed_at for n, b in landed.items() if n in watcher.visible)
        time.sleep(60)  # the consumer's last updates
        consumer = consumer_latencies(home, watcher, landed)

        feed.bookings = backlog_bookings
        burst = {n: feed.batch(n) for n in range(batches + 1, batches + 1 + backlog)}
        first = min(b.landed_at for b in burst.values())
        complete = watcher.wait_for(set(burst), timeout=900)
        drained = max(watcher.visible.get(n, time.time()) for n in burst)
        watcher.stop.set()
        events = sum(b.events for b in burst.values())
    finally:
        # every process of the daemon's group ended: one left writing into the home made the
        # bench's temporary directory fail to be removed
        stop_process_group(daemon, 120)
    load_after = round(os.getloadavg()[0], 2)
    result = {
        "scale": scale,
        "batches": batches,
        "batches_visible": len(latencies),
        "interval_s": interval,
        "events_per_batch": round(statistics.mean(b.events for b in landed.values())),
        "latency_p50_s": _quantile(latencies, 0.5),
        "latency_p95_s": _quantile(latencies, 0.95),
        "latency_max_s": round(max(latencies), 1) if latencies else None,
        "consumer": ".".join(CONSUMER),
        "batches_in_consumer": len(consumer),
        "consumer_latency_p50_s": _quantile(consumer, 0.5),
        "consumer_latency_p95_s": _quantile(consumer, 0.95),
        "load_before": load_before,
        "load_after": load_after,
        "backlog_files": backlog,
        "backlog_events": events,
        "backlog_complete": complete,
        "throughput_events_per_s": round(events / (drained - first), 1),
    }
    print(f"stream: {json.dumps(result)}", flush=True)
    return result


def _quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return round(values[0], 1)
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return round(cuts[round(q * 100) - 1] if q < 1 else max(values), 1)


def consumer_latencies(home: Path, watcher: Watcher, landed: dict[int, Batch]) -> list[float]:
    """For each batch: from landing to the first consumer version published by a run that started
    after the batch's appointments were published."""
    from dagster import DagsterInstance

    instance = DagsterInstance.from_config(str(home / "dagster"))
    started = {}
    for _, run_id in watcher.consumer:
        record = instance.get_run_record_by_id(run_id) if run_id else None
        started[run_id] = record.start_time if record and record.start_time else None
    latencies = []
    for number, batch in landed.items():
        visible = watcher.visible.get(number)
        if visible is None:
            continue
        after = [seen for seen, run_id in watcher.consumer if (started.get(run_id) or 0) >= visible]
        if after:
            latencies.append(min(after) - batch.landed_at)
    return sorted(latencies)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.stream")
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--batches", type=int, default=50)
    parser.add_argument("--interval", type=float, default=2.0)
    parser.add_argument("--bookings", type=int, default=100)
    parser.add_argument("--backlog", type=int, default=20, help="files dropped at once for the throughput figure")
    parser.add_argument("--backlog-bookings", type=int, default=2000, help="new appointments per backlog file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mesh-bench-stream-") as tmp:
        measure(args.scale, args.batches, args.interval, args.bookings, args.backlog, args.backlog_bookings, Path(tmp))


if __name__ == "__main__":
    main()
