"""`mesh prepare`: build-time work kept out of definitions loading (dbt manifests, JSON Schema)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import typer

from mesh_platform.cli.common import err, fail, load_mesh
from mesh_platform.descriptor.schema import SCHEMA_PATH, descriptor_json_schema


def dbt_parse(project_dir: Path, profiles_dir: Path) -> None:
    dbt = Path(sys.executable).with_name("dbt")
    env = {**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    env.pop("MESH_DUCKDB_PATH", None)
    proc = subprocess.run(
        [str(dbt), "parse", "--profiles-dir", str(profiles_dir), "--project-dir", str(project_dir), "--quiet"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if proc.returncode != 0:
        fail(f"dbt parse failed in {project_dir}:\n{proc.stdout}{proc.stderr}")


def prepare() -> None:
    """Parse every dbt project (writes target/manifest.json) and export the descriptor JSON Schema."""
    mesh = load_mesh()
    for domain in mesh.project.domain_names():
        project_dir = mesh.project.dbt_project_dir(domain)
        if project_dir is not None:
            dbt_parse(project_dir, mesh.project.dbt_dir)
            err.print(f"dbt manifest ready: {mesh.project.rel(project_dir / 'target' / 'manifest.json')}")
    SCHEMA_PATH.write_text(json.dumps(descriptor_json_schema(), indent=2) + "\n")


def register(app: typer.Typer) -> None:
    app.command("prepare")(prepare)
