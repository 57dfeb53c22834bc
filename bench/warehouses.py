"""`mesh run` of the whole mesh on each warehouse: DuckDB files against a PostgreSQL server.

    python -m bench.warehouses [--scale 1]

Both homes are seeded alike; PostgreSQL is a private server from Debian's packages on 127.0.0.1
(fsync off, as in the tests). Prints the wall time of each run and each domain's run time.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.conftest import copy_project, mesh_env
from tests.pg_support import postgres_bin_dir, postgres_server

MESH = str(Path(sys.executable).with_name("mesh"))


def timed_run(base: Path, scale: str, extra: dict[str, str]) -> tuple[float, dict[str, float]]:
    root = copy_project(base / "project")
    env = {**mesh_env(root, base / "home"), **extra}
    subprocess.run([MESH, "seed", "--scale", scale], env=env, cwd=root, check=True, capture_output=True)
    started = time.monotonic()
    proc = subprocess.run([MESH, "run"], env=env, cwd=root, capture_output=True, text=True)
    seconds = time.monotonic() - started
    if proc.returncode != 0:
        raise SystemExit(f"mesh run failed ({extra.get('MESH_WAREHOUSE', 'duckdb')}):\n{proc.stderr[-3000:]}")
    steps: dict[str, float] = {}
    for step, took in re.findall(r"✔ (\w+?)__\w+ \(([\d.]+)s\)", proc.stderr):
        steps[step] = steps.get(step, 0.0) + float(took)
    return seconds, steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="1")
    args = parser.parse_args()
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        raise SystemExit("no PostgreSQL server binaries: install Debian's postgresql package")
    with tempfile.TemporaryDirectory(prefix="mesh-wh-") as tmp:
        duck_s, duck_steps = timed_run(Path(tmp) / "duckdb", args.scale, {})
        with postgres_server(bin_dir) as pg:
            url = f"postgresql://postgres:{pg.superuser_password}@{pg.host}:{pg.port}/postgres"
            pg_s, pg_steps = timed_run(
                Path(tmp) / "postgres", args.scale, {"MESH_WAREHOUSE": "postgres", "MESH_WAREHOUSE_URL": url}
            )
    print(f"mesh run at scale {args.scale} on {os.cpu_count()} cores")
    print("| domain | DuckDB (s) | PostgreSQL (s) |\n|---|---|---|")
    for domain in duck_steps:
        print(f"| {domain} steps | {duck_steps[domain]:.1f} | {pg_steps.get(domain, float('nan')):.1f} |")
    print(f"| whole run (wall) | {duck_s:.1f} | {pg_s:.1f} |")


if __name__ == "__main__":
    main()
