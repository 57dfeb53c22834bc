"""The real Dagster webserver over a materialized mesh, asked through GraphQL and driven in Debian's
chromium: every product carries its descriptor (owners, group, description, value, column schema with
classifications, kinds, checks and their results, lineage across domains), `make ui` binds to
loopback only, a product materializes from the UI, and a domain whose code breaks shows its error
without hiding the others.

One webserver serves the whole module (starting it costs about a minute here): it is started with the
exact command `make ui` runs, over a copy of the project seeded at scale 0.02 and run by `mesh run`
into the same Dagster instance (`MESH_HOME/dagster`). Screenshots go to pytest's tmp dir and are
copied to `$MESH_TEST_ARTIFACTS/ui` (default `.mesh/test-artifacts/ui`).
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import json
import os
import re
import shlex
import shutil
import socket
import struct
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from devtools.ui_screenshot import (
    CHROMIUM,
    Webserver,
    free_port,
    launch_chromium,
    location_entries,
    new_page,
    open_global_lineage,
    webserver,
)
from mesh_platform.defs.domain_definitions import _import_domain_code, _suites
from mesh_platform.descriptor.model import Descriptor, Product
from mesh_platform.project.locations import MeshProject
from mesh_platform.project.mesh import Mesh
from mesh_platform.sql.syntax import SQL_TYPES
from tests.conftest import E2E_SCALE, ROOT, copy_project, mesh_env, run_mesh_cli

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("ui")]

ASSETS_QUERY = """{ assetNodes {
  assetKey { path } groupName description kinds
  owners { __typename ... on TeamAssetOwner { team } ... on UserAssetOwner { email } }
  tags { key value }
  metadataEntries { __typename label
    ... on TextMetadataEntry { text }
    ... on TableSchemaMetadataEntry { schema { columns { name type description tags { key value } } } } }
  dependencyKeys { path }
  repository { location { name } }
  assetMaterializations(limit: 1) { runId }
  assetChecksOrError { __typename ... on AssetChecks { checks { name blocking
    executionForLatestMaterialization { runId status evaluation { success metadataEntries { label } } } } } } } }"""

RUNS_QUERY = """{ runsOrError(limit: 20) { ... on Runs { results {
  runId status assetSelection { path } tags { key value } } } } }"""

RELOAD_MUTATION = """mutation($name: String!) { reloadRepositoryLocation(repositoryLocationName: $name) {
  __typename ... on WorkspaceLocationEntry { loadStatus } ... on PythonError { message } } }"""

BROKEN_DOMAIN = "site_operations"


@dataclass
class UiMesh:
    root: Path
    home: Path
    env: dict[str, str]
    server: Webserver
    command: list[str]
    shots: Path
    artifacts: Path

    def mesh(self) -> Mesh:
        return Mesh.load(MeshProject.discover(self.root))

    def products_json(self) -> dict[str, dict[str, Any]]:
        proc = run_mesh_cli("products", "--json", env=self.env, cwd=self.root, check=True)
        return {f"{p['domain']}.{p['name']}": p for p in json.loads(proc.stdout)}

    def asset_nodes(self) -> dict[tuple[str, ...], dict[str, Any]]:
        nodes = self.server.graphql(ASSETS_QUERY)["assetNodes"]
        keys = [tuple(n["assetKey"]["path"]) for n in nodes]
        assert len(keys) == len(set(keys)), "an asset key is defined by more than one code location"
        return dict(zip(keys, nodes, strict=True))

    def screenshot(self, page: Any, name: str) -> Path:
        """Under pytest's tmp dir, and copied to the artifacts folder."""
        path = self.shots / f"{name}.png"
        page.screenshot(path=str(path))
        self.artifacts.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, self.artifacts / path.name)
        return path


