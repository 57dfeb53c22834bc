"""Column lineage as `mesh lineage --columns` shows it: JSON, Mermaid and Graphviz DOT, for the
whole mesh, one product, or one column (its upstream and downstream)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from mesh_platform.lineage.columns import NOT_ANALYSED, AssetColumns, Edge, MeshColumns, uses_as_json


def _asset_json(asset: AssetColumns) -> dict[str, Any]:
    return {
        "asset": asset.ref,
        "product": asset.is_product,
        "how": asset.how,
        "reason": asset.reason,
        "file": asset.file,
        "line": asset.line,
        "declared_columns": sorted(asset.declared),
        "unknown_columns": sorted(asset.unknown),
        "dataset": uses_as_json(asset.dataset),
    }


def _column_json(columns: MeshColumns, column: str) -> dict[str, Any]:
    relation, _, name = column.rpartition(".")
    asset = columns.assets.get(relation)
    return {
        "id": column,
        "domain": relation.split(".", 1)[0],
        "asset": relation,
        "column": name,
        "how": asset.how if asset else NOT_ANALYSED,
        "declared": bool(asset and name in asset.declared),
        "upstream": [e.as_dict() for e in columns.upstream(column)],
        "downstream": [e.as_dict() for e in columns.downstream(column)],
        "used_by": [{"asset": a.ref, "kind": u.kind, "subtype": u.subtype} for a, u in columns.dataset_users(column)],
    }


def columns_json(columns: MeshColumns, product: str | None = None) -> dict[str, Any]:
    """Every product column (or `product`'s) with its upstream and downstream, every edge, and how
    each asset's lineage was found."""
    ids = [c for c in columns.product_columns() if product is None or c.rpartition(".")[0] == product]
    edges = _closure(columns, ids)
    assets = sorted({e.target.rpartition(".")[0] for e in edges} | {e.source.rpartition(".")[0] for e in edges})
    assets = sorted(set(assets) | {c.rpartition(".")[0] for c in ids})
    return {
        "columns": [_column_json(columns, c) for c in ids],
        "edges": [e.as_dict() for e in edges],
        "assets": [_asset_json(columns.assets[a]) for a in assets if a in columns.assets],
    }


def column_json(columns: MeshColumns, column: str) -> dict[str, Any]:
    return _column_json(columns, column)


def _closure(columns: MeshColumns, ids: Iterable[str]) -> list[Edge]:
    edges: set[Edge] = set()
    for column in ids:
        edges |= set(columns.upstream(column)) | set(columns.downstream(column))
    return sorted(edges)


def _node(column: str) -> str:
    return column.replace(".", "__")


def _groups(columns: MeshColumns, nodes: Iterable[str]) -> dict[str, dict[str, list[str]]]:
    grouped: dict[str, dict[str, list[str]]] = {}
    for column in sorted(set(nodes)):
        relation, _, name = column.rpartition(".")
        domain, _, asset = relation.partition(".")
        grouped.setdefault(domain, {}).setdefault(asset, []).append(name)
    return grouped


def _label(columns: MeshColumns, domain: str, asset: str) -> str:
    found = columns.assets.get(f"{domain}.{asset}")
    role = "product" if found and found.is_product else "internal"
    how = found.how if found else NOT_ANALYSED
    return f"{asset} ({role}, {how})"


def _edge_nodes(edges: Iterable[Edge], extra: Iterable[str]) -> set[str]:
    return {e.source for e in edges} | {e.target for e in edges} | set(extra)


def to_mermaid_columns(columns: MeshColumns, edges: list[Edge], extra: Iterable[str] = ()) -> str:
    """Columns grouped by domain and asset; `-->` a direct derivation, `-.->` an indirect one (its
    type on the arrow), `==>` a lineage declared in a descriptor."""
    lines = ["flowchart LR"]
    for domain, assets in _groups(columns, _edge_nodes(edges, extra)).items():
        lines.append(f'  subgraph {domain}["{domain}"]')
        for asset, names in assets.items():
            lines.append(f'    subgraph {_node(f"{domain}.{asset}")}["{_label(columns, domain, asset)}"]')
            lines += [f'      {_node(f"{domain}.{asset}.{n}")}["{n}"]' for n in names]
            lines.append("    end")
        lines.append("  end")
    for e in edges:
        if e.declared:
            arrow = "==>|declared|"
        elif e.kind == "INDIRECT":
            arrow = f"-.->|{e.subtype.lower()}|"
        else:
            arrow = "-->"
        lines.append(f"  {_node(e.source)} {arrow} {_node(e.target)}")
    return "\n".join(lines) + "\n"


def _dot(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_dot_columns(columns: MeshColumns, edges: list[Edge], extra: Iterable[str] = ()) -> str:
    lines = ["digraph columns {", "  rankdir=LR;", "  node [shape=box];"]
    for domain, assets in _groups(columns, _edge_nodes(edges, extra)).items():
        lines.append(f"  subgraph {_dot('cluster_' + domain)} {{")
        lines.append(f"    label={_dot(domain)};")
        for asset, names in assets.items():
            lines.append(f"    subgraph {_dot(f'cluster_{domain}.{asset}')} {{")
            lines.append(f"      label={_dot(_label(columns, domain, asset))};")
            lines += [f"      {_dot(f'{domain}.{asset}.{n}')} [label={_dot(n)}];" for n in names]
            lines.append("    }")
        lines.append("  }")
    for e in edges:
        style = " [style=bold, label=declared]" if e.declared else ""
        if not e.declared and e.kind == "INDIRECT":
            style = f" [style=dashed, label={_dot(e.subtype.lower())}]"
        lines.append(f"  {_dot(e.source)} -> {_dot(e.target)}{style};")
    return "\n".join([*lines, "}"]) + "\n"


def closure_edges(columns: MeshColumns, ids: Iterable[str]) -> list[Edge]:
    return _closure(columns, ids)
