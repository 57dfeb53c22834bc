"""What a domain's own tests (`domains/<domain>/test_<domain>.py`) use: build it, and run it for real."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mesh_platform.mesh import Mesh
from mesh_platform.project import MeshHome, MeshProject
from mesh_platform.store import ProductStore

SEED_SCALE = "0.01"


@dataclass(frozen=True)
class BuiltDomain:
    products: dict[str, list[str]]  # product -> its asset check names


def build_definitions(root: Path, domain: str) -> BuiltDomain:
    """The domain's Dagster definitions, built as its code location builds them (raises naming file and rule)."""
    import dagster as dg

    from mesh_platform.defs.domain import build_domain, definitions_from

    mesh = Mesh.load(MeshProject.discover(root))
    graph = definitions_from([build_domain(mesh, domain)]).resolve_asset_graph()
    products = {}
    for product in mesh.descriptors[domain].products:
        key = dg.AssetKey([domain, product.name])
        assert graph.has(key), f"{domain}.{product.name} is declared but no asset builds it"
        products[product.name] = sorted(c.name for c in graph.asset_check_keys if c.asset_key == key)
    return BuiltDomain(products)


def upstream_domains(mesh: Mesh, domain: str) -> list[str]:
    """Every domain `domain` reads from, directly or through others."""
    seen: set[str] = set()
    stack = list(mesh.descriptors[domain].consumed_domains)
    while stack:
        current = stack.pop()
        if current not in seen and current in mesh.descriptors:
            seen.add(current)
            stack.extend(mesh.descriptors[current].consumed_domains)
    return sorted(seen)


def materialize(root: Path, domain: str, workdir: Path) -> dict[str, dict[str, Any]]:
    """Run `domain` (after the domains it reads from, seeded small) in a temporary MESH_HOME under
    `workdir`, through the `mesh` command line; return each of its products' recorded status."""
    home = workdir / "mesh_home"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MESH_", "DAGSTER_"))}
    env |= {"MESH_PROJECT_DIR": str(root), "MESH_HOME": str(home)}
    mesh_cli = str(Path(sys.executable).with_name("mesh"))
    project = MeshProject.discover(root)
    mesh = Mesh.load(project)
    upstream = upstream_domains(mesh, domain)
    commands = [["seed", "--scale", SEED_SCALE]] if upstream else []
    commands.append(["run", *(a for d in [*upstream, domain] for a in ("--domain", d))])
    for args in commands:
        proc = subprocess.run([mesh_cli, *args], env=env, cwd=root, capture_output=True, text=True, timeout=1800)
        assert proc.returncode == 0, f"mesh {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    store = ProductStore(MeshHome(home))
    return {p.name: store.status(domain, p.name) or {} for p in mesh.descriptors[domain].products}
