"""The Dagster instance of a MESH_HOME, chosen by `MESH_ENV`.

- `dev` (the default): the embedded instance, SQLite files under `MESH_HOME/dagster`. One machine.
  A submitted run is launched at once (DefaultRunCoordinator) by the mesh's run launcher, which
  runs it in a warm run worker (`mesh_platform/orchestration/launcher.py`).
- `prod`: Dagster's PostgreSQL storage (dagster-postgres) for runs, event logs (materializations,
  asset-check results) and schedules, so several processes and machines (webserver, daemon,
  `mesh run`, run workers) share one instance. The connection string is `MESH_PG_URL`
  (`postgresql+psycopg2://user:password@host:port/database`: SQLAlchemy 2.1, which Dagster uses,
  reads a bare `postgresql://` as psycopg 3, while dagster-postgres installs psycopg2).
  dagster.yaml refers to it with `env:`, so the password is never written to disk.
  Runs submitted through the instance (UI, schedules, sensors) go through the QueuedRunCoordinator:
  at most `MESH_MAX_CONCURRENT_RUNS` (default 8) at once and one run per domain (tag `mesh/domain`,
  set on every domain job); steps that write a domain's warehouse are in the pool
  `warehouse_<domain>`, limited to one step at a time across runs. The DefaultRunLauncher starts
  each run as a process next to the daemon; the domain jobs use the in-process executor (imports
  paid once per run). On Kubernetes the Helm chart in `deploy/` brings its own instance config
  (K8sRunLauncher: one pod per run).

Bad or missing settings raise `InstanceConfigError` with one line naming the setting (and the host
and port it could not reach) before anything runs. Nothing here reads the environment at import.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from mesh_platform.project.postgres_url import PostgresUrlError, parse_postgres_url
from mesh_platform.text import one_line

ENVIRONMENTS = ("dev", "prod")
MARKER = "# Written by mesh"
DOMAIN_TAG = "mesh/domain"  # set on every domain job (mesh_platform/defs/domain_definitions.py)
DEFAULT_MAX_CONCURRENT_RUNS = 8
CONNECT_TIMEOUT_S = 5
SCHEME = "postgresql+psycopg2"
URL_FORM = f"{SCHEME}://user:password@host:port/database"


class InstanceConfigError(Exception):
    """A missing or wrong instance setting: the message is one line naming the setting."""


@dataclass(frozen=True)
class PostgresTarget:
    """Where `MESH_PG_URL` points (never holds the password)."""

    host: str
    port: int
    database: str
    user: str

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}/{self.database} as {self.user}"


def mesh_env(environ: Mapping[str, str] | None = None) -> str:
    environ = os.environ if environ is None else environ
    value = (environ.get("MESH_ENV") or "dev").strip().lower()
    if value not in ENVIRONMENTS:
        raise InstanceConfigError(
            f"MESH_ENV={environ.get('MESH_ENV')!r} is not a known environment; use one of: {', '.join(ENVIRONMENTS)}"
        )
    return value


def postgres_target(environ: Mapping[str, str] | None = None) -> PostgresTarget:
    """Parse and check `MESH_PG_URL` without connecting."""
    environ = os.environ if environ is None else environ
    url = (environ.get("MESH_PG_URL") or "").strip()
    if not url:
        raise InstanceConfigError(f"MESH_ENV=prod needs MESH_PG_URL ({URL_FORM}), which is not set")
    try:
        parsed = parse_postgres_url("MESH_PG_URL", url, (SCHEME,), "the driver dagster-postgres installs", URL_FORM)
    except PostgresUrlError as exc:
        raise InstanceConfigError(str(exc)) from None
    return PostgresTarget(parsed.host, parsed.port, parsed.database, parsed.user)


def check_postgres(environ: Mapping[str, str] | None = None) -> PostgresTarget:
    """Connect once to `MESH_PG_URL`; a refused connection or a wrong password is one clear line."""
    import psycopg2

    environ = os.environ if environ is None else environ
    target = postgres_target(environ)
    try:
        libpq_url = "postgresql" + environ["MESH_PG_URL"].strip().removeprefix(SCHEME)
        psycopg2.connect(libpq_url, connect_timeout=CONNECT_TIMEOUT_S).close()
    except psycopg2.OperationalError as exc:
        raise InstanceConfigError(
            f"MESH_PG_URL: cannot connect to PostgreSQL at {target.where}: {_reason(str(exc))}"
        ) from None
    return target


def _reason(message: str) -> str:
    """psycopg2's message without the repeated server address, on one line."""
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    first = lines[0] if lines else "unknown error"
    if " failed: " in first:
        first = first.split(" failed: ", 1)[1]
    return one_line(first.replace("FATAL:", ""))


