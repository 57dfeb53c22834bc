"""Product-level lineage across domains, read from the Dagster asset graph of every domain.

Owns: product lineage (here), column lineage (`columns`, from dbt and Python SQL), its Dagster
metadata, OpenLineage run events (`openlineage_events`) and the README's diagram (`readme_diagram`).

Must not import: `cli`, `catalog`, `checks`, `contracts`, `governance`, `orchestration`,
`scaffold`, `devtools`.
"""

from __future__ import annotations

from typing import Any

from mesh_platform.descriptor.problems import MeshDefinitionError
from mesh_platform.project.mesh import Mesh


def _product_edges(mesh: Mesh, domain: str) -> set[tuple[str, str]]:
    """(upstream product ref, this domain's product ref) pairs, through internal assets."""
    import dagster as dg

    from mesh_platform.defs.domain_definitions import build_domain, definitions_from

    graph = definitions_from([build_domain(mesh, domain)]).resolve_asset_graph()
    products = {(d.domain, p.name) for d, p in mesh.products()}
    edges = set()
    for product in mesh.descriptors[domain].products:
        key = dg.AssetKey([domain, product.name])
        seen, stack = set(), list(graph.get(key).parent_keys) if graph.has(key) else []
        while stack:
            parent = stack.pop()
            if parent in seen:
                continue
            seen.add(parent)
            path = tuple(parent.path)
            if path[0] != domain and path in products:
                edges.add((".".join(path), f"{domain}.{product.name}"))
            elif path[0] == domain and graph.has(parent):
                stack.extend(graph.get(parent).parent_keys)
    return edges


def lineage(mesh: Mesh) -> dict[str, Any]:
    nodes = [
        {"id": f"{d.domain}.{p.name}", "domain": d.domain, "product": p.name, "owner": d.owner_of(p)}
        for d, p in mesh.products()
    ]
    edges: set[tuple[str, str]] = set()
    for domain, descriptor in mesh.descriptors.items():
        try:
            edges |= _product_edges(mesh, domain)
        except MeshDefinitionError:  # fall back to the descriptor: consumed product -> every product
            edges |= {
                (mesh.resolve(domain, ref), f"{domain}.{p.name}")
                for ref in descriptor.consumed_refs
                for p in descriptor.products
            }
    domain_edges = sorted({(a.split(".")[0], b.split(".")[0]) for a, b in edges})
    return {
        "domains": [{"domain": d, "owner": mesh.descriptors[d].owner} for d in mesh.domains],
        "nodes": nodes,
        "edges": [{"from": a, "to": b} for a, b in sorted(edges)],
        "domain_edges": [{"from": a, "to": b} for a, b in domain_edges],
    }


def domain_lineage(graph: dict[str, Any]) -> dict[str, Any]:
    """The domain-level view of `lineage()`: one node per domain (with its products), edges between domains."""
    products: dict[str, list[str]] = {}
    for node in graph["nodes"]:
        products.setdefault(node["domain"], []).append(node["product"])
    return {
        "nodes": [
            {"id": d["domain"], "owner": d["owner"], "products": products.get(d["domain"], [])}
            for d in graph["domains"]
        ],
        "edges": graph["domain_edges"],
    }


def _mermaid_id(ref: str) -> str:
    return ref.replace(".", "__")


def to_mermaid(graph: dict[str, Any], domains: bool = False) -> str:
    """A Mermaid flowchart: products grouped by domain, or (`domains`) one node per domain."""
    lines = ["flowchart LR"]
    if domains:
        for node in domain_lineage(graph)["nodes"]:
            lines.append(f'  {node["id"]}["{node["id"]} ({node["owner"]})"]')
        lines += [f"  {e['from']} --> {e['to']}" for e in graph["domain_edges"]]
        return "\n".join(lines) + "\n"
    for domain in graph["domains"]:
        lines.append(f'  subgraph {domain["domain"]}["{domain["domain"]} ({domain["owner"]})"]')
        for node in graph["nodes"]:
            if node["domain"] == domain["domain"]:
                lines.append(f'    {_mermaid_id(node["id"])}["{node["product"]}"]')
        lines.append("  end")
    for edge in graph["edges"]:
        lines.append(f"  {_mermaid_id(edge['from'])} --> {_mermaid_id(edge['to'])}")
    return "\n".join(lines) + "\n"


def _dot_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_dot(graph: dict[str, Any], domains: bool = False) -> str:
    """Graphviz DOT: products in one cluster per domain, or (`domains`) one node per domain."""
    lines = ["digraph mesh {", "  rankdir=LR;", "  node [shape=box];"]
    if domains:
        for node in domain_lineage(graph)["nodes"]:
            label = f"{node['id']} ({node['owner']})"
            lines.append(f"  {_dot_string(node['id'])} [label={_dot_string(label)}];")
        lines += [f"  {_dot_string(e['from'])} -> {_dot_string(e['to'])};" for e in graph["domain_edges"]]
        return "\n".join([*lines, "}"]) + "\n"
    for domain in graph["domains"]:
        name, owner = domain["domain"], domain["owner"]
        lines.append(f"  subgraph {_dot_string('cluster_' + name)} {{")
        lines.append(f"    label={_dot_string(f'{name} ({owner})')};")
        for node in graph["nodes"]:
            if node["domain"] == name:
                lines.append(f"    {_dot_string(node['id'])} [label={_dot_string(node['product'])}];")
        lines.append("  }")
    lines += [f"  {_dot_string(e['from'])} -> {_dot_string(e['to'])};" for e in graph["edges"]]
    return "\n".join([*lines, "}"]) + "\n"
