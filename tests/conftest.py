"""Shared fixtures: a temporary copy of the project and a materialized small mesh."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MESH = str(Path(sys.executable).with_name("mesh"))
E2E_SCALE = "0.02"


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


def mesh_env(project: Path, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MESH_", "DAGSTER_"))}
    return {**env, "MESH_PROJECT_DIR": str(project), "MESH_HOME": str(home)}


def run_mesh_cli(*args: str, env: dict[str, str], cwd: Path, check: bool = False) -> subprocess.CompletedProcess:
    proc = subprocess.run([MESH, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=900)
    if check and proc.returncode != 0:
        raise AssertionError(f"mesh {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = copy_project(tmp_path / "project")
    monkeypatch.setenv("MESH_PROJECT_DIR", str(root))
    monkeypatch.setenv("MESH_HOME", str(tmp_path / "home"))
    return root


class MaterializedMesh:
    def __init__(self, root: Path, home: Path):
        self.root, self.home = root, home
        self.env = mesh_env(root, home)

    def mesh(self, *args: str, check: bool = False) -> subprocess.CompletedProcess:
        return run_mesh_cli(*args, env=self.env, cwd=self.root, check=check)


@pytest.fixture(scope="session")
def materialized(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MaterializedMesh]:
    """The whole mesh seeded at a small scale and run once through `mesh run` (shared, read-only)."""
    base = tmp_path_factory.mktemp("e2e")
    mm = MaterializedMesh(copy_project(base / "project"), base / "home")
    mm.mesh("seed", "--scale", E2E_SCALE, check=True)
    mm.run = mm.mesh("run")  # type: ignore[attr-defined]
    yield mm


def pytest_collection_finish(session: pytest.Session) -> None:
    """Under `--dist loadgroup` each `xdist_group` must reach one worker whole (module fixtures that
    start servers are built once); pytest 9.2 silently broke that (pytest-xdist#1386)."""
    if not getattr(session.config.option, "loadgroup", False):
        return
    lost = [item.nodeid for item in session.items if item.get_closest_marker("xdist_group") and "@" not in item.nodeid]
    if lost:
        raise pytest.UsageError(f"--dist loadgroup is not grouping tests (pytest-xdist#1386), e.g. {lost[0]}")