def make_ui_command(port: int, home: Path, *overrides: str) -> list[str]:
    """The `dagster dev` command line `make ui` runs (dry run), with the virtualenv's path made absolute."""
    out = subprocess.run(
        ["make", "-n", "--no-print-directory", "ui", f"UI_PORT={port}", f"MESH_HOME={home}", *overrides],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    (line,) = [line for line in out.splitlines() if " dev -w workspace.yaml" in line]
    argv = shlex.split(line)
    argv[0] = str((ROOT / argv[0]).resolve())
    return argv


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UiMesh]:
    base = tmp_path_factory.mktemp("ui")
    root, home = copy_project(base / "project"), base / "home"
    env = {**mesh_env(root, home), "DAGSTER_HOME": str(home / "dagster")}
    run_mesh_cli("seed", "--scale", E2E_SCALE, env=env, cwd=root, check=True)
    run_mesh_cli("run", env=env, cwd=root, check=True)
    port = free_port()
    command = make_ui_command(port, home)
    (home / "dagster").mkdir(parents=True, exist_ok=True)
    shots = base / "screenshots"
    shots.mkdir()
    artifacts = Path(os.environ.get("MESH_TEST_ARTIFACTS") or ROOT / ".mesh" / "test-artifacts") / "ui"
    with webserver(root, env, base / "webserver.log", command=command, port=port) as server:
        failed = {e["name"]: e["locationOrLoadError"] for e in location_entries(server.port)}
        failed = {k: v for k, v in failed.items() if v["__typename"] != "RepositoryLocation"}
        assert not failed, f"code locations failed to load: {failed}"
        yield UiMesh(root, home, env, server, command, shots, artifacts)


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed (.ci/run installs Debian's chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = launch_chromium(p)
        yield browser
        browser.close()


# --- the webserver listens on loopback only ---------------------------------------------------


def _listening_addresses(port: int) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """Local addresses of the sockets listening on `port` in this network namespace."""
    found = []
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        with contextlib.suppress(FileNotFoundError):
            for row in Path(table).read_text().splitlines()[1:]:
                fields = row.split()
                address, _, port_hex = fields[1].partition(":")
                if fields[3] != "0A" or int(port_hex, 16) != port:  # 0A: LISTEN
                    continue
                raw = bytes.fromhex(address)
                # the kernel prints each 32-bit word in host (little-endian) order
                words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
                found.append(ipaddress.ip_address(words if width == 32 else words[:4]))
    return found


def _is_loopback(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    mapped = getattr(address, "ipv4_mapped", None)
    return (mapped or address).is_loopback


def _non_loopback_ipv4() -> list[str]:
    addresses = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for _, name in socket.if_nameindex():
            with contextlib.suppress(OSError):  # interfaces without an IPv4 address
                packed = fcntl.ioctl(s.fileno(), 0x8915, struct.pack("256s", name[:15].encode()))  # SIOCGIFADDR
                address = socket.inet_ntoa(packed[20:24])
                if not ipaddress.ip_address(address).is_loopback:
                    addresses.append(address)
    return addresses


def test_make_ui_binds_loopback_only(ui: UiMesh) -> None:
    # the server under test was started with exactly what `make ui` runs by default...
    assert ui.command[ui.command.index("-h") + 1] == "127.0.0.1"
    assert re.search(r"^UI_HOST \?= 127\.0\.0\.1$", (ROOT / "Makefile").read_text(), re.MULTILINE)
    # ...and UI_HOST is what decides it
    exposed = make_ui_command(3000, ui.home, "UI_HOST=0.0.0.0")
    assert exposed[exposed.index("-h") + 1] == "0.0.0.0"

    listening = _listening_addresses(ui.server.port)
    assert listening, f"nothing listens on port {ui.server.port}"
    assert all(_is_loopback(a) for a in listening), f"the webserver listens on {listening}"
    for address in _non_loopback_ipv4():
        with socket.socket() as s, pytest.raises(OSError):
            s.settimeout(3)
            s.connect((address, ui.server.port))
    with socket.create_connection(("127.0.0.1", ui.server.port), timeout=5):
        pass


# --- every product, as the descriptors declare it ----------------------------------------------


def _metadata(node: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {m["label"]: m for m in node["metadataEntries"]}


def _owner(entry: dict[str, Any]) -> str:
    return f"team:{entry['team']}" if entry["__typename"] == "TeamAssetOwner" else entry["email"]


def _dbt_models_and_tests(root: Path, domain: str) -> tuple[set[str], dict[str, set[str]]]:
    manifest_path = root / "dbt_projects" / domain / "target" / "manifest.json"
    if not manifest_path.exists():
        return set(), {}
    nodes = json.loads(manifest_path.read_text())["nodes"]
    models = {n["name"] for n in nodes.values() if n["resource_type"] == "model"}
    tests: dict[str, set[str]] = {}
    for node in nodes.values():
        if node["resource_type"] == "test" and node.get("attached_node"):
            tests.setdefault(nodes[node["attached_node"]]["name"], set()).add(node["name"])
    return models, tests


def _expected_checks(mesh: Mesh, descriptor: Descriptor, product: Product, dbt_tests: set[str]) -> set[str]:
    """schema_contract, one per descriptor expectation, one per @suite in the domain's code, its dbt tests."""
    suites = _suites(_import_domain_code(mesh, descriptor.domain)).get(product.name, [])
    return (
        {"schema_contract"}
        | {name for name, _ in product.named_expectations()}
        | {s.check_name for s in suites}
        | dbt_tests
    )


def _cross_domain_upstream(
    nodes: dict[tuple[str, ...], dict[str, Any]], key: tuple[str, ...], domain: str
) -> set[tuple[str, ...]]:
    """Other domains' assets `key` is built from, through its own domain's assets."""
    found, seen, stack = set(), set(), [key]
    while stack:
        for dep in nodes[stack.pop()]["dependencyKeys"]:
            dep_key = tuple(dep["path"])
            if dep_key[0] != domain:
                found.add(dep_key)
            elif dep_key not in seen:
                seen.add(dep_key)
                stack.append(dep_key)
    return found


def test_every_product_carries_its_descriptor(ui: UiMesh) -> None:
    mesh = ui.mesh()
    assert not mesh.problems, mesh.problems
    nodes = ui.asset_nodes()
    products = mesh.products()
    assert {d.domain for d, _ in products} == set(mesh.project.domain_names())
    reads_by_domain: dict[str, set[tuple[str, ...]]] = {}
    for descriptor, product in products:
        domain = descriptor.domain
        key = (domain, product.name)
        assert key in nodes, f"{domain}.{product.name} is not in the webserver's asset graph"
        node = nodes[key]
        where = f"{domain}.{product.name}"
        assert node["groupName"] == domain, where
        assert node["repository"]["location"]["name"] == domain, where
        assert [_owner(o) for o in node["owners"]] == [descriptor.owner_of(product)], where
        assert node["description"].startswith(product.description.strip()), where
        assert product.value.strip() in node["description"], where
        dbt_models, _ = _dbt_models_and_tests(ui.root, domain)
        assert set(node["kinds"]) == {"duckdb", "dbt" if product.name in dbt_models else "python"}, where
        tags = {t["key"]: t["value"] for t in node["tags"]}
        pii = [c.name for c in product.columns if c.classification == "pii"]
        assert tags["mesh/role"] == "product" and tags["mesh/domain"] == domain, where
        assert tags["mesh/pii"] == ("true" if pii else "false"), where

        meta = _metadata(node)
        assert meta["mesh/value"]["text"] == product.value.strip(), where
        assert meta["mesh/business_process"]["text"] == descriptor.business_process, where
        assert meta["mesh/domain"]["text"] == domain, where
        assert meta["mesh/consumers"]["text"] == (", ".join(product.access.consumers) or "(none)"), where
        assert meta["mesh/pii_columns"]["text"] == (", ".join(pii) or "(none)"), where
        assert meta["mesh/freshness"]["text"] == (product.freshness or "(none)"), where
        columns = meta["dagster/column_schema"]["schema"]["columns"]
        assert [c["name"] for c in columns] == [c.name for c in product.columns], where
        for shown, declared in zip(columns, product.columns, strict=True):
            column_tags = {t["key"]: t["value"] for t in shown["tags"]}
            assert shown["type"] == SQL_TYPES[declared.type], (where, declared.name)
            assert shown["description"] == declared.description, (where, declared.name)
            assert column_tags.get("classification") == declared.classification, (where, declared.name)
            assert column_tags.get("mask") == declared.mask_policy, (where, declared.name)

        # lineage: what it reads of other domains, through its own domain's assets, is consumed products
        upstream = _cross_domain_upstream(nodes, key, domain)
        assert {".".join(k) for k in upstream} <= set(descriptor.consumes), where
        for dep in node["dependencyKeys"]:
            dep_key = tuple(dep["path"])
            assert dep_key[0] == domain or ".".join(dep_key) in descriptor.consumes, (where, dep_key)
            assert nodes[dep_key]["groupName"] == dep_key[0], (where, dep_key)
        reads_by_domain.setdefault(domain, set()).update(upstream)
    for descriptor in mesh.descriptors.values():
        read = {".".join(k) for k in reads_by_domain.get(descriptor.domain, set())}
        assert read == set(descriptor.consumes), f"{descriptor.domain} reads {read}, consumes {descriptor.consumes}"


def test_checks_and_their_results_after_the_run(ui: UiMesh) -> None:
    mesh = ui.mesh()
    nodes = ui.asset_nodes()
    catalog = ui.products_json()
    for descriptor, product in mesh.products():
        where = f"{descriptor.domain}.{product.name}"
        node = nodes[(descriptor.domain, product.name)]
        _, dbt_tests = _dbt_models_and_tests(ui.root, descriptor.domain)
        assert node["assetChecksOrError"]["__typename"] == "AssetChecks", where
        checks = {c["name"]: c for c in node["assetChecksOrError"]["checks"]}
        assert set(checks) == _expected_checks(mesh, descriptor, product, dbt_tests.get(product.name, set())), where
        for name, expectation in product.named_expectations():
            assert checks[name]["blocking"] == (expectation.severity == "error"), (where, name)
        assert checks["schema_contract"]["blocking"], where

        (latest,) = node["assetMaterializations"]
        status = catalog[where]["status"]
        assert status["last_run"] == "published" and status["run_id"] == latest["runId"], where
        recorded = {c["name"]: c for c in status["checks"]}
        for name, check in checks.items():
            execution = check["executionForLatestMaterialization"]
            assert execution is not None, f"{where}: check {name} has no result for its latest materialization"
            assert execution["runId"] == latest["runId"], (where, name)
            assert execution["status"] == ("SUCCEEDED" if execution["evaluation"]["success"] else "FAILED"), (
                where,
                name,
            )
            if name in recorded:  # what the mesh recorded for the same run
                assert execution["evaluation"]["success"] == recorded[name]["passed"], (where, name)
            labels = {m["label"] for m in execution["evaluation"]["metadataEntries"]}
            if name == "schema_contract":
                assert {"missing", "extra", "retyped"} <= labels, (where, labels)
            elif name in dict(product.named_expectations()):
                assert {"expectation", "success", "unexpected_count", "unexpected_percent"} <= labels, (where, labels)
        assert set(recorded) <= set(checks), where


JOB_RUNS_QUERY = """query($selector: PipelineSelector!) { pipelineOrError(params: $selector) {
  __typename ... on Pipeline { runs(limit: 50) { runId status tags { key value }
  repositoryOrigin { repositoryLocationName repositoryName } } } } }"""
REEXECUTE_MUTATION = """mutation($params: ReexecutionParams!) { launchRunReexecution(reexecutionParams: $params) {
  __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message } } }"""
RUN_QUERY = """query($id: ID!) { runOrError(runId: $id) { ... on Run { status parentRunId
  tags { key value } } } }"""


def test_a_mesh_run_run_is_listed_with_its_job_and_reexecutes_from_the_ui(ui: UiMesh) -> None:
    """The run `mesh run` made is in its job's run history (the job's page), linked to its code
    location, and re-executing it from the UI (the mutation the UI's "Re-execute all" sends) succeeds."""
    selector = {"repositoryLocationName": "pharmacy", "repositoryName": "__repository__", "pipelineName": "pharmacy"}
    job = ui.server.graphql(JOB_RUNS_QUERY, {"selector": selector})["pipelineOrError"]
    assert job["__typename"] == "Pipeline", job
    from_cli = [r for r in job["runs"] if _tag(r, "mesh/launched_by") == "mesh run"]
    assert from_cli, f"no run of `mesh run` in the job's history: {job['runs']}"
    parent = from_cli[-1]  # the fixture's `mesh run`
    assert parent["status"] == "SUCCESS"
    assert parent["repositoryOrigin"] == {"repositoryLocationName": "pharmacy", "repositoryName": "__repository__"}

    params = {"parentRunId": parent["runId"], "strategy": "ALL_STEPS"}
    launched = ui.server.graphql(REEXECUTE_MUTATION, {"params": params})["launchRunReexecution"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    run_id = launched["run"]["runId"]
    deadline = time.monotonic() + 600
    while (run := ui.server.graphql(RUN_QUERY, {"id": run_id})["runOrError"])["status"] not in (
        "SUCCESS",
        "FAILURE",
        "CANCELED",
    ):
        assert time.monotonic() < deadline, f"the re-execution did not finish: {run}"
        time.sleep(2)
    assert run["status"] == "SUCCESS" and run["parentRunId"] == parent["runId"], run
    job = ui.server.graphql(JOB_RUNS_QUERY, {"selector": selector})["pipelineOrError"]
    assert run_id in {r["runId"] for r in job["runs"]}


VISIBLE_MS = 60_000  # the UI renders after its GraphQL answers; a busy CI machine is slow

# --- in chromium -------------------------------------------------------------------------------


@pytest.mark.browser
def test_lineage_graph_and_product_page_in_chromium(ui: UiMesh, chromium: Any) -> None:
    mesh = ui.mesh()
    page = new_page(chromium, 1920, 3200)
    open_global_lineage(page, ui.server.url)
    graph = page.locator("svg").filter(has_text="patient_journey").first
    for domain in mesh.project.domain_names():
        expect(graph.get_by_text(domain, exact=True).first).to_be_visible(timeout=VISIBLE_MS)
    for _, product in mesh.products():
        expect(graph.get_by_text(product.name, exact=True).first).to_be_visible(timeout=VISIBLE_MS)
    expect(graph.get_by_text("patient-experience", exact=True).first).to_be_visible(timeout=VISIBLE_MS)
    ui.screenshot(page, "lineage-graph")

    descriptor, product = mesh.product("patient_360.patient_journey")
    page.set_viewport_size({"width": 1600, "height": 2400})
    page.goto(f"{ui.server.url}/assets/patient_360/patient_journey")
    page.get_by_text("Latest materialization").wait_for()
    definition = page.get_by_text("Owners").locator("xpath=..")
    expect(definition.get_by_text("patient-experience", exact=True)).to_be_visible(timeout=VISIBLE_MS)
    expect(page.get_by_text(product.description.strip()).first).to_be_visible(timeout=VISIBLE_MS)
    expect(page.get_by_text(product.value.strip()[:60]).first).to_be_visible(timeout=VISIBLE_MS)
    for column in product.columns:
        expect(page.get_by_text(column.name, exact=True).first).to_be_visible(timeout=VISIBLE_MS)
        expect(page.get_by_text(f"classification: {column.classification}").first).to_be_visible(timeout=VISIBLE_MS)
    expect(page.get_by_text(descriptor.business_process).first).to_be_visible(timeout=VISIBLE_MS)
    ui.screenshot(page, "product-page")
    page.close()


def _tag(run: dict[str, Any], key: str) -> str | None:
    return next((t["value"] for t in run["tags"] if t["key"] == key), None)


def _runs(ui: UiMesh) -> dict[str, dict[str, Any]]:
    return {r["runId"]: r for r in ui.server.graphql(RUNS_QUERY)["runsOrError"]["results"]}


@pytest.mark.browser
def test_materialize_a_product_from_the_ui(ui: UiMesh, chromium: Any) -> None:
    mesh = ui.mesh()
    descriptor, product = mesh.product("pharmacy.sites")
    before = set(_runs(ui))
    page = new_page(chromium, 1600, 1200)
    page.goto(f"{ui.server.url}/assets/pharmacy/sites")
    page.get_by_text("Latest materialization").wait_for()
    page.get_by_role("button", name=re.compile(r"\bMaterialize$")).click()
    page.get_by_text("Launched run").wait_for(timeout=60_000)

    deadline = time.monotonic() + 300
    while True:
        new = [r for rid, r in _runs(ui).items() if rid not in before]
        # the daemon's automation may update a consumer (site_operations) meanwhile: its runs are
        # tagged as such; the UI's run is the one the button launched
        launched = [r for r in new if _tag(r, "dagster/from_ui") == "true"]
        if launched and launched[0]["status"] in ("SUCCESS", "FAILURE", "CANCELED"):
            break
        assert time.monotonic() < deadline, f"the run launched from the UI did not finish: {new}"
        time.sleep(2)
    (run,) = launched
    others = [r for r in new if r is not run]
    assert all(_tag(r, "dagster/auto_materialize") == "true" for r in others), others
    assert [k["path"] for k in run["assetSelection"]] == [["pharmacy", "sites"]]
    assert run["status"] == "SUCCESS", run

    node = ui.asset_nodes()[("pharmacy", "sites")]
    assert node["assetMaterializations"][0]["runId"] == run["runId"]
    checks = node["assetChecksOrError"]["checks"]
    assert {c["name"] for c in checks} == _expected_checks(mesh, descriptor, product, set())
    for check in checks:
        execution = check["executionForLatestMaterialization"]
        assert execution["runId"] == run["runId"] and execution["status"] == "SUCCEEDED", check
    assert ui.products_json()["pharmacy.sites"]["status"]["run_id"] == run["runId"]

    page.goto(f"{ui.server.url}/runs/{run['runId']}")
    page.get_by_text("Success", exact=True).first.wait_for(timeout=60_000)
    ui.screenshot(page, "materialize-run")
    page.goto(f"{ui.server.url}/assets/pharmacy/sites?view=checks")
    for check in checks:  # names are middle-truncated on screen; the full name is in the page
        page.get_by_text(check["name"], exact=True).first.wait_for(state="attached", timeout=30_000)
    page.wait_for_timeout(1000)
    ui.screenshot(page, "materialize-checks")
    page.close()


# --- a broken domain shows its error and hides nothing else ------------------------------------


@contextlib.contextmanager
def broken_domain(ui: UiMesh, domain: str = BROKEN_DOMAIN) -> Iterator[None]:
    """`domain`'s code made unimportable and its code location reloaded; restored on exit."""
    code = ui.root / "domains" / domain / "assets.py"
    original = code.read_text()
    code.write_text(original + "\ndef broken(:\n")
    try:
        assert ui.server.graphql(RELOAD_MUTATION, {"name": domain})["reloadRepositoryLocation"]["loadStatus"] == (
            "LOADED"
        )
        yield
    finally:
        code.write_text(original)
        ui.server.graphql(RELOAD_MUTATION, {"name": domain})


def test_broken_domain_shows_its_error_without_hiding_the_others(ui: UiMesh) -> None:
    mesh = ui.mesh()
    with broken_domain(ui):
        by_name = {e["name"]: e["locationOrLoadError"] for e in location_entries(ui.server.port)}
        assert set(by_name) == set(mesh.project.domain_names())
        broken = by_name.pop(BROKEN_DOMAIN)
        assert broken["__typename"] == "PythonError"
        causes = " ".join(c["message"] for c in broken["causes"])
        assert f"domains/{BROKEN_DOMAIN}/assets.py" in causes and "domain-code-imports" in causes
        assert all(v["__typename"] == "RepositoryLocation" for v in by_name.values())
        nodes = ui.asset_nodes()
        for descriptor, product in mesh.products():
            if descriptor.domain != BROKEN_DOMAIN:
                assert nodes[(descriptor.domain, product.name)]["groupName"] == descriptor.domain
    loaded = {e["name"]: e["locationOrLoadError"]["__typename"] for e in location_entries(ui.server.port)}
    assert loaded[BROKEN_DOMAIN] == "RepositoryLocation", "the domain did not load again once repaired"


@pytest.mark.browser
def test_broken_domain_error_in_chromium(ui: UiMesh, chromium: Any) -> None:
    page = new_page(chromium, 1600, 1000)
    with broken_domain(ui):
        page.goto(f"{ui.server.url}/locations")
        failed = page.get_by_text("Failed", exact=True)
        failed.wait_for(timeout=30_000)
        assert failed.count() == 1
        # the innermost element holding both the location's name and "Failed" is its row
        row = page.locator("div").filter(has_text=BROKEN_DOMAIN).filter(has=failed).last
        domains = ui.mesh().project.domain_names()
        assert not any(d in row.inner_text() for d in domains if d != BROKEN_DOMAIN)
        # the other rows may still be rendering when "Failed" shows: wait for them (Playwright retries)
        expect(page.get_by_text("Loaded", exact=True)).to_have_count(len(domains) - 1, timeout=30_000)
        ui.screenshot(page, "broken-domain-locations")
        row.get_by_text("View error").click()
        page.get_by_text("domain-code-imports").first.wait_for(timeout=30_000)
        ui.screenshot(page, "broken-domain-error")
    page.close()
