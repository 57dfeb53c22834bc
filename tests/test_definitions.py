"""A snapshot of every asset's key, owner, group, upstream keys, kinds and checks.

After an intended change: `UPDATE_SNAPSHOTS=1 pytest tests/test_definitions.py` and review the diff.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mesh_platform.defs.domain_definitions import domain_definitions
from mesh_platform.project.locations import MeshProject
from mesh_platform.project.mesh import Mesh

ROOT = Path(__file__).resolve().parent.parent
SNAPSHOT = Path(__file__).with_name("snapshots") / "asset_graph.json"


def asset_graph_snapshot(mesh: Mesh) -> dict[str, object]:
    snapshot: dict[str, object] = {}
    for domain in mesh.project.domain_names():
        graph = domain_definitions(domain, mesh).resolve_asset_graph()
        checks_by_key: dict[str, list[str]] = {}
        for check_key in graph.asset_check_keys:
            checks_by_key.setdefault(check_key.asset_key.to_user_string(), []).append(check_key.name)
        for node in graph.asset_nodes:
            if not node.is_materializable:
                continue
            key = node.key.to_user_string()
            snapshot[key] = {
                "owners": node.owners,
                "group": node.group_name,
                "upstream": sorted(k.to_user_string() for k in node.parent_keys),
                "kinds": sorted(node.kinds),
                "role": node.tags.get("mesh/role"),
                "checks": sorted(checks_by_key.get(key, [])),
                # refreshed by micro-batches of landing files: its consumers do not wait on its runs
                **({"refresh": node.tags["mesh/refresh"]} if "mesh/refresh" in node.tags else {}),
            }
    return dict(sorted(snapshot.items()))


def test_asset_graph_snapshot() -> None:
    actual = asset_graph_snapshot(Mesh.load(MeshProject.discover(ROOT)))
    if os.environ.get("UPDATE_SNAPSHOTS"):
        SNAPSHOT.write_text(json.dumps(actual, indent=2) + "\n")
    assert actual == json.loads(SNAPSHOT.read_text())


def test_every_asset_is_owned_and_grouped_by_domain() -> None:
    mesh = Mesh.load(MeshProject.discover(ROOT))
    for key, node in asset_graph_snapshot(mesh).items():
        domain = key.split("/")[0]
        assert node["group"] == domain, key
        assert node["owners"], key
        assert node["role"] in ("product", "internal"), key
    for descriptor, product in mesh.products():
        node = asset_graph_snapshot(mesh)[f"{descriptor.domain}/{product.name}"]
        assert node["owners"] == [descriptor.owner_of(product)]
        assert "schema_contract" in node["checks"]


@pytest.mark.slow
def test_dagster_validates_every_code_location(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MESH_", "DAGSTER_"))}
    env["DAGSTER_HOME"] = str(tmp_path)
    proc = subprocess.run(
        [str(Path(sys.executable).with_name("dagster")), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_orchestration_follows_the_descriptors() -> None:
    """Schedules from `schedule`, a landing sensor per landing folder, automation for consumers,
    freshness policies and freshness sensors from `freshness`."""
    mesh = Mesh.load(MeshProject.discover(ROOT))
    for domain, descriptor in mesh.descriptors.items():
        defs = domain_definitions(domain, mesh)
        schedules = {s.name: s.cron_schedule for s in defs.schedules or ()}
        assert schedules == ({f"{domain}_schedule": descriptor.schedule} if descriptor.schedule else {}), domain
        sensors = {s.name for s in defs.sensors or ()}
        assert (f"{domain}_automation" in sensors) == bool(descriptor.consumes), domain
        assert (f"{domain}_freshness" in sensors) == any(p.freshness for p in descriptor.products), domain
        graph = defs.resolve_asset_graph()
        for node in graph.asset_nodes:
            if not node.is_materializable:
                continue
            assert (node.automation_condition is not None) == bool(descriptor.consumes), node.key
            product = descriptor.product(node.key.path[-1])
            policy = node.freshness_policy
            if product is not None and product.freshness:
                assert (
                    policy is not None
                    and policy.fail_window.to_timedelta().total_seconds() == product.freshness_seconds
                )
            else:
                assert policy is None, node.key
    assert "scheduling__appointment_events_landing" in {
        s.name for s in domain_definitions("scheduling", mesh).sensors or ()
    }


def test_a_dbt_model_over_a_streamed_asset_is_tagged_streamed(tmp_path: Path) -> None:
    """A dbt model built on what a landing folder feeds is refreshed by the same micro-batches, so
    its consumers must not wait on its runs either (automation ignores dependencies tagged
    `mesh/refresh: stream`); a model that reads none of it is not tagged."""
    from tests.conftest import copy_project

    root = copy_project(tmp_path / "project")
    dbt = root / "dbt_projects" / "scheduling"
    (dbt / "models").mkdir(parents=True)
    (dbt / "dbt_project.yml").write_text(
        (root / "dbt_projects" / "patients" / "dbt_project.yml").read_text().replace("patients", "scheduling")
    )
    (dbt / "models" / "_sources.yml").write_text(
        "version: 2\nsources:\n  - name: scheduling\n    schema: main\n    tables:\n      - name: appointments\n"
    )
    (dbt / "models" / "booked_per_site.sql").write_text(
        "select site_id, count(*) as booked from {{ source('scheduling', 'appointments') }} group by site_id\n"
    )
    (dbt / "models" / "booked_sites.sql").write_text("select distinct site_id from {{ ref('booked_per_site') }}\n")
    (dbt / "models" / "constant.sql").write_text("select 1 as one\n")
    graph = domain_definitions("scheduling", Mesh.load(MeshProject.discover(root))).resolve_asset_graph()
    refresh = {node.key.to_user_string(): node.tags.get("mesh/refresh") for node in graph.asset_nodes}
    assert refresh["scheduling/booked_per_site"] == refresh["scheduling/booked_sites"] == "stream"
    assert refresh["scheduling/constant"] is None
    assert refresh["scheduling/appointments"] == "stream"
