"""`mesh lineage`: products and the edges between domains."""

from __future__ import annotations

import typer

from mesh_platform.cli.common import fail, load_mesh, print_json
from mesh_platform.lineage import lineage as build_lineage
from mesh_platform.lineage import to_mermaid


def lineage(fmt: str = typer.Option("mermaid", "--format", help="mermaid or json")) -> None:
    """Print product lineage across domains."""
    if fmt not in ("mermaid", "json"):
        fail(f"--format must be mermaid or json, got {fmt!r}")
    graph = build_lineage(load_mesh())
    if fmt == "json":
        print_json(graph)
    else:
        typer.echo(to_mermaid(graph), nl=False)


def register(app: typer.Typer) -> None:
    app.command("lineage")(lineage)
