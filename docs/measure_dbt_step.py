"""A dbt domain's step as `mesh run --domain D` runs it, against a plain `dbt build` CLI of the same
models on a copy of the same warehouse (no Dagster, no sandbox, no audit or publication).

    MESH_PROJECT_DIR=... MESH_HOME=... .venv/bin/python docs/measure_dbt_step.py immunizations 3

Prints, per attempt: the step's duration from the run's Dagster events (STEP_START to its end), the
`mesh run` process's wall and CPU seconds, the load average; then the same for `dbt build`
(its first attempt parses in full into a fresh target folder, the next ones partially). The first
`mesh run` is cold (a new process: imports, definitions, GX); later ones are repeated runs.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(args: list[str], env: dict[str, str]) -> tuple[float, float, subprocess.CompletedProcess]:
    cpu, started = _children_cpu(), time.perf_counter()
    proc = subprocess.run(args, env=env, capture_output=True, text=True)
    return time.perf_counter() - started, _children_cpu() - cpu, proc


def step_seconds(home: Path, step: str) -> float:
    from dagster import DagsterInstance

    instance = DagsterInstance.from_config(str(home / "dagster"))
    run = sorted(instance.get_run_records(), key=lambda r: r.create_timestamp)[-1].dagster_run
    events = [e for e in instance.all_logs(run.run_id) if e.dagster_event and e.step_key == step]
    start = next(e.timestamp for e in events if e.dagster_event.event_type_value == "STEP_START")
    end = max(e.timestamp for e in events)
    return end - start


def main(domain: str, attempts: int) -> None:
    project, home = Path(os.environ["MESH_PROJECT_DIR"]), Path(os.environ["MESH_HOME"])
    mesh, dbt = str(Path(sys.executable).with_name("mesh")), str(Path(sys.executable).with_name("dbt"))
    env = {**os.environ, "MESH_NO_WARM": "1"}
    for attempt in range(attempts):
        wall, cpu, proc = timed([mesh, "run", "--domain", domain], env)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
        step = step_seconds(home, f"{domain}__dbt")
        load = os.getloadavg()[0]
        print(
            json.dumps(
                {
                    "what": "mesh run",
                    "attempt": attempt,
                    "step_s": round(step, 2),
                    "wall_s": round(wall, 2),
                    "cpu_s": round(cpu, 2),
                    "load": round(load, 1),
                }
            )
        )
    with tempfile.TemporaryDirectory() as tmp:
        warehouse = Path(tmp) / f"{domain}.duckdb"
        shutil.copy(home / "warehouse" / f"{domain}.duckdb", warehouse)
        plain = {k: v for k, v in os.environ.items() if not k.startswith("MESH_")} | {
            "MESH_DUCKDB_PATH": str(warehouse)
        }
        args = [dbt, "build", "--project-dir", str(project / "dbt_projects" / domain)]
        args += ["--profiles-dir", str(project / "dbt_projects"), "--target-path", str(Path(tmp) / "target")]
        for attempt in range(attempts):
            wall, cpu, proc = timed(args, plain)
            assert proc.returncode == 0, proc.stdout[-3000:]
            print(
                json.dumps(
                    {
                        "what": "dbt build",
                        "attempt": attempt,
                        "wall_s": round(wall, 2),
                        "cpu_s": round(cpu, 2),
                        "load": round(os.getloadavg()[0], 1),
                    }
                )
            )


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
