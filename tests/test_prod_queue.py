"""`mesh run` on the production instance with no dagster-daemon: its runs wait in Dagster's queue,
`mesh run` says why, and Ctrl-C takes them out of the queue (a daemon started later must not run
what the user gave up on)."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import MESH, copy_project
from tests.conftest import mesh_env as project_env
from tests.pg_support import PostgresServer, postgres_or_skip

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.xdist_group("prod_queue")]


@pytest.fixture(scope="module")
def pg() -> Iterator[PostgresServer]:
    with postgres_or_skip() as server:
        yield server


def test_a_queued_run_without_a_daemon_is_named_and_ctrl_c_dequeues_it(pg: PostgresServer, tmp_path: Path) -> None:
    from dagster import DagsterRunStatus
    from dagster_postgres import PostgresRunStorage

    url = pg.create_role_and_database("queue_user", "qu3ue-Pw", "queue_db")
    root = copy_project(tmp_path / "project")
    env = {**project_env(root, tmp_path / "home"), "MESH_ENV": "prod", "MESH_PG_URL": url}
    proc = subprocess.Popen(
        [MESH, "run", "--domain", "pharmacy"], env=env, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    seen: list[str] = []
    deadline = time.monotonic() + 300
    while not any("no dagster-daemon is running" in line for line in seen):
        line = proc.stderr.readline()
        assert line and time.monotonic() < deadline, "".join(seen)
        seen.append(line)
    assert seen[-1].startswith("pharmacy: queued")
    assert "start `dagster-daemon run -w workspace.yaml`" in proc.stderr.readline()
    assert "Traceback" not in "".join(seen)
    run_id = next(line.split(": run ")[1].strip() for line in seen if ": run " in line)

    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=120)
    assert proc.returncode == 130
    storage = PostgresRunStorage(url)
    try:
        assert [(run.run_id, run.status) for run in storage.get_runs()] == [(run_id, DagsterRunStatus.CANCELED)]
    finally:
        storage.dispose()
