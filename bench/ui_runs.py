"""Runs where users launch them: each domain from the Dagster UI, beside `mesh run --domain` and
beside a plain `dbt build` of the same models with the same inputs.

Over a home the whole mesh has run in (so every domain's inputs are there), `dagster dev` serves the
workspace on a free loopback port with its daemon. The sensors are stopped first (automation would
start consumers' runs during the next measurement). Then, with the run worker server warm (one run
launched and finished first, as it is once the UI has run anything):
- `ui_run_s`: each domain's job launched with GraphQL `launchRun` (the mutation the UI's "Launch
  run" sends), from the request to the run's end (its run record), one at a time;
- `ui_dbt_s`: for a dbt domain, the run of its dbt assets only (the UI's "Materialize" on the dbt
  assets): a source-aligned domain's job also ingests its sources in Python, which dbt does not do;
- `mesh_run_s`: `mesh run --domain D` from the shell (its own process: imports, loading the domain,
  submitting, waiting), against the same instance and warm server;
- `dbt_build_s`: the dbt CLI (`dbt build`, no Dagster) of the domain's project in a subprocess, on a
  copy of the domain's warehouse file (its sources and the governed views of what it consumes),
  with one thread and the mesh's memory limit, after a `dbt parse` (partial parsing warm, as in a
  dbt user's loop).
`ui_run_vs_dbt_build` is `ui_dbt_s / dbt_build_s` per dbt domain. Measures; asserts nothing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from devtools.ui_screenshot import dagster_dev_command, free_port, webserver
from mesh_platform.orchestration.run_worker_server import ServerPaths, ensure_server
from mesh_platform.project.locations import MeshProject
from mesh_platform.project.mesh import Mesh
from mesh_platform.storage.duckdb_warehouse import memory_limit

BIN = Path(sys.executable).parent
LAUNCH = """mutation($params: ExecutionParams!) { launchRun(executionParams: $params) {
  __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message } } }"""
SENSORS = """query($selector: RepositorySelector!) { sensorsOrError(repositorySelector: $selector) {
  ... on Sensors { results { name sensorState { id selectorId status } } } } }"""
STOP_SENSOR = """mutation($id: String!, $selectorId: String!) { stopSensor(id: $id, jobSelectorId: $selectorId) {
  __typename } }"""
DBT_STEP = "__dbt"


def _repository(domain: str) -> dict[str, str]:
    return {"repositoryLocationName": domain, "repositoryName": "__repository__"}


def stop_sensors(server: Any, domains: list[str]) -> None:
    for domain in domains:
        found = server.graphql(SENSORS, {"selector": _repository(domain)})["sensorsOrError"]
        for sensor in found.get("results", []):
            state = sensor["sensorState"]
            if state["status"] == "RUNNING":
                _stop_sensor(server, state)


def _stop_sensor(server: Any, state: dict[str, str], attempts: int = 5) -> None:
    """Stopped, asked again after an error the server answered (said on stderr, with its message):
    the dev instance's SQLite storage can be busy with the daemon's ticks."""
    for attempt in range(1, attempts + 1):
        try:
            server.graphql(STOP_SENSOR, {"id": state["id"], "selectorId": state["selectorId"]})
            return
        except (RuntimeError, OSError) as exc:  # an error the server answered, or a connection it dropped
            print(f"stopSensor {state['id']}, attempt {attempt} of {attempts}: {exc}", file=sys.stderr, flush=True)
            if attempt == attempts:
                raise
            time.sleep(2.0 * attempt)


def launch_and_wait(server: Any, instance: Any, domain: str, assets: list[list[str]] | None = None) -> float:
    """Seconds from the launch request to the run's end; raises if the run did not succeed."""
    params: dict[str, Any] = {"selector": {**_repository(domain), "pipelineName": domain}, "runConfigData": {}}
    if assets:
        params["selector"]["assetSelection"] = [{"path": path} for path in assets]
    started = time.time()
    result = server.graphql(LAUNCH, {"params": params})["launchRun"]
    if result["__typename"] != "LaunchRunSuccess":
        raise SystemExit(f"launchRun {domain}: {result}")
    run_id = result["run"]["runId"]
    deadline = time.monotonic() + 1800
    while True:
        record = instance.get_run_record_by_id(run_id)
        if record.dagster_run.is_finished:
            break
        if time.monotonic() > deadline:
            raise SystemExit(f"the UI's run of {domain} did not end in 30 min")
        time.sleep(0.2)
    if record.dagster_run.status.value != "SUCCESS":
        raise SystemExit(f"the UI's run of {domain} ended {record.dagster_run.status.value}")
    return record.end_time - started


