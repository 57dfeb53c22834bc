"""The catalog: every product with its owner, value, columns, consumers, latest status and freshness."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from mesh_platform.descriptor.model import Descriptor, Product
from mesh_platform.mesh import Mesh
from mesh_platform.store import ProductStore, Published


def freshness(product: Product, published_at: str | None, now: datetime | None = None) -> dict[str, Any]:
    """The freshness policy (`freshness` in the descriptor) against the age of the current version.

    state: `fresh` (age within the policy), `stale` (older), `unpublished` (nothing published yet)
    or `no policy` (published, but the descriptor sets no freshness).
    """
    now = now or datetime.now(UTC)
    age = None
    if published_at is not None:
        at = datetime.fromisoformat(published_at)
        age = max(0.0, (now - (at if at.tzinfo else at.replace(tzinfo=UTC))).total_seconds())
    limit = product.freshness_seconds
    if age is None:
        state = "unpublished"
    elif limit is None:
        state = "no policy"
    else:
        state = "fresh" if age <= limit else "stale"
    return {
        "policy": product.freshness,
        "max_age_seconds": limit,
        "state": state,
        "age_seconds": round(age, 1) if age is not None else None,
        "published_at": published_at,
    }


def human_age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"


def _entry(mesh: Mesh, store: ProductStore, descriptor: Descriptor, product: Product) -> dict[str, Any]:
    status = store.status(descriptor.domain, product.name) or {}
    published: Published | None = store.current(descriptor.domain, product.name)
    checks = status.get("checks", [])
    return {
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
        "expectations": [
            {"check": name, "type": e.type, "kwargs": e.kwargs, "severity": e.severity}
            for name, e in product.named_expectations()
        ],
        "consumers": list(product.access.consumers),
        "consumed_by": mesh.consumers_of(descriptor.domain, product.name),
        "pii_readers": list(product.access.pii_readers),
        "freshness": freshness(product, published.published_at if published else None),
        "status": {
            "last_run": status.get("status", "never run"),
            "run_id": status.get("run_id"),
            "recorded_at": status.get("recorded_at"),
            "checks_passed": sum(1 for c in checks if c["passed"]),
            "checks_failed": sum(1 for c in checks if not c["passed"] and c.get("ran", True)),
            "checks_not_run": sum(1 for c in checks if not c.get("ran", True)),
            "checks": checks,
            "blockers": status.get("blockers") or [],
            "error": status.get("error"),
            "published_version": published.version if published else None,
            "published_at": published.published_at if published else None,
            "rows": published.rows if published else None,
        },
    }


def product_entries(mesh: Mesh) -> list[dict[str, Any]]:
    store = ProductStore(mesh.project.home)
    return [_entry(mesh, store, descriptor, product) for descriptor, product in mesh.products()]


def product_entry(mesh: Mesh, ref: str) -> dict[str, Any]:
    """One product's entry; KeyError naming the known products if `ref` is unknown."""
    descriptor, product = mesh.product(ref)
    return _entry(mesh, ProductStore(mesh.project.home), descriptor, product)
