"""Sandbox refusals during a run: named (domain, target, the access agreement it would need),
audited, and turned into the step's error."""

from __future__ import annotations

from mesh_platform.governance.audit import audit_read
from mesh_platform.governance.sandbox import Refusal, explain, refusals_in
from mesh_platform.project.mesh import Mesh


def agreement_for(mesh: Mesh, consumer: str, ref: str) -> str:
    """What `consumer` needs to read `ref`, in the words of its descriptors."""
    producer_name = ref.split(".", 1)[0]
    producer = mesh.descriptors.get(producer_name)
    product = producer.product(ref.split(".", 1)[1]) if producer else None
    if producer is None or product is None:
        return f"{ref} is not a product of this mesh"
    if consumer == producer_name:
        return f"a domain reads its own product {ref} by its name in its warehouse, not by its file"
    needs = []
    consumer_file = mesh.files.get(consumer, f"domains/{consumer}/domain.yaml")
    if ref not in (mesh.descriptors[consumer].consumed_refs if consumer in mesh.descriptors else []):
        needs.append(f"`{ref}` in consumes of {consumer_file}")
    if not product.access.grants(consumer):
        index = producer.products.index(product)
        needs.append(f"{consumer!r} in products[{index}].access.consumers of {mesh.files[producer_name]}")
    how = f"read it as source('{producer_name}', '{product.name}') in dbt or ctx.read('{ref}') in Python"
    if needs:
        return f"it would need the access agreement: {' and '.join(needs)}; then {how}"
    return f"{consumer} may consume {ref}: {how}, which serves its governed projection"


def report_refusals(mesh: Mesh, domain: str, message: str, run_id: str | None, via: str) -> list[Refusal]:
    """The refusals a DuckDB error message of `domain`'s step reports, each audited."""
    agreements = {
        f"{d}.{p.name}": agreement_for(mesh, domain, f"{d}.{p.name}")
        for d, descriptor in mesh.descriptors.items()
        for p in descriptor.products
    }
    refusals = []
    for target, is_path in refusals_in(message):
        refusal = explain(mesh.project.home, domain, target, is_path, agreements)
        audit_read(
            mesh.project.home,
            "sandbox_refusal",
            consumer=domain,
            target=refusal.target,
            owner=refusal.owner,
            agreement=refusal.agreement,
            run_id=run_id,
            via=via,
        )
        refusals.append(refusal)
    return refusals
