"""`mesh lineage`: products (or domains) and the edges between them, as Mermaid, JSON or Graphviz DOT."""

from __future__ import annotations

import typer

from mesh_platform.cli.common import invalid, load_mesh, print_json, warn_left_out
from mesh_platform.lineage import domain_lineage, to_dot, to_mermaid
from mesh_platform.lineage import lineage as build_lineage

FORMATS = ("mermaid", "json", "dot")


def lineage(
    fmt: str = typer.Option("mermaid", "--format", help="mermaid, json or dot (Graphviz)"),
    domains: bool = typer.Option(False, "--domains", help="Domain level: one node per domain, edges between domains."),
) -> None:
    """Print lineage across domains: product level by default, domain level with --domains."""
    if fmt not in FORMATS:
        invalid(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    mesh = load_mesh()
    warn_left_out(mesh)
    graph = build_lineage(mesh)
    if fmt == "json":
        print_json(domain_lineage(graph) if domains else graph)
    elif fmt == "dot":
        typer.echo(to_dot(graph, domains=domains), nl=False)
    else:
        typer.echo(to_mermaid(graph, domains=domains), nl=False)


def register(app: typer.Typer) -> None:
    app.command("lineage")(lineage)
