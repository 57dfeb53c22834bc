"""The real Dagster webserver over the workspace: every domain is a code location, a broken one
shows its own error without hiding the others, and lineage crosses locations."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import copy_project, mesh_env

pytestmark = pytest.mark.slow

LOCATIONS_QUERY = """{ workspaceOrError { ... on Workspace { locationEntries {
  name loadStatus locationOrLoadError { __typename ... on PythonError { message causes { message } } } } } } }"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def graphql(port: int, query: str) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())["data"]


@pytest.fixture(scope="module")
def webserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    base = tmp_path_factory.mktemp("ui")
    root = copy_project(base / "project")
    code = root / "domains" / "site_operations" / "assets.py"
    code.write_text(code.read_text() + "\ndef broken(:\n")
    home = base / "home"
    (home / "dagster").mkdir(parents=True)
    env = {**mesh_env(root, home), "DAGSTER_HOME": str(home / "dagster")}
    port = _free_port()
    dagster = str(Path(sys.executable).with_name("dagster"))
    proc = subprocess.Popen(
        [dagster, "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
        cwd=root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            try:
                entries = graphql(port, LOCATIONS_QUERY)["workspaceOrError"]["locationEntries"]
                if entries and all(e["loadStatus"] == "LOADED" for e in entries):
                    break
            except OSError:
                pass
            time.sleep(2)
        else:
            raise AssertionError("the webserver did not load every code location in 240 s")
        yield port
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)


def test_webserver_binds_loopback_and_shows_broken_domain_error(webserver: int) -> None:
    entries = graphql(webserver, LOCATIONS_QUERY)["workspaceOrError"]["locationEntries"]
    by_name = {e["name"]: e["locationOrLoadError"] for e in entries}
    assert set(by_name) == {"patients", "scheduling", "pharmacy", "immunizations", "patient_360", "site_operations"}
    broken = by_name.pop("site_operations")
    assert broken["__typename"] == "PythonError"
    causes = " ".join(c["message"] for c in broken["causes"])
    assert "domains/site_operations/assets.py" in causes and "domain-code-imports" in causes
    assert all(v["__typename"] == "RepositoryLocation" for v in by_name.values())


def test_lineage_crosses_code_locations(webserver: int) -> None:
    data = graphql(
        webserver,
        """{ assetNodes(assetKeys: [{path: ["patient_360", "patient_journey"]}]) {
              groupName owners { ... on TeamAssetOwner { team } } dependencyKeys { path } } }""",
    )
    (node,) = data["assetNodes"]
    assert node["groupName"] == "patient_360"
    assert node["owners"] == [{"team": "patient-experience"}]
    assert {tuple(k["path"]) for k in node["dependencyKeys"]} == {
        ("patients", "patient_accounts"),
        ("scheduling", "appointments"),
        ("immunizations", "administered_doses"),
        ("immunizations", "test_results"),
    }
