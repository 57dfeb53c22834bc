"""The newcomer's loop against a running UI, started with the exact command `make ui` runs: a domain
`mesh new-domain` adds appears after "Reload all" (the UI's `reloadWorkspace` mutation) with its
product as a real, materializable asset; a renamed product's old asset, which Dagster keeps listing
from its history, is gone after `mesh products --prune`, its data archived, not deleted; and the
catalog's descriptions are plain text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from devtools.ui_screenshot import Webserver, free_port, graphql, webserver
from tests.conftest import copy_project, mesh_env, run_mesh_cli
from tests.test_ui import make_ui_command

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("ui_reload")]

RELOAD_ALL = """mutation { reloadWorkspace { __typename
  ... on Workspace { locationEntries { name loadStatus
    locationOrLoadError { __typename ... on PythonError { message } } } }
  ... on PythonError { message } } }"""

ASSET = """query($path: [String!]!) { assetNodeOrError(assetKey: {path: $path}) { __typename
  ... on AssetNode { isMaterializable isExecutable groupName repository { location { name } } } } }"""

CATALOG = """{ assetsOrError { ... on AssetConnection { nodes {
  key { path } definition { description } } } } }"""


@dataclass
class RunningUi:
    root: Path
    home: Path
    env: dict[str, str]
    server: Webserver

    def mesh(self, *args: str, check: bool = True) -> Any:
        return run_mesh_cli(*args, env=self.env, cwd=self.root, check=check)

    def reload_all(self) -> dict[str, str]:
        """What "Reload all" does, and each code location's state after it."""
        # every code location's server restarts and loads its domain: minutes on a busy machine
        workspace = graphql(self.server.port, RELOAD_ALL, timeout=600)["reloadWorkspace"]
        assert workspace["__typename"] == "Workspace", workspace
        return {e["name"]: e["locationOrLoadError"]["__typename"] for e in workspace["locationEntries"]}

    def catalog(self) -> dict[tuple[str, ...], dict[str, Any] | None]:
        """Every asset key the UI's catalog lists, with its definition (None: history only)."""
        nodes = self.server.graphql(CATALOG)["assetsOrError"]["nodes"]
        return {tuple(n["key"]["path"]): n["definition"] for n in nodes}


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningUi]:
    """pharmacy with a new product, site_summary, materialized; then the UI over that instance."""
    base = tmp_path_factory.mktemp("ui_reload")
    root, home = copy_project(base / "project"), base / "home"
    env = {**mesh_env(root, home), "DAGSTER_HOME": str(home / "dagster")}
    run_mesh_cli("seed", "--scale", "0.01", env=env, cwd=root, check=True)
    run_mesh_cli("new-product", "pharmacy", "site_summary", env=env, cwd=root, check=True)
    run_mesh_cli("run", "--domain", "pharmacy", env=env, cwd=root, check=True)
    port = free_port()
    with webserver(root, env, base / "webserver.log", command=make_ui_command(port, home), port=port) as server:
        yield RunningUi(root, home, env, server)


def test_a_new_domain_appears_after_reload_all_with_a_real_asset(ui: RunningUi) -> None:
    added = ui.mesh("new-domain", "vaccine_outreach", "--owner", "team:outreach", "--consumes", "pharmacy.sites")
    assert '"Reload all"' in added.stderr and "make ui" in added.stderr, added.stderr  # it says what to do

    locations = ui.reload_all()
    assert locations.get("vaccine_outreach") == "RepositoryLocation", locations
    assert set(locations.values()) == {"RepositoryLocation"}, locations
    node = ui.server.graphql(ASSET, {"path": ["vaccine_outreach", "example"]})["assetNodeOrError"]
    assert node["__typename"] == "AssetNode", node  # not an external asset nobody can materialize
    assert node["isMaterializable"] and node["isExecutable"], node
    assert (node["groupName"], node["repository"]["location"]["name"]) == ("vaccine_outreach", "vaccine_outreach")


def test_a_renamed_product_leaves_no_orphan_once_pruned(ui: RunningUi) -> None:
    for path in (ui.root / "domains/pharmacy/domain.yaml", ui.root / "domains/pharmacy/assets.py"):
        path.write_text(path.read_text().replace("site_summary", "site_digest"))
    ui.reload_all()
    catalog = ui.catalog()
    assert catalog[("pharmacy", "site_digest")] is not None
    # Dagster keeps listing the old key from its history, with no definition behind it
    assert ("pharmacy", "site_summary") in catalog and catalog[("pharmacy", "site_summary")] is None

    listed = ui.mesh("products")
    assert "pharmacy.site_summary" not in listed.stdout and "pharmacy.site_digest" in listed.stdout
    assert "warning: pharmacy.site_summary is stored" in listed.stderr
    assert "mesh products --prune pharmacy.site_summary" in listed.stderr
    assert "pharmacy.site_summary" not in {
        p["domain"] + "." + p["name"] for p in json.loads(ui.mesh("products", "--json").stdout)
    }

    pruned = ui.mesh("products", "--prune", "pharmacy.site_summary", "--json")
    (result,) = json.loads(pruned.stdout)
    assert result["history_wiped"] and result["versions"] == 1
    archived = Path(result["archived_to"])
    assert archived.is_relative_to(ui.home / "archive") and len(list(archived.glob("*.parquet"))) == 1
    assert ("pharmacy", "site_summary") not in ui.catalog()
    assert "warning" not in ui.mesh("products").stderr
    # a product a descriptor declares is never pruned
    refused = ui.mesh("products", "--prune", "pharmacy.sites", check=False)
    assert refused.returncode == 1 and "is declared in domains/pharmacy/domain.yaml" in refused.stderr
    assert ("pharmacy", "sites") in ui.catalog() and (ui.home / "products/pharmacy/sites/current.json").exists()


def test_catalog_descriptions_are_plain_text(ui: RunningUi) -> None:
    descriptions = {k: d["description"] for k, d in ui.catalog().items() if d and d["description"]}
    products = {("pharmacy", "sites"), ("pharmacy", "vaccine_stock")}
    assert products <= set(descriptions)
    for key, text in descriptions.items():
        assert not re.search(r"\*\*|__|`|^#", text, re.M), (key, text)
    assert "Value: The reference for where care happens" in descriptions[("pharmacy", "sites")]
