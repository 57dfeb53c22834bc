"""The production instance (MESH_ENV=prod): Dagster's PostgreSQL storage on a real server.

A private PostgreSQL cluster (Debian's binaries, 127.0.0.1, a free port) gets a role with a
password and a database; the whole mesh then runs on it through `mesh run`, several runs at once
(`mesh run` submits to the queue, which `dagster-daemon` dequeues, concurrent `mesh run`s too),
and SQL against the server shows what Dagster stored. Bad settings fail at start, in one line.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from devtools.process_groups import stop_process_group
from mesh_platform.project.dagster_instance import InstanceConfigError, dagster_yaml, mesh_env, postgres_target
from mesh_platform.project.workspace_file import entry_for
from tests.conftest import E2E_SCALE, MESH, copy_project, run_mesh_cli
from tests.conftest import mesh_env as project_env
from tests.pg_support import PostgresServer, free_port, postgres_or_skip

ROLE, PASSWORD, DATABASE = "mesh_runner", "s3cret-Pw", "mesh_dagster"
DAGSTER = str(Path(sys.executable).with_name("dagster"))
DAEMON = str(Path(sys.executable).with_name("dagster-daemon"))

# --- configuration, no server needed -------------------------------------------------------------


def test_dev_is_the_default_and_embedded() -> None:
    assert mesh_env({}) == "dev"
    config = yaml.safe_load(dagster_yaml({}))
    assert "storage" not in config and config["concurrency"]["pools"]["default_limit"] == 1


def test_prod_instance_config_uses_postgres_from_env_without_writing_the_password() -> None:
    env = {"MESH_ENV": "prod", "MESH_PG_URL": f"postgresql+psycopg2://{ROLE}:{PASSWORD}@db.internal:6432/{DATABASE}"}
    text = dagster_yaml(env)
    assert PASSWORD not in text and "db.internal" not in text
    config = yaml.safe_load(text)
    assert config["storage"] == {"postgres": {"postgres_url": {"env": "MESH_PG_URL"}}}
    assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"
    assert config["run_launcher"]["class"] == "DefaultRunLauncher"
    limits = config["concurrency"]["runs"]["tag_concurrency_limits"]
    assert limits == [{"key": "mesh/domain", "value": {"applyLimitPerUniqueValue": True}, "limit": 1}]
    assert config["concurrency"]["pools"]["default_limit"] == 1
    assert config["run_monitoring"]["free_slots_after_run_end_seconds"] >= 1  # 0: dead runs keep their slots
    target = postgres_target(env)
    assert (target.host, target.port, target.database, target.user) == ("db.internal", 6432, DATABASE, ROLE)


def test_prod_instance_config_is_valid_dagster_config(tmp_path: Path) -> None:
    """Dagster itself accepts the file (schema and the concurrency/run-queue compatibility rules)."""
    from dagster._core.instance.config import dagster_instance_config

    env = {"MESH_ENV": "prod", "MESH_PG_URL": "postgresql+psycopg2://u:p@127.0.0.1:5432/d"}
    (tmp_path / "dagster.yaml").write_text(dagster_yaml(env))
    config, _ = dagster_instance_config(str(tmp_path))
    assert config["storage"]["postgres"]["postgres_url"] == {"env": "MESH_PG_URL"}


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"MESH_ENV": "staging"}, "MESH_ENV='staging' is not a known environment; use one of: dev, prod"),
        ({"MESH_ENV": "prod"}, "MESH_ENV=prod needs MESH_PG_URL"),
        ({"MESH_ENV": "prod", "MESH_PG_URL": "mysql://u@h/d"}, "MESH_PG_URL must start with postgresql+psycopg2://"),
        (
            {"MESH_ENV": "prod", "MESH_PG_URL": "postgresql://u:p@h/d"},
            "MESH_PG_URL must start with postgresql+psycopg2:// (the driver dagster-postgres installs), not postgresql://",
        ),
        ({"MESH_ENV": "prod", "MESH_PG_URL": "postgresql+psycopg2://u:p@h:5432/"}, "MESH_PG_URL has no database"),
        ({"MESH_ENV": "prod", "MESH_PG_URL": "postgresql+psycopg2://h:5432/d"}, "MESH_PG_URL has no user"),
        ({"MESH_ENV": "prod", "MESH_PG_URL": "postgresql+psycopg2://u@h:99999/d"}, "MESH_PG_URL is not a valid URL"),
        (
            {"MESH_ENV": "prod", "MESH_PG_URL": "postgresql+psycopg2://u:p@h/d", "MESH_MAX_CONCURRENT_RUNS": "0"},
            "MESH_MAX_CONCURRENT_RUNS must be a positive integer, got '0'",
        ),
    ],
)
def test_bad_settings_are_named(env: dict[str, str], message: str) -> None:
    with pytest.raises(InstanceConfigError) as err:
        dagster_yaml(env)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_mesh_run_with_unknown_environment_fails_in_one_line(tmp_path: Path) -> None:
    root = copy_project(tmp_path / "project")
    env = {**project_env(root, tmp_path / "home"), "MESH_ENV": "production"}
    proc = run_mesh_cli("run", env=env, cwd=root)
    assert proc.returncode == 1
    assert proc.stderr.strip() == "error: MESH_ENV='production' is not a known environment; use one of: dev, prod"


# --- a real server -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pg() -> Iterator[PostgresServer]:
    with postgres_or_skip() as server:
        yield server


@pytest.fixture(scope="module")
def pg_url(pg: PostgresServer) -> str:
    """A login role with a password, owning the instance database."""
    return pg.create_role_and_database(ROLE, PASSWORD, DATABASE)


@pytest.fixture(scope="module")
def prod(pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """A project copy seeded small, MESH_ENV=prod against the server, its `dagster-daemon` (which
    launches the runs submitted to the queue, `mesh run`'s included) and one whole `mesh run`."""
    url = pg_url
    base = tmp_path_factory.mktemp("prod")
    root = copy_project(base / "project")
    env = {**project_env(root, base / "home"), "MESH_ENV": "prod", "MESH_PG_URL": url}
    run_mesh_cli("seed", "--scale", E2E_SCALE, env=env, cwd=root, check=True)
    daemon_env = {**env, "DAGSTER_HOME": str(base / "home" / "dagster")}
    log = open(base / "home" / "daemon.log", "w")  # noqa: SIM115 - closed below
    daemon = subprocess.Popen(
        [DAEMON, "run", "-w", str(root / "workspace.yaml")], cwd=root, env=daemon_env, stdout=log,
        stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        _wait_for_daemon(pg_url, daemon, base / "home" / "daemon.log")
        started = time.monotonic()
        run = run_mesh_cli("run", env=env, cwd=root)
        yield {
            "root": root, "home": base / "home", "env": env, "run": run, "seconds": time.monotonic() - started,
            "daemon_env": daemon_env,
        }  # fmt: skip
    finally:
        stop_process_group(daemon, 60)
        log.close()


def _wait_for_daemon(url: str, daemon: subprocess.Popen, log: Path) -> None:
    """As an operator would: `mesh run` once the daemon reports (it loads every code location
    first, which takes minutes while the whole suite loads the machine)."""
    from dagster_postgres import PostgresRunStorage

    deadline = time.monotonic() + 600
    storage = PostgresRunStorage(url)
    try:
        while not storage.get_daemon_heartbeats():
            assert daemon.poll() is None, f"dagster-daemon exited {daemon.returncode}:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"dagster-daemon did not report in 600 s:\n{log.read_text()}"
            time.sleep(2)
    finally:
        storage.dispose()


# the runs `mesh run` made: the fixture's daemon also runs the sensors and automation of the mesh
BY_MESH_RUN = "run_id IN (SELECT run_id FROM run_tags WHERE key = 'mesh/launched_by' AND value = 'mesh run')"


def q(pg: PostgresServer, sql: str, params: tuple = ()) -> list[tuple]:
    return pg.query(sql, params, database=DATABASE)


def expected_products(root: Path) -> set[str]:
    products = set()
    for descriptor in (root / "domains").glob("*/domain.yaml"):
        data = yaml.safe_load(descriptor.read_text())
        products |= {f'["{data["domain"]}", "{p["name"]}"]' for p in data["products"]}
    return products


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.xdist_group("postgres")
def test_whole_mesh_runs_on_the_postgres_instance(pg: PostgresServer, prod: dict) -> None:
    run = prod["run"]
    assert run.returncode == 0, run.stdout + run.stderr
    dagster_home = prod["home"] / "dagster"
    written = (dagster_home / "dagster.yaml").read_text()
    assert "postgres_url" in written and PASSWORD not in written
    assert not list(dagster_home.rglob("*.db")), "the prod instance must not fall back to SQLite files"

    runs = q(pg, f"SELECT pipeline_name, status FROM runs WHERE {BY_MESH_RUN}")
    domains = sorted(p.name for p in (prod["root"] / "domains").iterdir() if (p / "domain.yaml").exists())
    assert sorted(name for name, _ in runs) == domains, runs
    assert {status for _, status in runs} == {"SUCCESS"}, runs
    tags = q(pg, f"SELECT value FROM run_tags WHERE key = 'mesh/domain' AND {BY_MESH_RUN}")
    assert sorted({v for (v,) in tags}) == domains

    materialized = {k for (k,) in q(pg, "SELECT DISTINCT asset_key FROM event_logs WHERE dagster_event_type = %s",
                                    ("ASSET_MATERIALIZATION",))}  # fmt: skip
    assert expected_products(prod["root"]) <= materialized

    checks = q(pg, f"SELECT asset_key, check_name, execution_status FROM asset_check_executions WHERE {BY_MESH_RUN}")
    checked = {key for key, _, _ in checks}
    assert expected_products(prod["root"]) <= checked, "every product has its contract checks stored"
    assert all(status in ("SUCCEEDED", "FAILED") for _, _, status in checks), checks
    assert any(name == "schema_contract" for _, name, _ in checks)
    evaluations = q(
        pg, f"SELECT count(*) FROM event_logs WHERE dagster_event_type = 'ASSET_CHECK_EVALUATION' AND {BY_MESH_RUN}"
    )
    assert evaluations[0][0] == len(checks)

    failures = q(
        pg, f"SELECT run_id, step_key FROM event_logs WHERE dagster_event_type = 'STEP_FAILURE' AND {BY_MESH_RUN}"
    )
    assert failures == []
    lock_errors = q(pg, "SELECT count(*) FROM event_logs WHERE event ILIKE '%%could not set lock%%'")
    assert lock_errors[0][0] == 0


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.xdist_group("postgres")
def test_concurrent_mesh_runs_share_the_instance(pg: PostgresServer, prod: dict) -> None:
    """Two domains at once, and the same domain twice: all succeed; one domain's warehouse steps
    never overlap across runs (pool `warehouse_<domain>`, limit 1, held in PostgreSQL)."""
    assert prod["run"].returncode == 0
    before = {r for (r,) in q(pg, "SELECT run_id FROM runs")}
    procs = [
        subprocess.Popen(
            [MESH, "run", "--domain", domain],
            env=prod["env"],
            cwd=prod["root"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for domain in ("pharmacy", "scheduling", "pharmacy")
    ]
    outputs = [p.communicate(timeout=900) for p in procs]
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, out + err

    new = q(pg, f"SELECT run_id, pipeline_name, status FROM runs WHERE {BY_MESH_RUN}")
    new = [row for row in new if row[0] not in before]
    assert sorted(name for _, name, _ in new) == ["pharmacy", "pharmacy", "scheduling"]
    assert {status for _, _, status in new} == {"SUCCESS"}
    pharmacy_runs = [run_id for run_id, name, _ in new if name == "pharmacy"]
    steps = q(
        pg,
        "SELECT run_id, step_key, dagster_event_type, timestamp FROM event_logs WHERE run_id = ANY(%s)"
        " AND dagster_event_type IN ('STEP_START', 'STEP_SUCCESS', 'STEP_FAILURE') ORDER BY timestamp",
        (pharmacy_runs,),
    )
    spans: dict[tuple[str, str], list] = {}
    for run_id, step, _kind, ts in steps:
        spans.setdefault((run_id, step), []).append(ts)
    intervals = sorted((min(t), max(t), run_id) for (run_id, _), t in spans.items())
    assert len(intervals) >= 2 * 2, intervals
    for (_, end, run_a), (start, _, run_b) in itertools.pairwise(intervals):
        if run_a != run_b:
            assert start >= end, f"pharmacy steps of two runs overlapped: {intervals}"
    assert (
        q(pg, f"SELECT count(*) FROM event_logs WHERE dagster_event_type = 'STEP_FAILURE' AND {BY_MESH_RUN}")[0][0] == 0
    )


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.xdist_group("postgres")
def test_daemon_dequeues_runs_one_per_domain(pg: PostgresServer, prod: dict) -> None:
    """Runs submitted through the instance wait in the queue (QueuedRunCoordinator); the daemon
    launches them, never two of the same domain at once (tag mesh/domain, limit 1 per value)."""
    env = prod["daemon_env"]  # the daemon the fixture started launches the queued runs
    before = {r for (r,) in q(pg, "SELECT run_id FROM runs")}
    for domain in ("pharmacy", "pharmacy", "scheduling"):
        # the domain's own code location (as in workspace.yaml, which the daemon loads): `dagster
        # job launch` starts a code server for every location of the workspace it is given
        workspace = prod["root"] / f"workspace.{domain}.yaml"
        workspace.write_text("load_from:\n" + entry_for(domain))
        launch = subprocess.run(
            [DAGSTER, "job", "launch", "-w", str(workspace), "-l", domain, "-j", domain],
            cwd=prod["root"], env=env, capture_output=True, text=True, timeout=900,
        )  # fmt: skip
        assert launch.returncode == 0, launch.stdout + launch.stderr
    deadline = time.monotonic() + 600
    while True:
        launched = q(
            pg, "SELECT run_id, pipeline_name, status FROM runs WHERE pipeline_name IN ('pharmacy', 'scheduling')"
        )
        rows = [r for r in launched if r[0] not in before]  # not the runs of the daemon's sensors and automation
        if len(rows) == 3 and all(status in ("SUCCESS", "FAILURE", "CANCELED") for _, _, status in rows):
            break
        if time.monotonic() > deadline:
            log = (prod["home"] / "daemon.log").read_text()[-4000:]
            raise AssertionError(f"queued runs did not finish in 600 s: {rows}\n{log}")
        time.sleep(2)
    assert sorted((name, status) for _, name, status in rows) == [
        ("pharmacy", "SUCCESS"),
        ("pharmacy", "SUCCESS"),
        ("scheduling", "SUCCESS"),
    ]
    ids = [run_id for run_id, _, _ in rows]
    # queued (ENQUEUED), launched by the daemon (STARTING), ran; legacy names PIPELINE_* in the event log
    events = q(
        pg,
        "SELECT run_id, replace(dagster_event_type, 'PIPELINE_', 'RUN_'), timestamp FROM event_logs"
        " WHERE run_id = ANY(%s) AND (dagster_event_type LIKE 'PIPELINE_%%' OR dagster_event_type LIKE 'RUN_%%')",
        (ids,),
    )
    kinds: dict[str, dict[str, object]] = {run_id: {} for run_id in ids}
    for run_id, kind, ts in events:
        kinds[run_id][kind] = ts
    for run_id, seen in kinds.items():
        assert {"RUN_ENQUEUED", "RUN_STARTING", "RUN_START", "RUN_SUCCESS"} <= set(seen), (run_id, seen)
    pharmacy = sorted(
        (kinds[run_id]["RUN_START"], kinds[run_id]["RUN_SUCCESS"]) for run_id, name, _ in rows if name == "pharmacy"
    )
    assert pharmacy[1][0] >= pharmacy[0][1], f"two pharmacy runs ran at once: {pharmacy}"


# --- bad settings against the real server --------------------------------------------------------


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.xdist_group("postgres")
@pytest.mark.parametrize("case", ["missing", "unreachable", "wrong_password", "unknown_database"])
def test_bad_postgres_settings_fail_mesh_run_at_start(
    pg: PostgresServer, pg_url: str, tmp_path: Path, case: str
) -> None:
    root = copy_project(tmp_path / "project")
    env = {**project_env(root, tmp_path / "home"), "MESH_ENV": "prod"}
    closed = free_port()
    expected = {
        "missing": "error: MESH_ENV=prod needs MESH_PG_URL (postgresql+psycopg2://user:password@host:port/database), "
        "which is not set",
        "unreachable": f"error: MESH_PG_URL: cannot connect to PostgreSQL at 127.0.0.1:{closed}/{DATABASE} as {ROLE}:"
        " Connection refused",
        "wrong_password": f"error: MESH_PG_URL: cannot connect to PostgreSQL at {pg.host}:{pg.port}/{DATABASE} as"
        f' {ROLE}: password authentication failed for user "{ROLE}"',
        "unknown_database": f"error: MESH_PG_URL: cannot connect to PostgreSQL at {pg.host}:{pg.port}/nope as"
        f' {ROLE}: database "nope" does not exist',
    }[case]
    if case == "unreachable":
        env["MESH_PG_URL"] = f"postgresql+psycopg2://{ROLE}:{PASSWORD}@127.0.0.1:{closed}/{DATABASE}"
    elif case == "wrong_password":
        env["MESH_PG_URL"] = pg.url(ROLE, "not-the-password", DATABASE)
    elif case == "unknown_database":
        env["MESH_PG_URL"] = pg.url(ROLE, PASSWORD, "nope")
    started = time.monotonic()
    proc = run_mesh_cli("run", env=env, cwd=root)
    assert proc.returncode == 1
    assert proc.stderr.strip() == expected, proc.stderr
    assert PASSWORD not in proc.stderr + proc.stdout
    assert "Traceback" not in proc.stderr
    assert time.monotonic() - started < 60
    assert not (tmp_path / "home" / "dagster" / "history").exists(), "nothing ran"
