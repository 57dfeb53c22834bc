"""The consumer-aware breaking-change gate: a breaking contract change is refused only when a
consumer uses what it touches (column-level lineage says which consumer, product and column), and
passes when the product's major version was bumped (consumers may pin the old major) or when no
consumer uses it. `mesh check-change` runs it against a git revision; definitions loading runs it
against the contract recorded with the product's last published version (`load_gate`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mesh_platform.contracts.changes import Change, contract_changes, major_bumped
from mesh_platform.contracts.snapshot import Snapshot, contract_snapshot
from mesh_platform.descriptor.model import Descriptor
from mesh_platform.lineage.columns import ConsumerUse, MeshColumns
from mesh_platform.project.mesh import Mesh

REFUSED, BUMPED, UNUSED, NOTE = "refused", "passed: new major", "passed: no consumer uses it", "note"


@dataclass
class Finding:
    change: Change
    file: str
    line: int | None
    decision: str
    uses: list[ConsumerUse] = field(default_factory=list)

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file

    def message(self) -> str:
        change = self.change
        text = f"{change.product}: {change.kind.replace('_', ' ')}: {change.detail} ({self.where})"
        if self.decision == REFUSED:
            users = "; ".join(f"{u.consumer} uses it in {u.where} ({u.how})" for u in self.uses)
            return f"{text}: breaking, and {users}; bump the product's major version or keep the old contract"
        if self.decision == BUMPED:
            users = ", ".join(sorted({u.where for u in self.uses}))
            return (
                f"{text}: breaking, used by {users}, but the major version was bumped (consumers may pin the old one)"
            )
        if self.decision == UNUSED:
            return f"{text}: breaking, but no consumer uses it"
        return text

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.change.as_dict(),
            "file": self.file,
            "line": self.line,
            "decision": self.decision,
            "uses": [u.as_dict() for u in self.uses],
        }


def product_index(descriptor: Descriptor | None, name: str) -> int | None:
    if descriptor is None:
        return None
    return next((i for i, p in enumerate(descriptor.products) if p.name == name), None)


def field_of(change: Change, descriptor: Descriptor | None) -> str:
    """The descriptor field a change is about (the closest one that exists)."""
    name = change.product.split(".", 1)[1]
    index = product_index(descriptor, name)
    if descriptor is None or index is None:
        return "products"
    product = descriptor.products[index]
    base = f"products[{index}]"
    kind, *rest = change.where or ("product",)
    if kind == "column" and product.column(rest[0]) is not None:
        return f"{base}.columns[{[c.name for c in product.columns].index(rest[0])}]"
    if kind == "expectation" and rest[0] is not None:
        return f"{base}.expectations[{rest[0]}]"
    if kind in ("columns", "expectations", "freshness", "access", "version"):
        return f"{base}.{kind}"
    return base


def decide(change: Change, uses: list[ConsumerUse], bumped: bool) -> str:
    if not change.breaking:
        return NOTE
    if not uses:
        return UNUSED
    return BUMPED if bumped else REFUSED


def consumer_uses(columns: MeshColumns, mesh: Mesh, change: Change) -> list[ConsumerUse]:
    """The uses a breaking change touches: of its column, or (product-wide) of the product at all,
    by the consumers it concerns."""
    uses = columns.consumers_using(change.product, change.column)
    if change.column is None:  # a consumer that lists the product in consumes uses it, whatever it reads
        listing = consumers_of(mesh, change.product)
        found = {u.consumer for u in uses}
        uses += [ConsumerUse(d, mesh.files[d], None, "lists it in consumes") for d in listing if d not in found]
    if change.consumers is not None:
        uses = [u for u in uses if u.consumer in change.consumers]
    return uses


def consumers_of(mesh: Mesh, product: str) -> list[str]:
    """The domains that read `product` (`<domain>.<product>`, or an older major stored as `<product>_v<major>`):
    those that pin its major, or read the latest."""
    domain, _, name = product.partition(".")
    return [d for d in mesh.consumers_of(domain, name) if d != domain]


def findings(
    mesh: Mesh,
    base: Mapping[str, Snapshot],
    head: Mapping[str, Snapshot],
    columns: Callable[[], MeshColumns],
    file_of: Callable[[str], str],
) -> list[Finding]:
    """Every change from `base` to `head` (snapshots by product ref), with its line and decision.
    `columns` is called only when a breaking change needs to know who uses it."""
    result = []
    lineage: MeshColumns | None = None
    for product in sorted(set(base) | set(head)):
        domain = product.split(".", 1)[0]
        changes = contract_changes(base.get(product), head.get(product), consumers_of(mesh, product))
        bumped = major_bumped(base.get(product), head.get(product))
        for change in changes:
            uses: list[ConsumerUse] = []
            if change.breaking:
                lineage = lineage or columns()
                uses = consumer_uses(lineage, mesh, change)
            descriptor = mesh.descriptors.get(domain)
            path = field_of(change, descriptor)
            file = file_of(domain)
            line = mesh.lines[file](path) if file in mesh.lines and descriptor is not None else None
            result.append(Finding(change, file, line, decide(change, uses, bumped), uses))
    return result


def head_snapshots(mesh: Mesh) -> dict[str, Snapshot]:
    return {f"{d.domain}.{p.name}": contract_snapshot(d, p) for d, p in mesh.products()}


def union_schema(mesh: Mesh, base: Mapping[str, Snapshot]) -> Callable[[str], set[str] | None]:
    """Columns of each product at the working tree and at the base together: a consumer's SQL that
    still names a removed or renamed column resolves to it."""

    def schema_of(ref: str) -> set[str] | None:
        domain, _, name = ref.partition(".")
        descriptor = mesh.descriptors.get(domain)
        product = descriptor.product(name) if descriptor else None
        columns = {c.name for c in product.columns} if product else set()
        columns |= {c["name"] for c in base.get(ref, {}).get("columns", [])}
        return columns or None

    return schema_of
