"""The same transformations as the mesh, as plain SQL in one DuckDB connection.

Ingestion and Python products run the domains' own SQL (through a context bound to one
connection, each domain a catalog); dbt models run their compiled SQL in dependency order.
No Dagster, no dbt process, no checks, no publication, no governed views (consumers read the
producers' tables directly).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import duckdb

from mesh_platform.defs.domain_definitions import _asset_fns, _import_domain_code
from mesh_platform.defs.python_assets import _write_result
from mesh_platform.project.mesh import Mesh
from mesh_platform.sdk import AssetContext


class BaselineContext(AssetContext):
    def read(self, ref: str) -> str:
        if "." in ref:
            domain, product = ref.split(".", 1)
            return f'{domain}.main."{product}"'
        return f'{self.domain}.main."{ref}"'


def compile_dbt(mesh: Mesh, domain: str, folder: Path) -> dict[str, Any]:
    project_dir = mesh.project.dbt_project_dir(domain)
    assert project_dir is not None
    env = {**os.environ, "MESH_DUCKDB_PATH": str(folder / f"{domain}.duckdb")}
    target = folder / "dbt-target" / domain
    dbt = str(Path(sys.executable).with_name("dbt"))
    subprocess.run(
        [
            dbt,
            "compile",
            "--project-dir",
            str(project_dir),
            "--profiles-dir",
            str(mesh.project.dbt_dir),
            "--target-path",
            str(target),
            "--quiet",
        ],
        check=True,
        env=env,
        capture_output=True,
    )
    return json.loads((target / "manifest.json").read_text())


def _dbt_order(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    nodes = {uid: n for uid, n in manifest["nodes"].items() if n["resource_type"] == "model"}
    done: list[str] = []
    while len(done) < len(nodes):
        for uid, node in sorted(nodes.items()):
            if uid not in done and all(d in done or d not in nodes for d in node["depends_on"]["nodes"]):
                done.append(uid)
    return [nodes[u] for u in done]


def prepare(mesh: Mesh, folder: Path) -> dict[str, dict[str, Any]]:
    """Compile dbt outside the timed part (the mesh prepares manifests at install time too)."""
    folder.mkdir(parents=True, exist_ok=True)
    return {d: compile_dbt(mesh, d, folder) for d in mesh.domains if mesh.project.dbt_project_dir(d)}


def run(mesh: Mesh, folder: Path, manifests: dict[str, dict[str, Any]], memory_limit: str | None = None) -> float:
    """Seconds for the whole mesh in one connection: with DuckDB's own memory limit (80% of RAM),
    or `memory_limit`, the one `mesh run` keeps DuckDB to."""
    for old in folder.glob("*.duckdb"):
        old.unlink()
    started = time.perf_counter()
    con = duckdb.connect(config={"temp_directory": str(folder / "spill")})
    if memory_limit:
        con.execute(f"set memory_limit = '{memory_limit}'")
    for domain in mesh.domains:
        con.execute(f"attach '{folder / (domain + '.duckdb')}' as {domain}")
    for domain in mesh.domains:
        con.execute(f"use {domain}")
        for fn in _asset_fns(_import_domain_code(mesh, domain)):
            ctx = BaselineContext(domain, fn.name, con, mesh.project.home.path, fn.reads, landing=fn.landing)
            _write_result(con, fn.name, fn(ctx))
        for consumed in mesh.descriptors[domain].consumes:
            producer, product = consumed.split(".")
            con.execute(f"create schema if not exists {domain}.{producer}")
            con.execute(
                f'create or replace view {domain}.{producer}."{product}" as select * from {producer}.main."{product}"'
            )
        for node in _dbt_order(manifests.get(domain, {"nodes": {}})):
            kind = "view" if node["config"]["materialized"] == "view" else "table"
            con.execute(f'create or replace {kind} main."{node["name"]}" as {node["compiled_code"]}')
    con.close()
    return time.perf_counter() - started
