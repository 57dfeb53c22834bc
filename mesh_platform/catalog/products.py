"""The catalog: every product with its owner, value, columns, consumers, latest status and freshness."""

from __future__ import annotations

import os
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mesh_platform.descriptor.model import Descriptor, Product
from mesh_platform.project.mesh import Mesh
from mesh_platform.storage.product_store import ProductStore, Published


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
        "ref": f"{descriptor.domain}.{product.pinned_ref}",
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
        "version": product.version,
        "major": product.major,
        "major_of": f"{descriptor.domain}.{product.family}" if product.is_older_major else None,
        "sunset": product.sunset.isoformat() if product.sunset else None,
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


# --- products stored but declared by no descriptor -------------------------------------------------


@dataclass(frozen=True)
class StoredOrphan:
    """A product MESH_HOME holds that no descriptor declares any more (renamed or removed)."""

    ref: str
    folder: Path
    versions: int  # published versions kept there


@dataclass(frozen=True)
class Pruned:
    ref: str
    archived_to: Path | None  # where its stored versions went (nothing is deleted)
    versions: int
    history_wiped: bool  # it had materialization history in the Dagster instance, now wiped


class NotAnOrphan(ValueError):
    """`prune` refused: the product is declared, or its domain's descriptor cannot be judged."""


class NothingStored(NotAnOrphan):
    """`prune` of a name under which nothing is stored."""


def _declared(mesh: Mesh) -> set[str]:
    return {f"{d.domain}.{p.name}" for d, p in mesh.products()}


def _unreadable(mesh: Mesh) -> set[str]:
    """Domains whose descriptor cannot be used: their products are left out, not orphaned."""
    return set(mesh.project.domain_names()) - set(mesh.descriptors)


def stored_orphans(mesh: Mesh) -> list[StoredOrphan]:
    """Products stored under MESH_HOME/products that no descriptor declares (a cheap scan of folders)."""
    root = mesh.project.home.products
    declared, unreadable = _declared(mesh), _unreadable(mesh)
    orphans = []
    for domain_dir in sorted(root.iterdir()) if root.is_dir() else []:
        if not domain_dir.is_dir() or domain_dir.name in unreadable:
            continue
        for folder in sorted(p for p in domain_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
            ref = f"{domain_dir.name}.{folder.name}"
            if ref not in declared:
                orphans.append(StoredOrphan(ref, folder, len(list(folder.glob("*.parquet")))))
    return orphans


def _instance(mesh: Mesh) -> Any | None:
    """The Dagster instance of MESH_HOME, if one was ever made."""
    dagster_home = mesh.project.home.dagster_home
    if not (dagster_home / "dagster.yaml").exists():
        return None
    from dagster import DagsterInstance

    return DagsterInstance.from_config(str(dagster_home))


def _defined_by_code(mesh: Mesh, domain: str, name: str) -> bool:
    """Whether the domain's code location still defines the asset key [domain, name] (an internal
    asset may carry a removed product's name)."""
    if domain not in mesh.descriptors:
        return False
    import dagster as dg

    from mesh_platform.defs.domain_definitions import build_domain, definitions_from
    from mesh_platform.descriptor.problems import MeshDefinitionError

    try:
        graph = definitions_from([build_domain(mesh, domain)]).resolve_asset_graph()
    except MeshDefinitionError as exc:
        raise NotAnOrphan(
            f"{domain}'s code location does not load ({len(exc.problems)} problem(s), see `mesh validate`), so "
            f"whether it still defines {domain}/{name} is unknown: fix it first"
        ) from exc
    return graph.has(dg.AssetKey([domain, name]))


def prune_orphan(mesh: Mesh, ref: str, now: datetime | None = None) -> Pruned:
    """Take a product no descriptor declares out of the catalog and the Dagster UI: its stored
    versions are moved to MESH_HOME/archive/products/<domain>/<product>/<time>/ (nothing is deleted)
    and its materialization history is wiped from the Dagster instance (Dagster lists an asset key
    with history even when no code location defines it)."""
    domain, _, name = ref.partition(".")
    if ref in _declared(mesh):
        raise NotAnOrphan(f"{ref} is declared in {mesh.files[domain]}: remove or rename it there first")
    if domain in _unreadable(mesh):
        raise NotAnOrphan(
            f"{mesh.files[domain]} has problems (see `mesh validate`): its products cannot be judged until it is fixed"
        )
    import dagster as dg

    key = dg.AssetKey([domain, name])
    folder = mesh.project.home.product_dir(domain, name)
    with ExitStack() as stack:
        instance = _instance(mesh)
        if instance is not None:
            stack.enter_context(instance)
        has_history = instance is not None and key in instance.get_asset_keys(prefix=[domain])
        if not folder.is_dir() and not has_history:
            raise NothingStored(f"nothing is stored under {ref}: neither {folder} nor Dagster history")
        if has_history and _defined_by_code(mesh, domain, name):
            raise NotAnOrphan(f"{domain}'s code still defines the asset {domain}/{name}: its history is kept")
        archived, versions = None, 0
        if folder.is_dir():
            versions = len(list(folder.glob("*.parquet")))
            stamp = f"{now or datetime.now(UTC):%Y%m%dT%H%M%S%f}"
            archived = mesh.project.home.path / "archive" / "products" / domain / name / stamp
            archived.parent.mkdir(parents=True, exist_ok=True)
            os.replace(folder, archived)
        if has_history:
            instance.wipe_assets([key])
    return Pruned(ref, archived, versions, has_history)
