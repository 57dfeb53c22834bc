"""Global policy, applied once: what every asset of the mesh carries in Dagster.

`mesh_spec` is the one place a domain's asset becomes Dagster spec attributes, whoever builds it
(a Python `@product` / `@internal` function or a dbt model):

- products: key [domain, product], group = domain, owners, description and value, business
  process, consumers, column schema with classification, kinds and tags, freshness, and the
  product's contract as asset checks (`checks.asset_checks`);
- internal assets: the same key scheme and owner, tagged private to their domain, no checks;
- both: declarative automation when the domain consumes other domains' products.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import dagster as dg

from mesh_platform.checks.asset_checks import check_specs
from mesh_platform.descriptor.model import Descriptor, Product
from mesh_platform.governance.masking import pii_columns
from mesh_platform.orchestration.automation import REFRESH_TAG, STREAM, automation_attributes
from mesh_platform.sdk import SuiteFn
from mesh_platform.sql.syntax import SQL_TYPES


def column_schema(product: Product) -> dg.TableSchema:
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                name=c.name,
                type=SQL_TYPES[c.type],
                description=c.description,
                tags={"classification": c.classification, **({"mask": c.mask_policy} if c.mask_policy else {})},
            )
            for c in product.columns
        ]
    )


def version_metadata(descriptor: Descriptor, product: Product) -> dict[str, str]:
    """The product's version, and for a product published in more than one major, which ones."""
    if product.version is None:
        return {}
    metadata = {"mesh/version": product.version}
    majors = descriptor.majors_of(product.family)
    if len(majors) > 1:
        metadata["mesh/majors"] = ", ".join(f"{product.family}@{p.major}" for p in majors)
    if product.is_older_major:
        metadata["mesh/major_of"] = f"{descriptor.domain}.{product.family} (an older major, built next to the latest)"
    if product.sunset is not None:
        metadata["mesh/sunset"] = product.sunset.isoformat()
    return metadata


def product_attributes(descriptor: Descriptor, product: Product, kind: str) -> dict[str, Any]:
    pii = pii_columns(product.columns)
    return {
        "key": dg.AssetKey([descriptor.domain, product.name]),
        "group_name": descriptor.domain,
        "owners": [descriptor.owner_of(product)],
        "description": f"{product.description.strip()}\n\nValue: {product.value.strip()}",
        "kinds": {kind, "duckdb"},
        "tags": {
            "mesh/role": "product",
            "mesh/domain": descriptor.domain,
            "mesh/pii": "true" if pii else "false",
        },
        "metadata": {
            "mesh/value": product.value.strip(),
            "mesh/business_process": descriptor.business_process,
            "mesh/domain": descriptor.domain,
            "mesh/consumers": ", ".join(product.access.consumers) or "(none)",
            "mesh/pii_columns": ", ".join(pii) or "(none)",
            "mesh/freshness": product.freshness or "(none)",
            **version_metadata(descriptor, product),
            "dagster/column_schema": column_schema(product),
        },
    }


def internal_attributes(descriptor: Descriptor, name: str, description: str | None, kind: str) -> dict[str, Any]:
    return {
        "key": dg.AssetKey([descriptor.domain, name]),
        "group_name": descriptor.domain,
        "owners": [descriptor.owner],
        "description": description or f"Internal to {descriptor.domain}.",
        "kinds": {kind, "duckdb"},
        "tags": {"mesh/role": "internal", "mesh/domain": descriptor.domain},
        "metadata": {"mesh/domain": descriptor.domain, "mesh/visibility": "private to its domain"},
    }


@dataclass(frozen=True)
class MeshSpec:
    """What the mesh says about one asset: its spec attributes and, for a product, its checks."""

    attributes: dict[str, Any]
    checks: list[dg.AssetCheckSpec]

    @property
    def key(self) -> dg.AssetKey:
        return self.attributes["key"]

    def spec(self, deps: Iterable[dg.AssetKey]) -> dg.AssetSpec:
        """A new spec (an asset the mesh builds itself)."""
        return dg.AssetSpec(deps=deps, **self.attributes)

    def applied_to(self, spec: dg.AssetSpec) -> dg.AssetSpec:
        """`spec` (made by a library, e.g. dagster-dbt) with the mesh's attributes; its metadata is kept
        beside the mesh's."""
        attributes = dict(self.attributes)
        metadata = {**spec.metadata, **attributes.pop("metadata")}
        return spec.replace_attributes(**attributes, metadata=metadata)


def mesh_spec(
    descriptor: Descriptor,
    name: str,
    kind: str,
    product: Product | None,
    description: str | None = None,
    suites: Sequence[SuiteFn] = (),
    streamed: bool = False,
) -> MeshSpec:
    """The asset `name` of `descriptor`'s domain, built by `kind` (`python`, `dbt`): a product when
    `product` is given (its descriptor entry), else an internal asset described by `description`.
    `streamed`: the asset is refreshed by micro-batches of landing files (tag `mesh/refresh: stream`)."""
    if product is not None:
        attributes = product_attributes(descriptor, product, kind)
        checks = check_specs(descriptor, product, suites)
    else:
        attributes = internal_attributes(descriptor, name, description, kind)
        checks = []
    if streamed:
        attributes["tags"] = {**attributes["tags"], REFRESH_TAG: STREAM}
    return MeshSpec({**attributes, **automation_attributes(descriptor, product)}, checks)
