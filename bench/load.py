"""Definitions load time as the mesh grows: synthetic Python domains of ten products each."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from mesh_platform.project.locations import MeshProject

PER_DOMAIN = 10


def _domain(folder: Path, name: str, upstream: str | None) -> None:
    folder.mkdir(parents=True)
    products = [
        {
            "name": f"p{i}",
            "description": "Synthetic product.",
            "value": "Measures load time.",
            "columns": [{"name": "id", "type": "bigint", "description": "Key", "classification": "internal"}],
            "expectations": [{"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "id"}}],
            "access": {"consumers": ["*"]},
        }
        for i in range(PER_DOMAIN)
    ]
    descriptor = {
        "domain": name,
        "owner": f"team:{name}",
        "business_process": "bench",
        "description": "Synthetic.",
        "products": products,
        "consumes": [f"{upstream}.p0"] if upstream else [],
    }
    (folder / "domain.yaml").write_text(yaml.safe_dump(descriptor, sort_keys=False))
    reads = f'reads=["{upstream}.p0"]' if upstream else ""
    code = ["from mesh_platform.sdk import product", ""]
    for i in range(PER_DOMAIN):
        code += [
            f'@product("p{i}"{", " + reads if reads else ""})',
            f"def p{i}(ctx):",
            "    return 'select 1::bigint as id'",
            "",
        ]
    (folder / "assets.py").write_text("\n".join(code))


def load_seconds(products: int, work: Path) -> float:
    """Seconds to build every domain's definitions in a fresh process (imports excluded)."""
    root = work / "project"
    shutil.copytree(MeshProject.discover().root / "domains", root / "domains")
    shutil.copytree(MeshProject.discover().root / "dbt_projects", root / "dbt_projects")
    previous = None
    for d in range(products // PER_DOMAIN):
        name = f"synthetic_{d:03d}"
        _domain(root / "domains" / name, name, previous)
        previous = name
    script = (
        "import time, dagster, dagster_dbt\n"
        "from mesh_platform.definitions import mesh_definitions\n"
        "t = time.perf_counter(); d = mesh_definitions(); d.resolve_asset_graph()\n"
        "print(time.perf_counter() - t)\n"
    )
    env = {**os.environ, "MESH_PROJECT_DIR": str(root), "MESH_HOME": str(work / "home")}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    return round(float(out.stdout.strip().splitlines()[-1]), 2)
