"""deploy/: the Helm values and the Dockerfile refer to things that exist.

Every domain under domains/ has a user-code deployment whose gRPC arguments name its
definitions file; the chart keys used are ones Dagster's chart (dagster/dagster 1.13) declares; the
instance limits match the ones `MESH_ENV=prod` writes; the Dockerfile copies only what exists.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
import yaml

from mesh_platform.project.dagster_instance import DOMAIN_TAG

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"

# top-level keys of dagster/dagster's values (helm/dagster/schema/.../dagster/values.py)
CHART_KEYS = {
    "global",
    "dagsterWebserver",
    "dagster-user-deployments",
    "postgresql",
    "generatePostgresqlPasswordSecret",
    "generateCeleryConfigSecret",
    "rabbitmq",
    "redis",
    "flower",
    "ingress",
    "imagePullSecrets",
    "computeLogManager",
    "scheduler",
    "runLauncher",
    "pythonLogs",
    "dagsterDaemon",
    "busybox",
    "migrate",
    "telemetry",
    "serviceAccount",
    "retention",
    "concurrency",
    "additionalInstanceConfig",
}
USER_DEPLOYMENTS_KEYS = {"enabled", "enableSubchart", "imagePullSecrets", "deployments"}
DEPLOYMENT_KEYS = {
    "name", "image", "port", "dagsterApiGrpcArgs", "codeServerArgs", "includeConfigInLaunchedRuns", "env",
    "envConfigMaps", "envSecrets", "annotations", "nodeSelector", "affinity", "tolerations", "podSecurityContext",
    "securityContext", "resources", "livenessProbe", "readinessProbe", "startupProbe", "labels", "volumeMounts",
    "volumes", "schedulerName",
}  # fmt: skip
IMAGE_KEYS = {"repository", "tag", "pullPolicy"}
POSTGRESQL_KEYS = {
    "postgresqlScheme", "image", "enabled", "postgresqlHost", "postgresqlUsername", "postgresqlPassword",
    "postgresqlDatabase", "postgresqlParams", "service",
}  # fmt: skip
DAEMON_KEYS = {
    "schedulerName", "volumeMounts", "volumes", "enabled", "image", "runCoordinator", "heartbeatTolerance", "env",
    "envConfigMaps", "envSecrets", "deploymentLabels", "labels", "nodeSelector", "affinity", "tolerations",
    "podSecurityContext", "securityContext", "resources", "livenessProbe", "readinessProbe", "startupProbe",
    "annotations", "runMonitoring", "runRetries", "sensors", "schedules",
}  # fmt: skip
QUEUED_COORDINATOR_KEYS = {
    "maxConcurrentRuns", "tagConcurrencyLimits", "dequeueIntervalSeconds", "dequeueNumWorkers", "dequeueUseThreads",
}  # fmt: skip
CONCURRENCY_KEYS = {"enabled", "pools", "runs"}
RUN_LAUNCHER_TYPES = {"K8sRunLauncher", "CeleryK8sRunLauncher", "CustomRunLauncher"}
K8S_RUN_LAUNCHER_KEYS = {
    "image", "imagePullPolicy", "jobNamespace", "loadInclusterConfig", "kubeconfigFile", "envConfigMaps",
    "envSecrets", "envVars", "volumeMounts", "volumes", "labels", "failPodOnRunFailure", "resources",
    "securityContext", "podSecurityContext", "runK8sConfig",
}  # fmt: skip


@pytest.fixture(scope="module")
def values() -> dict:
    return yaml.safe_load((DEPLOY / "values.yaml").read_text())


def domains() -> list[str]:
    return sorted(p.parent.name for p in (ROOT / "domains").glob("*/domain.yaml"))


def test_only_known_chart_keys(values: dict) -> None:
    assert set(values) <= CHART_KEYS, set(values) - CHART_KEYS
    assert set(values["dagster-user-deployments"]) <= USER_DEPLOYMENTS_KEYS
    assert set(values["postgresql"]) <= POSTGRESQL_KEYS
    assert set(values["dagsterDaemon"]) <= DAEMON_KEYS
    coordinator = values["dagsterDaemon"]["runCoordinator"]
    assert coordinator["enabled"] is True and coordinator["type"] == "QueuedRunCoordinator"
    assert set(coordinator["config"]["queuedRunCoordinator"]) <= QUEUED_COORDINATOR_KEYS
    assert set(values["concurrency"]) <= CONCURRENCY_KEYS
    assert values["runLauncher"]["type"] in RUN_LAUNCHER_TYPES
    assert set(values["runLauncher"]["config"]["k8sRunLauncher"]) <= K8S_RUN_LAUNCHER_KEYS
    for deployment in values["dagster-user-deployments"]["deployments"]:
        assert set(deployment) <= DEPLOYMENT_KEYS, (deployment["name"], set(deployment) - DEPLOYMENT_KEYS)
        assert set(deployment["image"]) <= IMAGE_KEYS


def test_every_domain_has_a_user_deployment(values: dict) -> None:
    user = values["dagster-user-deployments"]
    assert user["enabled"] is True
    by_file = {}
    for deployment in user["deployments"]:
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", deployment["name"]), "a Kubernetes name"
        args = deployment["dagsterApiGrpcArgs"]
        assert "-f" in args, args
        target = args[args.index("-f") + 1]
        assert (ROOT / target).is_file(), f"{deployment['name']}: {target} does not exist"
        by_file[target] = deployment
        assert deployment["image"]["repository"] and deployment["image"]["tag"]
        assert deployment["port"] > 0
    assert sorted(by_file) == [f"domains/{d}/definitions.py" for d in domains()]
    for domain in domains():
        assert by_file[f"domains/{domain}/definitions.py"]["name"] == domain.replace("_", "-")
    assert len({d["name"] for d in user["deployments"]}) == len(user["deployments"])


def test_workspace_locations_are_deployed(values: dict) -> None:
    workspace = yaml.safe_load((ROOT / "workspace.yaml").read_text())
    files = {e["python_file"]["relative_path"] for e in workspace["load_from"]}
    deployed = {d["dagsterApiGrpcArgs"][d["dagsterApiGrpcArgs"].index("-f") + 1] for d in values[
        "dagster-user-deployments"]["deployments"]}  # fmt: skip
    assert files == deployed


def test_instance_limits_match_the_prod_instance(values: dict) -> None:
    from mesh_platform.project.dagster_instance import prod_config

    prod = prod_config({})["concurrency"]
    concurrency = values["concurrency"]
    assert concurrency["enabled"] is True
    assert concurrency["pools"]["defaultLimit"] == prod["pools"]["default_limit"] == 1
    limits = concurrency["runs"]["tagConcurrencyLimits"]
    assert limits == prod["runs"]["tag_concurrency_limits"]
    assert limits[0]["key"] == DOMAIN_TAG
    assert values["postgresql"]["enabled"] is False and values["postgresql"]["postgresqlHost"]
    assert "postgresqlPassword" not in values["postgresql"], "the password comes from a Secret"
    assert values["generatePostgresqlPasswordSecret"] is False and values["global"]["postgresqlSecretName"]


def dockerfile() -> list[tuple[str, str]]:
    text = (DEPLOY / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "") for line in lines]


def test_dockerfile_builds_one_domain_from_files_that_exist(values: dict) -> None:
    instructions = dockerfile()
    assert instructions[0] == ("FROM", "python:3.11-slim")
    assert ("ARG", "DOMAIN") in instructions
    copies = [args for op, args in instructions if op == "COPY"]
    assert copies
    for args in copies:
        parts = [p for p in shlex.split(args) if not p.startswith("--")]
        for source in parts[:-1]:
            assert (ROOT / source).exists(), f"COPY source {source} does not exist"
    runs = " ".join(args for op, args in instructions if op == "RUN")
    assert "uv sync --frozen" in runs and "mesh prepare" in runs
    assert (ROOT / "uv.lock").exists()
    (cmd,) = [args for op, args in instructions if op == "CMD"]
    assert "dagster api grpc" in cmd and "domains/${DOMAIN}/definitions.py" in cmd
    exposed = {int(args) for op, args in instructions if op == "EXPOSE"}
    assert exposed == {d["port"] for d in values["dagster-user-deployments"]["deployments"]}


def test_docker_context_keeps_local_state_out() -> None:
    ignored = (DEPLOY / "Dockerfile.dockerignore").read_text().split()
    for path in (".venv", ".mesh", "dbt_projects/*/target"):
        assert path in ignored


def test_every_domain_runs_under_its_own_service_account(project: Path) -> None:
    """deploy/domain-accounts.yaml has one ServiceAccount per domain, and each domain's jobs tag their
    runs so that the K8sRunLauncher starts the run's pod under it."""
    from mesh_platform.defs.domain_definitions import domain_definitions, service_account
    from mesh_platform.project.locations import MeshProject
    from mesh_platform.project.mesh import Mesh

    accounts = [d for d in yaml.safe_load_all((DEPLOY / "domain-accounts.yaml").read_text()) if d]
    assert all(a["kind"] == "ServiceAccount" for a in accounts)
    by_domain = {a["metadata"]["labels"]["mesh/domain"]: a["metadata"]["name"] for a in accounts}
    assert sorted(by_domain) == domains()
    mesh = Mesh.load(MeshProject.discover(project))
    for domain in ("pharmacy", "scheduling"):
        assert by_domain[domain] == service_account(domain)
        defs = domain_definitions(domain, mesh)
        for job in defs.resolve_all_job_defs():
            if job.name.startswith("__"):
                continue
            config = json.loads(job.tags["dagster-k8s/config"])
            assert config == {"pod_spec_config": {"service_account_name": by_domain[domain]}}