def dbt_assets(instance: Any, domain: str) -> list[list[str]]:
    """The asset keys the domain's dbt step materialized in its last run."""
    from dagster import DagsterEventType

    for run in instance.get_runs(limit=20):
        if run.job_name != domain:
            continue
        records = instance.get_records_for_run(run.run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION).records
        keys = [
            r.event_log_entry.dagster_event.asset_key.path
            for r in records
            if (r.event_log_entry.dagster_event.step_key or "").endswith(DBT_STEP)
        ]
        if keys:
            return keys
    raise SystemExit(f"no run of {domain} materialized dbt assets")


def dbt_build(mesh: Mesh, domain: str, work: Path) -> float:
    """A plain `dbt build` of the domain's project on a copy of its warehouse; seconds."""
    project_dir = mesh.project.dbt_project_dir(domain)
    assert project_dir is not None
    folder = work / f"dbt-{domain}"
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(project_dir, folder / "project", ignore=shutil.ignore_patterns("target", "logs"))
    warehouse = folder / f"{domain}.duckdb"
    shutil.copy(mesh.project.home.warehouse(domain), warehouse)
    profile = {
        "mesh": {
            "target": "plain",
            "outputs": {
                "plain": {
                    "type": "duckdb",
                    "path": str(warehouse),
                    "threads": 1,
                    "settings": {"memory_limit": memory_limit()},
                }
            },
        }
    }
    (folder / "profiles.yml").write_text(yaml.safe_dump(profile))
    dbt = [str(BIN / "dbt"), "--quiet"]
    where = ["--project-dir", str(folder / "project"), "--profiles-dir", str(folder)]
    subprocess.run([*dbt, "parse", *where], check=True, capture_output=True, cwd=folder)
    started = time.perf_counter()
    proc = subprocess.run([*dbt, "build", *where], capture_output=True, text=True, cwd=folder)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"dbt build {domain} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}")
    return seconds


def mesh_run_domain(env: dict[str, str], root: Path, domain: str) -> float:
    started = time.perf_counter()
    proc = subprocess.run([str(BIN / "mesh"), "run", "--domain", domain], env=env, cwd=root, capture_output=True)
    if proc.returncode != 0:
        raise SystemExit(f"mesh run --domain {domain} failed:\n{proc.stderr.decode()[-3000:]}")
    return time.perf_counter() - started


def measure(home: Path, work: Path) -> dict[str, Any]:
    """Over `home`, where the whole mesh has run."""
    from dagster import DagsterInstance

    root = MeshProject.discover().root
    env = {**os.environ, "MESH_HOME": str(home), "MESH_PROJECT_DIR": str(root), "DAGSTER_HOME": str(home / "dagster")}
    os.environ["MESH_HOME"] = str(home)
    mesh = Mesh.load(MeshProject.discover(root))
    dbt_domains = [d for d in mesh.domains if mesh.project.dbt_project_dir(d)]
    instance = DagsterInstance.from_config(str(home / "dagster"))
    port, log = free_port(), work / "webserver.log"
    try:
        with webserver(root, env, log, command=dagster_dev_command(port), port=port) as server:
            out = _launched(server, instance, mesh, dbt_domains, env)
    except BaseException:
        if log.exists():  # the work folder goes with the bench: what the webserver said, shown here
            tail = log.read_text(errors="replace").splitlines()[-80:]
            print("the webserver's log, last lines:\n" + "\n".join(tail), file=sys.stderr, flush=True)
        raise
    out["dbt_build_s"] = {}
    with tempfile.TemporaryDirectory(dir=work) as tmp:
        for domain in dbt_domains:
            out["dbt_build_s"][domain] = round(dbt_build(mesh, domain, Path(tmp)), 2)
    out["ui_run_vs_dbt_build"] = {d: round(out["ui_dbt_s"][d] / out["dbt_build_s"][d], 2) for d in dbt_domains}
    return out


def _launched(server: Any, instance: Any, mesh: Mesh, dbt_domains: list[str], env: dict[str, str]) -> dict[str, Any]:
    """`ui_run_s`, `ui_dbt_s` and `mesh_run_s`, with the webserver up."""
    domains = mesh.domains
    out: dict[str, Any] = {"ui_run_s": {}, "ui_dbt_s": {}, "mesh_run_s": {}}
    stop_sensors(server, domains)
    ensure_server(ServerPaths.of(mesh.project.home.dagster_home, sys.executable), sys.executable)
    launch_and_wait(server, instance, domains[0])  # the UI's first run: the server forks workers since
    for domain in domains:
        out["ui_run_s"][domain] = round(launch_and_wait(server, instance, domain), 2)
    for domain in dbt_domains:
        out["ui_dbt_s"][domain] = round(launch_and_wait(server, instance, domain, dbt_assets(instance, domain)), 2)
    for domain in domains:
        out["mesh_run_s"][domain] = round(mesh_run_domain(env, mesh.project.root, domain), 2)
    return out
