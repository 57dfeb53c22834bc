"""`mesh warm`: commands forked from a server that has the libraries imported behave as cold ones."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import E2E_SCALE, copy_project, mesh_env, run_mesh_cli

pytestmark = [pytest.mark.slow]


@pytest.fixture
def warm_project(tmp_path: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    root = copy_project(tmp_path / "p")
    env = mesh_env(root, tmp_path / "h")
    run_mesh_cli("seed", "--scale", E2E_SCALE, env=env, cwd=root, check=True)
    started = run_mesh_cli("warm", "start", env=env, cwd=root, check=True)
    assert "warm: ready" in started.stderr
    try:
        yield root, env
    finally:
        run_mesh_cli("warm", "stop", env=env, cwd=root)


def server_log(env: dict[str, str]) -> str:
    return (Path(env["MESH_HOME"]) / "warm" / "server.log").read_text()


def test_a_run_goes_through_the_warm_server_and_reports_like_a_cold_one(warm_project) -> None:
    root, env = warm_project
    assert run_mesh_cli("warm", "status", env=env, cwd=root).returncode == 0
    run = run_mesh_cli("run", "--domain", "pharmacy", env=env, cwd=root)
    assert run.returncode == 0, run.stderr
    assert "vaccine_stock" in run.stdout and "published" in run.stdout  # the summary table, on stdout
    assert "pharmacy__vaccine_stock" in run.stderr  # progress, on stderr
    assert "warm: mesh run --domain pharmacy: exit 0" in server_log(env)
    assert (Path(env["MESH_HOME"]) / "products" / "pharmacy" / "vaccine_stock" / "current.json").exists()


def test_exit_status_environment_and_directory_are_the_clients(warm_project) -> None:
    root, env = warm_project
    unknown = run_mesh_cli("run", "--domain", "nope", env=env, cwd=root)
    assert unknown.returncode == 2 and "unknown domain(s) 'nope'" in unknown.stderr
    bad = run_mesh_cli("run", env={**env, "MESH_WAREHOUSE": "oracle"}, cwd=root)
    assert bad.returncode == 1 and "MESH_WAREHOUSE='oracle' is not a known warehouse" in bad.stderr
    elsewhere = run_mesh_cli("products", env={k: v for k, v in env.items() if k != "MESH_PROJECT_DIR"}, cwd=root)
    assert elsewhere.returncode == 0, elsewhere.stderr  # found the project from the client's directory
    log = server_log(env)
    assert "warm: mesh run --domain nope: exit 2" in log and "warm: mesh run: exit 1" in log


def test_after_stop_commands_run_cold(warm_project) -> None:
    root, env = warm_project
    run_mesh_cli("warm", "stop", env=env, cwd=root, check=True)
    assert run_mesh_cli("warm", "status", env=env, cwd=root).returncode == 1
    proc = run_mesh_cli("validate", env=env, cwd=root)
    assert proc.returncode == 0, proc.stderr
    assert "mesh validate" not in server_log(env)
