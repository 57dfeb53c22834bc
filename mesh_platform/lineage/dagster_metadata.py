"""Column lineage on the Dagster definitions: `dagster/column_lineage` (Dagster's `TableColumnLineage`,
which the UI reads through GraphQL) on every asset whose lineage is known, `mesh/column_lineage`
with how it was found (derived from dbt or Python SQL, declared, or why not analysed) and the
transformation type of each edge, and the file and line of the code that builds the asset."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import dagster as dg

from mesh_platform.descriptor.model import Descriptor
from mesh_platform.descriptor.problems import Problem
from mesh_platform.lineage.columns import AssetColumns, analyse_domain, direct_parents, uses_as_json
from mesh_platform.project.mesh import Mesh
from mesh_platform.sdk import AssetFn

if TYPE_CHECKING:
    from mesh_platform.defs.domain_definitions import DomainParts

COLUMN_LINEAGE = "dagster/column_lineage"
MESH_COLUMN_LINEAGE = "mesh/column_lineage"


def lineage_metadata(asset: AssetColumns, root: str) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        MESH_COLUMN_LINEAGE: dg.MetadataValue.json(
            {
                "how": asset.how,
                "reason": asset.reason,
                "file": asset.file,
                "line": asset.line,
                "path": f"{root}/{asset.file}" if asset.file else None,
                "declared": sorted(asset.declared),
                "unknown": sorted(asset.unknown),
                "columns": {c: uses_as_json(uses) for c, uses in sorted(asset.columns.items())},
                "dataset": uses_as_json(asset.dataset),
            }
        )
    }
    if asset.columns:
        metadata[COLUMN_LINEAGE] = dg.TableColumnLineage(
            deps_by_column={
                column: [dg.TableColumnDep(asset_key=dg.AssetKey(rel.split(".", 1)), column_name=c) for rel, c in deps]
                for column, deps in direct_parents(asset).items()
                if deps
            }
        )
    return metadata


def with_column_lineage(
    mesh: Mesh, descriptor: Descriptor, fns: Sequence[AssetFn], parts: DomainParts
) -> list[Problem]:
    """Analyse the domain's column lineage and put it on its assets' specs; returns the problems of
    its declared lineage (`derived_from`), and adds what could not be analysed to the warnings."""
    try:
        columns = analyse_domain(mesh, descriptor, fns)
    except Exception as exc:  # lineage never stops a domain from loading
        detail = f"column lineage not analysed: {type(exc).__name__}: {exc}"[:500]
        parts.warnings.append(
            Problem(mesh.files[descriptor.domain], "", "column-lineage", detail, domain=descriptor.domain)
        )
        return []
    parts.warnings += columns.warnings
    root = str(mesh.project.root)
    by_key = {dg.AssetKey([descriptor.domain, name]): asset for name, asset in columns.assets.items()}

    def add(spec: dg.AssetSpec) -> dg.AssetSpec:
        asset = by_key.get(spec.key)
        if asset is None:
            return spec
        return spec.replace_attributes(metadata={**spec.metadata, **lineage_metadata(asset, root)})

    parts.assets = [a.map_asset_specs(add) for a in parts.assets]
    return mesh.located(columns.problems)
