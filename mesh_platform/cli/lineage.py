"""`mesh lineage`: products (or domains, or columns) and the edges between them, as Mermaid, JSON or
Graphviz DOT; `D.P` keeps what is upstream and downstream of one product, `D.P.COLUMN` of one column."""

from __future__ import annotations

from typing import Any

import typer

from mesh_platform.cli.common import invalid, known_product, load_mesh, print_json, warn_left_out
from mesh_platform.lineage import domain_lineage, to_dot, to_mermaid
from mesh_platform.lineage import lineage as build_lineage
from mesh_platform.project.mesh import Mesh

FORMATS = ("mermaid", "json", "dot")


def _product_closure(graph: dict[str, Any], ref: str) -> dict[str, Any]:
    """The product graph cut down to `ref` and what is upstream and downstream of it."""
    keep = {ref}
    for direction in (("from", "to"), ("to", "from")):
        stack = [ref]
        while stack:
            current = stack.pop()
            for edge in graph["edges"]:
                if edge[direction[1]] == current and edge[direction[0]] not in keep:
                    keep.add(edge[direction[0]])
                    stack.append(edge[direction[0]])
    nodes = [n for n in graph["nodes"] if n["id"] in keep]
    edges = [e for e in graph["edges"] if e["from"] in keep and e["to"] in keep]
    domains = {n["domain"] for n in nodes}
    return {
        "domains": [d for d in graph["domains"] if d["domain"] in domains],
        "nodes": nodes,
        "edges": edges,
        "domain_edges": sorted(
            ({"from": a, "to": b} for a, b in {(e["from"].split(".")[0], e["to"].split(".")[0]) for e in edges}),
            key=lambda e: (e["from"], e["to"]),
        ),
    }


def _split_target(mesh: Mesh, target: str) -> tuple[str, str | None]:
    """`D.P` or `D.P.COLUMN` -> (product ref, column); exit 2 for anything else."""
    parts = target.split(".")
    if len(parts) not in (2, 3) or not all(parts):
        invalid(f"{target!r} is neither <domain>.<product> nor <domain>.<product>.<column>")
    ref = ".".join(parts[:2])
    known_product(mesh, ref)
    column = parts[2] if len(parts) == 3 else None
    _, product = mesh.product(ref)
    if column is not None and product.column(column) is None:
        invalid(f"{ref} has no column {column!r}; its columns: {', '.join(c.name for c in product.columns)}")
    return ref, column


def lineage(
    target: str = typer.Argument(None, metavar="[D.P[.COLUMN]]", help="One product, or one column of a product."),
    fmt: str = typer.Option("mermaid", "--format", help="mermaid, json or dot (Graphviz)"),
    domains: bool = typer.Option(False, "--domains", help="Domain level: one node per domain, edges between domains."),
    columns: bool = typer.Option(False, "--columns", help="Column level: each column and the columns it is made from."),
) -> None:
    """Print lineage across domains: product level by default, domain level with --domains, column
    level with --columns or for D.P.COLUMN."""
    if fmt not in FORMATS:
        invalid(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    mesh = load_mesh()
    ref, column = _split_target(mesh, target) if target else (None, None)
    if domains and (columns or column):
        invalid("--domains and column lineage (--columns, D.P.COLUMN) do not go together")
    warn_left_out(mesh)
    if columns or column:
        _columns(mesh, fmt, ref, column)
        return
    graph = build_lineage(mesh)
    if ref is not None:
        graph = _product_closure(graph, ref)
    if fmt == "json":
        print_json(domain_lineage(graph) if domains else graph)
    elif fmt == "dot":
        typer.echo(to_dot(graph, domains=domains), nl=False)
    else:
        typer.echo(to_mermaid(graph, domains=domains), nl=False)


def _columns(mesh: Mesh, fmt: str, ref: str | None, column: str | None) -> None:
    from mesh_platform.lineage.column_views import (
        closure_edges,
        column_json,
        columns_json,
        to_dot_columns,
        to_mermaid_columns,
    )
    from mesh_platform.lineage.columns import mesh_columns

    found = mesh_columns(mesh)
    for analysed in found.domains.values():
        for warning in analysed.warnings:
            typer.echo(f"warning: {warning}", err=True)
    one = f"{ref}.{column}" if column else None
    if fmt == "json":
        print_json(column_json(found, one) if one else columns_json(found, ref))
        return
    ids = [one] if one else [c for c in found.product_columns() if ref is None or c.rpartition(".")[0] == ref]
    edges = closure_edges(found, ids)
    render = to_dot_columns if fmt == "dot" else to_mermaid_columns
    typer.echo(render(found, edges, ids), nl=False)


def register(app: typer.Typer) -> None:
    app.command("lineage")(lineage)