def max_concurrent_runs(environ: Mapping[str, str]) -> int:
    raw = environ.get("MESH_MAX_CONCURRENT_RUNS")
    if raw is None or raw.strip() == "":
        return DEFAULT_MAX_CONCURRENT_RUNS
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise InstanceConfigError(f"MESH_MAX_CONCURRENT_RUNS must be a positive integer, got {raw!r}")
    return value


DEV_YAML = f"""\
{MARKER}: the embedded (SQLite) Dagster instance of this MESH_HOME.
telemetry:
  enabled: false
concurrency:
  # one writer per domain warehouse at a time, across runs: every step of a domain is in the
  # pool `warehouse_<domain>` (see mesh_platform/storage/duckdb_warehouse.py)
  pools:
    default_limit: 1
# a submitted run is launched at once (no queue: `mesh run` works without a daemon), by the mesh's
# launcher: each run in a run worker forked from a warm server (mesh_platform/orchestration/launcher.py)
run_coordinator:
  module: dagster.core.run_coordinator
  class: DefaultRunCoordinator
run_launcher:
  module: mesh_platform.orchestration.launcher
  class: MeshRunLauncher
# the daemon (`make ui`) evaluates each product's freshness policy, and frees the pool slots of runs
# that ended; run monitoring asks the launcher whether each run's worker is alive and marks a run
# whose worker died failed
freshness:
  enabled: true
run_monitoring:
  enabled: true
  poll_interval_seconds: 15
  free_slots_after_run_end_seconds: 1  # 0 would turn freeing off
"""


def prod_config(environ: Mapping[str, str]) -> dict:
    return {
        "telemetry": {"enabled": False},
        # runs, event log (materializations, asset-check results) and schedules in PostgreSQL;
        # the URL (with its password) is read from the environment when the instance loads
        "storage": {"postgres": {"postgres_url": {"env": "MESH_PG_URL"}}},
        "run_coordinator": {
            "module": "dagster",
            "class": "QueuedRunCoordinator",
            "config": {"dequeue_interval_seconds": 2},
        },
        "run_launcher": {"module": "dagster", "class": "DefaultRunLauncher"},
        "concurrency": {
            # every step that writes a domain's warehouse is in pool `warehouse_<domain>`
            "pools": {"default_limit": 1},
            "runs": {
                "max_concurrent_runs": max_concurrent_runs(environ),
                # one queued run per domain at a time; different domains run side by side
                "tag_concurrency_limits": [
                    {"key": DOMAIN_TAG, "value": {"applyLimitPerUniqueValue": True}, "limit": 1}
                ],
            },
        },
        # a run whose process died (machine lost, OOM) is marked failed instead of hanging
        "run_monitoring": {
            "enabled": True,
            "start_timeout_seconds": 300,
            "poll_interval_seconds": 30,
            "free_slots_after_run_end_seconds": 1,  # 0 turns freeing off
        },
        "freshness": {"enabled": True},  # the daemon evaluates each product's freshness policy
    }


def dagster_yaml(environ: Mapping[str, str] | None = None) -> str:
    """The dagster.yaml text for the environment `MESH_ENV` selects (validated, not connected)."""
    environ = os.environ if environ is None else environ
    if mesh_env(environ) == "dev":
        return DEV_YAML
    postgres_target(environ)
    header = (
        f"{MARKER}: the production Dagster instance (MESH_ENV=prod): PostgreSQL storage at\n"
        "# $MESH_PG_URL, queued runs (one per domain), pools for warehouse writers.\n"
    )
    return header + yaml.safe_dump(prod_config(environ), sort_keys=False)


def prepare_instance(dagster_home: Path, environ: Mapping[str, str] | None = None) -> None:
    """Write `dagster_home/dagster.yaml` for `MESH_ENV` and, in prod, check the database answers.

    A dagster.yaml that mesh did not write (no marker on its first line) is the operator's and is
    left as it is; one mesh wrote is replaced when the environment or settings change.
    """
    environ = os.environ if environ is None else environ
    text = dagster_yaml(environ)
    path = dagster_home / "dagster.yaml"
    current = path.read_text() if path.exists() else None
    if current is None or (current.startswith(MARKER) and current != text):
        dagster_home.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".dagster.yaml.{os.getpid()}")
        tmp.write_text(text)
        os.replace(tmp, path)  # concurrent `mesh` processes never see half a file
    if mesh_env(environ) == "prod":
        check_postgres(environ)
