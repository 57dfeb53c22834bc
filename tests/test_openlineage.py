"""OpenLineage events: the ones a real `mesh run` emitted (file transport), and delivery over HTTP."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

from mesh_platform.checks.specs import check_specs
from mesh_platform.mesh import Mesh
from mesh_platform.openlineage import AssetLineage, event_log
from mesh_platform.project import MeshHome, MeshProject

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
    journey = by_job["patient_360.patient_journey"][-1]
    assert {i["name"] for i in journey["inputs"]} == {
        "patients.patient_accounts",
        "scheduling.appointments",
        "immunizations.administered_doses",
        "immunizations.test_results",
    }


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
