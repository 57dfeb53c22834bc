"""The breaking-change gate when definitions load: a product that declares a `version` is compared
with the contract recorded with its last published version; a breaking change that a consumer uses,
under the same major, is a problem (file, line, rule `breaking-change-same-major`) and the domain
does not load until the major is bumped or the change undone. Only a product whose contract changed
costs more than reading its `current.json`: then the consumers' column lineage is analysed."""

from __future__ import annotations

from mesh_platform.contracts.gate import REFUSED, findings, union_schema
from mesh_platform.contracts.snapshot import contract_snapshot, major_of
from mesh_platform.descriptor.model import Descriptor
from mesh_platform.descriptor.problems import Problem
from mesh_platform.project.mesh import Mesh
from mesh_platform.storage.product_store import ProductStore

RULE = "breaking-change-same-major"


def version_gate(mesh: Mesh, descriptor: Descriptor) -> list[Problem]:
    from mesh_platform.lineage.columns import mesh_columns

    domain = descriptor.domain
    store = ProductStore(mesh.project.home)
    base, head = {}, {}
    for product in descriptor.products:
        if product.version is None:
            continue
        published = store.current(domain, product.name)
        recorded = published.contract if published is not None else None
        if not recorded or major_of(recorded.get("version")) != product.major:
            continue  # nothing recorded, or a new major: nothing to keep compatible with
        snapshot = contract_snapshot(descriptor, product)
        if {k: v for k, v in recorded.items() if k != "version"} != {
            k: v for k, v in snapshot.items() if k != "version"
        }:
            base[snapshot["product"]], head[snapshot["product"]] = recorded, snapshot
    if not base:
        return []
    consumers = sorted({d for ref in base for d in mesh.consumers_of(*ref.split(".", 1)) if d != domain})
    found = findings(
        mesh,
        base,
        head,
        lambda: mesh_columns(mesh, union_schema(mesh, base), domains=consumers),
        lambda _domain: mesh.files[domain],
    )
    names = [p.name for p in descriptor.products]
    problems = []
    for finding in (f for f in found if f.decision == REFUSED):
        recorded_version = base[finding.change.product].get("version") or "1.0"
        problems.append(
            Problem(
                finding.file,
                f"products[{names.index(finding.change.product.split('.')[1])}].version",
                RULE,
                f"{finding.message()} (the last published version has contract version {recorded_version})",
                finding.line,
                domain,
            )
        )
    return problems
