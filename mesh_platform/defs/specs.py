"""Global policy, applied once: what every asset of the mesh carries in Dagster.

Products: key [domain, product], group = domain, owners, description, value, business process,
column schema with classification, kinds and tags. Internal assets: same key scheme and owner,
tagged private to their domain.
"""

from __future__ import annotations

from typing import Any

import dagster as dg

from mesh_platform.descriptor.model import SQL_TYPE_NAMES, Descriptor, Product


def column_schema(product: Product) -> dg.TableSchema:
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                name=c.name,
                type=SQL_TYPE_NAMES[c.type],
                description=c.description,
                tags={"classification": c.classification, **({"mask": c.mask_policy} if c.mask_policy else {})},
            )
            for c in product.columns
        ]
    )


def product_attributes(descriptor: Descriptor, product: Product, kind: str) -> dict[str, Any]:
    pii = [c.name for c in product.columns if c.classification == "pii"]
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
