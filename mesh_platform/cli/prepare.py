"""`mesh prepare`: build-time work done ahead (dbt parses, JSON Schema), for speed: definitions
loading and each dbt step parse a project again anyway whenever one of its files changed."""

from __future__ import annotations

import json

import typer

from mesh_platform.cli.common import err, load_mesh, plain
from mesh_platform.descriptor.schema import SCHEMA_PATH, descriptor_json_schema


def prepare() -> None:
    """Parse every dbt project ahead of time (writes target/manifest.json) and export the descriptor JSON Schema."""
    from mesh_platform.defs.dbt_project import prepare_project  # dbt: only for this verb
    from mesh_platform.lineage.dbt_sql import compiled_project

    mesh = load_mesh()
    for domain in mesh.project.domain_names():
        project_dir = mesh.project.dbt_project_dir(domain)
        if project_dir is not None:
            prepare_project(project_dir, mesh.project.dbt_dir, domain)
            compiled_project(project_dir, mesh.project.dbt_dir, domain)  # the compiled SQL column lineage reads
            err.print(plain(f"dbt manifest ready: {mesh.project.rel(project_dir / 'target' / 'manifest.json')}"))
    SCHEMA_PATH.write_text(json.dumps(descriptor_json_schema(), indent=2) + "\n")


def register(app: typer.Typer) -> None:
    app.command("prepare")(prepare)
