"""Shared fixtures: a temporary copy of the project and a materialized small mesh."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
MESH = str(Path(sys.executable).with_name("mesh"))
E2E_SCALE = "0.02"
PG_ROLE, PG_PASSWORD = "mesh_builder", "b0ild-Pw"
TEST_MASKING_KEY = "5e" * 32


def copy_project(dest: Path) -> Path:
    """The project's domains, dbt projects (with prepared manifests) and workspace in `dest`."""
    shutil.copytree(ROOT / "domains", dest / "domains", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(
        ROOT / "dbt_projects",
        dest / "dbt_projects",
        ignore=shutil.ignore_patterns("logs", "*.duckdb", "run*", "compiled", "partial_parse.msgpack"),
    )
    shutil.copy(ROOT / "workspace.yaml", dest / "workspace.yaml")
    return dest


def add_code_location(project: Path, domain: str) -> None:
    """What `mesh new-domain` adds besides the descriptor: the domain's definitions.py and its
    workspace.yaml entry (Dagster runs a domain through its code location)."""
    from mesh_platform.project.workspace_file import WORKSPACE, with_location
    from mesh_platform.scaffold.render import render

    (project / "domains" / domain / "definitions.py").write_text(render("domain/definitions.py", domain=domain))
    workspace = project / WORKSPACE
    workspace.write_text(with_location(workspace.read_text(), domain))


def mesh_env(project: Path, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MESH_", "DAGSTER_"))}
    # a test's warm run worker server (orchestration/run_worker_server.py) ends soon after its runs
    return {**env, "MESH_PROJECT_DIR": str(project), "MESH_HOME": str(home), "MESH_RUN_WORKER_IDLE_S": "120"}


def run_mesh_cli(*args: str, env: dict[str, str], cwd: Path, check: bool = False) -> subprocess.CompletedProcess:
    proc = subprocess.run([MESH, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=900)
    if check and proc.returncode != 0:
        raise AssertionError(f"mesh {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def run_spans(home: Path) -> dict[str, tuple[float, float]]:
    """Each domain's latest run in MESH_HOME's Dagster instance: (start, end) times by job name."""
    from dagster import DagsterInstance

    instance = DagsterInstance.from_config(str(home / "dagster"))
    records = sorted(instance.get_run_records(), key=lambda r: r.start_time)
    return {r.dagster_run.job_name: (r.start_time, r.end_time) for r in records}


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = copy_project(tmp_path / "project")
    monkeypatch.setenv("MESH_PROJECT_DIR", str(root))
    monkeypatch.setenv("MESH_HOME", str(tmp_path / "home"))
    return root


class MaterializedMesh:
    def __init__(self, root: Path, home: Path, extra_env: dict[str, str] | None = None):
        self.root, self.home = root, home
        self.env = {**mesh_env(root, home), **(extra_env or {})}

    def mesh(self, *args: str, check: bool = False) -> subprocess.CompletedProcess:
        return run_mesh_cli(*args, env=self.env, cwd=self.root, check=check)

    def mesh_with(self, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
        return run_mesh_cli(*args, env={**self.env, **env}, cwd=self.root)


def materialize(base: Path, extra_env: dict[str, str] | None = None) -> MaterializedMesh:
    """The whole mesh seeded at a small scale and run once through `mesh run`."""
    mm = MaterializedMesh(copy_project(base / "project"), base / "home", extra_env)
    mm.home.mkdir(parents=True)
    (mm.home / "masking.key").write_text(TEST_MASKING_KEY)  # one key: the same tokens in every home
    mm.mesh("seed", "--scale", E2E_SCALE, check=True)
    mm.run = mm.mesh("run")  # type: ignore[attr-defined]
    return mm


@pytest.fixture(scope="session")
def materialized_duckdb(tmp_path_factory: pytest.TempPathFactory) -> MaterializedMesh:
    """The whole mesh on the default warehouse (DuckDB files), shared and read-only."""
    return materialize(tmp_path_factory.mktemp("e2e"))


@pytest.fixture(scope="session")
def materialized(materialized_duckdb: MaterializedMesh) -> MaterializedMesh:
    return materialized_duckdb


@pytest.fixture(scope="session")
def warehouse_server() -> Iterator[Any]:
    """A private PostgreSQL server for the warehouse (Debian's binaries, 127.0.0.1)."""
    from tests.pg_support import postgres_or_skip

    with postgres_or_skip() as server:
        yield server


@pytest.fixture(scope="session")
def materialized_pg(warehouse_server: Any, tmp_path_factory: pytest.TempPathFactory) -> MaterializedMesh:
    """The same mesh with MESH_WAREHOUSE=postgres, from an admin role that makes a role and a
    database per domain."""
    warehouse_server.create_role(PG_ROLE, PG_PASSWORD, "CREATEROLE", "CREATEDB")
    url = f"postgresql://{PG_ROLE}:{PG_PASSWORD}@{warehouse_server.host}:{warehouse_server.port}/postgres"
    mm = materialize(tmp_path_factory.mktemp("e2e_pg"), {"MESH_WAREHOUSE": "postgres", "MESH_WAREHOUSE_URL": url})
    mm.server = warehouse_server  # type: ignore[attr-defined]
    return mm


def pytest_collection_finish(session: pytest.Session) -> None:
    """Under `--dist loadgroup` each `xdist_group` must reach one worker whole (module fixtures that
    start servers are built once); pytest 9.2 silently broke that (pytest-xdist#1386)."""
    if not getattr(session.config.option, "loadgroup", False):
        return
    lost = [item.nodeid for item in session.items if item.get_closest_marker("xdist_group") and "@" not in item.nodeid]
    if lost:
        raise pytest.UsageError(f"--dist loadgroup is not grouping tests (pytest-xdist#1386), e.g. {lost[0]}")
