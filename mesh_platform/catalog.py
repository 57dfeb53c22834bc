"""The catalog: every product with its owner, value, columns, consumers and latest status."""

from __future__ import annotations

from typing import Any

from mesh_platform.mesh import Mesh
from mesh_platform.store import ProductStore


def product_entries(mesh: Mesh) -> list[dict[str, Any]]:
    store = ProductStore(mesh.project.home)
    entries = []
    for descriptor, product in mesh.products():
        status = store.status(descriptor.domain, product.name) or {}
        published = store.current(descriptor.domain, product.name)
        checks = status.get("checks", [])
        entries.append(
            {
                "domain": descriptor.domain,
                "name": product.name,
                "ref": f"{descriptor.domain}.{product.name}",
                "owner": descriptor.owner_of(product),
                "description": product.description,
                "value": product.value.strip(),
                "columns": [
                    {
                        "name": c.name,
                        "type": c.type,
                        "description": c.description,
                        "classification": c.classification,
                        "mask": c.mask_policy,
                    }
                    for c in product.columns
                ],
                "consumers": list(product.access.consumers),
                "consumed_by": mesh.consumers_of(descriptor.domain, product.name),
                "pii_readers": list(product.access.pii_readers),
                "freshness": product.freshness,
                "status": {
                    "last_run": status.get("status", "never run"),
                    "run_id": status.get("run_id"),
                    "recorded_at": status.get("recorded_at"),
                    "checks_passed": sum(1 for c in checks if c["passed"]),
                    "checks_failed": sum(1 for c in checks if not c["passed"]),
                    "published_version": published.version if published else None,
                    "published_at": published.published_at if published else None,
                    "rows": published.rows if published else None,
                },
            }
        )
    return entries
