"""A product's contract as plain data: what consumers may rely on, kept with each published version
(`store.Published.contract`) and compared by `contracts.changes`."""

from __future__ import annotations

from typing import Any

from mesh_platform.descriptor.model import Descriptor, Product

Snapshot = dict[str, Any]


def contract_snapshot(descriptor: Descriptor, product: Product) -> Snapshot:
    return {
        "product": f"{descriptor.domain}.{product.name}",
        "version": product.version,
        "columns": [
            {**c.model_dump(include={"name", "type", "description", "classification"}), "mask": c.mask_policy}
            for c in product.columns
        ],
        "expectations": [{"type": e.type, "kwargs": e.kwargs, "severity": e.severity} for e in product.expectations],
        "freshness": product.freshness,
        "consumers": sorted(product.access.consumers),
        "pii_readers": sorted(product.access.pii_readers),
    }


def major_of(version: str | None) -> int:
    """The major of `MAJOR.MINOR`; a product without a version is at major 1."""
    return int(version.split(".")[0]) if version else 1
