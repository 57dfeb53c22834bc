"""OpenLineage events: the ones a real `mesh run` emitted (file transport), and delivery over HTTP."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

from mesh_platform.checks.asset_checks import check_specs
from mesh_platform.checks.evaluate import CheckOutcome
from mesh_platform.defs.domain_definitions import build_domain
from mesh_platform.governance.read import authorize
from mesh_platform.lineage.openlineage_events import AssetLineage, event_log
from mesh_platform.project.locations import MeshHome, MeshProject
from mesh_platform.project.mesh import Mesh
from tests.openlineage_schema import validator
from tests.test_check_change import publish_with_contract

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
@pytest.mark.xdist_group("e2e")
def test_a_real_run_emits_start_and_complete_for_every_product(materialized) -> None:
    from dagster import DagsterInstance

    mesh = Mesh.load(MeshProject.discover(materialized.root))
    events = [json.loads(line) for line in event_log(materialized.home).read_text().splitlines()]
    by_job: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        by_job.setdefault(event["job"]["name"], []).append(event)
    instance = DagsterInstance.from_config(str(materialized.home / "dagster"))
    check = validator()
    for event in events:
        errors = [f"{'/'.join(map(str, e.path))}: {e.message}" for e in check.iter_errors(event)]
        assert not errors, (event["job"]["name"], errors[:5])
    for descriptor, product in mesh.products():
        ref = f"{descriptor.domain}.{product.name}"
        runs = by_job.get(ref)
        assert runs, f"no OpenLineage events for {ref}"
        assert [e["eventType"] for e in runs[-2:]] == ["START", "COMPLETE"], ref
        start, complete = runs[-2:]
        assert start["run"]["runId"] == complete["run"]["runId"]
        parent = complete["run"]["facets"]["parent"]["run"]["runId"]
        assert instance.get_run_by_id(parent) is not None
        (output,) = complete["outputs"]
        assert output["name"] == ref and output["namespace"] == "mesh"
        facets = output["facets"]
        assert [f["name"] for f in facets["schema"]["fields"]] == [c.name for c in product.columns]
        assert facets["ownership"]["owners"] == [{"name": descriptor.owner_of(product), "type": "OWNER"}]
        assertions = {a["assertion"] for a in facets["dataQualityAssertions"]["assertions"]}
        assert {c.name for c in check_specs(descriptor, product)} <= assertions
        assert output["outputFacets"]["outputStatistics"]["rowCount"] > 0
        published = json.loads(
            (materialized.home / "products" / descriptor.domain / product.name / "current.json").read_text()
        )
        assert facets["version"]["datasetVersion"] == published["version"]
        assert facets["symlinks"]["identifiers"] == [{"namespace": "file", "name": published["path"], "type": "FILE"}]
        assert set(facets["columnLineage"]["fields"]) == {c.name for c in product.columns} - _no_column_inputs(facets)
        job = complete["job"]["facets"]
        assert job["ownership"]["owners"] == [{"name": descriptor.owner_of(product), "type": "OWNER"}]
        assert job["sourceCodeLocation"]["url"].startswith("file://")
        for read in complete["inputs"]:
            assert read["facets"]["symlinks"]["identifiers"] and read["facets"]["storage"]["storageLayer"]
            if read["name"].split(".")[0] != descriptor.domain:  # a product of another domain: the version read
                assert read["facets"]["version"]["datasetVersion"] and read["facets"]["schema"]["fields"]
    journey = by_job["patient_360.patient_journey"][-1]
    assert {i["name"] for i in journey["inputs"]} == {
        "patients.patient_accounts",
        "scheduling.appointments",
        "immunizations.administered_doses",
        "immunizations.test_results",
    }


def _no_column_inputs(facets: dict[str, Any]) -> set[str]:
    """Columns made from no input column (`count(*)`): the facet has no entry for them."""
    schema = {f["name"] for f in facets["schema"]["fields"]}
    return schema - set(facets["columnLineage"]["fields"])


def test_events_carry_versions_schemas_locations_owners_and_column_lineage(project: Path) -> None:
    mesh = Mesh.load(MeshProject.discover(project))
    publish_with_contract(mesh, "pharmacy.sites")
    grant = authorize(mesh, "pharmacy.sites", "site_operations")
    descriptor = mesh.descriptors["site_operations"]
    product = descriptor.product("site_daily_capacity")
    parts = build_domain(mesh, "site_operations")
    key = next(k for a in parts.assets for k in a.keys if k.path == ["site_operations", "site_daily_capacity"])
    metadata = next(a for a in parts.assets if key in a.keys).metadata_by_key[key]
    home = mesh.project.home.path
    reads = ["pharmacy.sites", "scheduling.appointments"]
    run = AssetLineage(
        home,
        descriptor,
        "site_daily_capacity",
        reads,
        "0" * 8 + "-0000-4000-8000-" + "0" * 12,
        "j",
        product,
        0,
        metadata,
    )
    run.inputs_read([grant])
    run.start()
    outcome = CheckOutcome("column_values_to_be_between__utilization", True, False, "warn", summary="ok")
    run.complete([outcome], rows=3)
    events = [json.loads(line) for line in event_log(home).read_text().splitlines()]
    check = validator()
    assert [list(check.iter_errors(e)) for e in events] == [[], []]
    complete = events[-1]
    sites = next(i for i in complete["inputs"] if i["name"] == "pharmacy.sites")["facets"]
    assert sites["version"]["datasetVersion"] == grant.published.version
    assert [f["name"] for f in sites["schema"]["fields"]] == [c.name for c in grant.product.columns]
    assert sites["symlinks"]["identifiers"][0]["name"] == grant.published.path
    assert sites["storage"] == {**sites["storage"], "storageLayer": "file", "fileFormat": "parquet"}
    job = complete["job"]["facets"]
    assert job["ownership"]["owners"] == [{"name": "team:site-ops", "type": "OWNER"}]
    assert job["sourceCodeLocation"]["path"] == "domains/site_operations/assets.py"
    (output,) = complete["outputs"]
    lineage = output["facets"]["columnLineage"]
    assert lineage["fields"]["daily_capacity"]["inputFields"] == [
        {
            "namespace": "mesh",
            "name": "pharmacy.sites",
            "field": "daily_capacity",
            "transformations": [{"type": "DIRECT", "subtype": "IDENTITY", "masking": False}],
        }
    ]
    assert {"namespace": "mesh", "name": "pharmacy.sites", "field": "site_id"} in [
        {k: f[k] for k in ("namespace", "name", "field")} for f in lineage["dataset"]
    ]
    (assertion,) = output["facets"]["dataQualityAssertions"]["assertions"]
    assert assertion["column"] == "utilization"


def test_events_go_to_an_http_endpoint_when_configured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    received: list[tuple[str, dict[str, Any]]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append((self.path, json.loads(self.rfile.read(int(self.headers["content-length"])))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("OPENLINEAGE_URL", f"http://127.0.0.1:{server.server_port}")
    try:
        mesh = Mesh.load(MeshProject.discover(ROOT))
        descriptor = mesh.descriptors["pharmacy"]
        product = descriptor.product("sites")
        run = AssetLineage(
            tmp_path, descriptor, "sites", ["raw_sites"], "0" * 8 + "-0000-4000-8000-" + "0" * 12, "pharmacy", product
        )
        run.start()
        run.fail("schema_contract: column zip is missing")
    finally:
        server.shutdown()
    assert [(path, body["eventType"]) for path, body in received] == [
        ("/api/v1/lineage", "START"),
        ("/api/v1/lineage", "FAIL"),
    ]
    assert received[1][1]["run"]["facets"]["errorMessage"]["message"] == "schema_contract: column zip is missing"
    assert [(i["namespace"], i["name"]) for i in received[0][1]["inputs"]] == [("mesh", "pharmacy.raw_sites")]
    assert not event_log(MeshHome(tmp_path).path).exists()
