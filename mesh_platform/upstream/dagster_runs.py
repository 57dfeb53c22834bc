"""Dagster internals the mesh's run path relies on, and nothing else.

- A run that `mesh run` creates is linked to its job in its code location, as a run launched from
  the UI is: its remote origin names the location of `workspace.yaml` (Dagster's own workspace
  loader reads the file) and the repository `__repository__`; its code origin is what the code
  server would record (Dagster's own `LoadedRepositories`, the class a code server loads
  definitions with). Dagster has no public call that creates a linked run without a code server
  process per location (`dagster job launch` starts one), so the run is created from the job
  loaded in this process (`DagsterInstance.create_run_for_job`, not in Dagster's API docs).
- `submit_run` takes the workspace of the request that launched the run; no coordinator or
  launcher the mesh uses reads it, so a run submitted outside a webserver passes none.
- The run launcher of the embedded instance is a `RunLauncher` configured in dagster.yaml
  (a `ConfigurableClass`); it starts Dagster's own run worker (`dagster api execute_run
  <ExecuteRunArgs>`, as the K8sRunLauncher does). Those classes live in `dagster._core` /
  `dagster._serdes` / `dagster._grpc`.

Each is pinned by `tests/test_upstream.py`: the origins are compared with those Dagster's own
workspace loading produces, and the run worker is started and must succeed.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from dagster import DagsterError, DagsterInstance, DagsterRun, JobDefinition, serialize_value
from dagster._core.launcher import CheckRunHealthResult, LaunchRunContext, RunLauncher, WorkerStatus
from dagster._core.origin import DEFAULT_DAGSTER_ENTRY_POINT, JobPythonOrigin
from dagster._core.remote_origin import RemoteJobOrigin, RemoteRepositoryOrigin
from dagster._core.workspace.load import location_origins_from_yaml_paths
from dagster._grpc.server import LoadedRepositories
from dagster._grpc.types import ExecuteRunArgs
from dagster._serdes import ConfigurableClass, ConfigurableClassData

__all__ = [
    "CheckRunHealthResult",
    "ConfigurableClass",
    "ConfigurableClassData",
    "LaunchRunContext",
    "LinkedJob",
    "RunLauncher",
    "WorkerStatus",
    "create_linked_run",
    "load_linked_job",
    "run_executable",
    "run_worker_args",
    "run_working_directory",
    "submit_run",
]

REPOSITORY = "__repository__"  # the repository name Dagster gives a code location's Definitions


class CodeLocationNotFound(LookupError):
    """workspace.yaml has no code location of that name."""


@dataclass(frozen=True)
class LinkedJob:
    """A job loaded from its code location as a code server would load it, with its origins."""

    job: JobDefinition
    remote_origin: RemoteJobOrigin
    code_origin: JobPythonOrigin


def user_error(exc: BaseException) -> BaseException:
    """The error of the user's code, out of the errors Dagster wraps it in while loading: the first
    exception in the chain that is not Dagster's (so the mesh's own `MeshDefinitionError`, which
    names the file and rule, is kept rather than the error it was raised from)."""
    seen = exc
    while isinstance(seen, DagsterError):
        inner = getattr(seen, "user_exception", None) or seen.__cause__
        if inner is None or inner is seen:
            return seen
        seen = inner
    return seen


def load_linked_job(workspace_yaml: Path, location: str, job_name: str) -> LinkedJob:
    """Load `location` of `workspace_yaml` in this process and return its job `job_name`. An error
    of the location's code is raised as the user code raised it (see `user_error`)."""
    origins = {o.location_name: o for o in location_origins_from_yaml_paths([str(workspace_yaml)])}
    if location not in origins:
        raise CodeLocationNotFound(
            f"{workspace_yaml.name} has no code location {location!r}, so Dagster cannot run it: add "
            f"`- python_file: {{relative_path: domains/{location}/definitions.py, location_name: {location}, "
            "working_directory: .}` under `load_from` (`mesh new-domain` writes it with the domain's definitions.py)"
        )
    origin = origins[location]
    target = origin.loadable_target_origin  # type: ignore[attr-defined]
    try:
        loaded = LoadedRepositories(
            target, container_image=None, entry_point=DEFAULT_DAGSTER_ENTRY_POINT, container_context={}
        )
    except Exception as exc:
        raise user_error(exc) from None
    repository = loaded.definitions_by_name[REPOSITORY]
    recon = loaded.reconstructables_by_name[REPOSITORY]
    return LinkedJob(
        repository.get_job(job_name),
        RemoteJobOrigin(RemoteRepositoryOrigin(origin, REPOSITORY), job_name),
        recon.get_reconstructable_job(job_name).get_python_origin(),
    )


def create_linked_run(instance: DagsterInstance, linked: LinkedJob, run_id: str, tags: dict[str, str]) -> DagsterRun:
    """A NOT_STARTED run of the whole job, linked to its code location, with the job's tags and `tags`."""
    return instance.create_run_for_job(
        linked.job,
        run_id=run_id,
        tags={**linked.job.tags, **tags},
        remote_job_origin=linked.remote_origin,
        job_code_origin=linked.code_origin,
    )


def submit_run(instance: DagsterInstance, run_id: str) -> DagsterRun:
    """Through the instance's run coordinator (and, when it launches at once, its run launcher)."""
    return instance.submit_run(run_id, cast(Any, None))


def run_worker_args(instance: DagsterInstance, run: DagsterRun) -> Sequence[str]:
    """The arguments of Dagster's run worker for `run` (after `dagster`): `api execute_run <args>`."""
    args = ExecuteRunArgs(
        job_origin=cast(JobPythonOrigin, run.job_code_origin),
        run_id=run.run_id,
        instance_ref=instance.get_ref(),
        set_exit_code_on_failure=True,
    )
    return ["api", "execute_run", serialize_value(args)]


def run_executable(run: DagsterRun) -> str:
    """The Python interpreter the run's code location runs with."""
    origin = cast(JobPythonOrigin, run.job_code_origin)
    return origin.executable_path or sys.executable


def run_working_directory(run: DagsterRun) -> str | None:
    """The working directory of the run's code location (where its code server would run)."""
    origin = cast(JobPythonOrigin, run.job_code_origin)
    return getattr(origin.repository_origin.code_pointer, "working_directory", None) if origin else None
