"""A product's contract as Dagster asset checks: its schema and each declared expectation.

What a check asserts (the descriptor) is kept apart from how it runs (`checks.evaluate`).
"""

from __future__ import annotations

from collections.abc import Sequence

import dagster as dg

from mesh_platform.descriptor.model import Descriptor, Product
from mesh_platform.sdk import SuiteFn

SCHEMA_CHECK = "schema_contract"
PINNED_MAJORS_CHECK = "pinned_majors"  # on the products of a domain that pins a major of what it consumes


def check_specs(descriptor: Descriptor, product: Product, suites: Sequence[SuiteFn] = ()) -> list[dg.AssetCheckSpec]:
    key = dg.AssetKey([descriptor.domain, product.name])
    specs = [
        dg.AssetCheckSpec(
            SCHEMA_CHECK,
            asset=key,
            blocking=True,
            description="Declared columns and types match what was built (missing, extra, retyped).",
        )
    ]
    for check_name, expectation in product.named_expectations():
        specs.append(
            dg.AssetCheckSpec(
                check_name,
                asset=key,
                blocking=expectation.severity == "error",
                description=f"Great Expectations: {expectation.type}({_kwargs(expectation.kwargs)}); "
                f"severity {expectation.severity}",
                metadata={"mesh/expectation": expectation.type, "mesh/severity": expectation.severity},
            )
        )
    if any("@" in ref for ref in descriptor.consumes):
        specs.append(
            dg.AssetCheckSpec(
                PINNED_MAJORS_CHECK,
                asset=key,
                blocking=False,
                description="The majors this domain pins in its consumes are supported: warns while one has a sunset "
                "date (and after it, when the major is no longer built).",
                metadata={"mesh/severity": "warn"},
            )
        )
    for suite in suites:
        specs.append(
            dg.AssetCheckSpec(
                suite.check_name,
                asset=key,
                blocking=suite.severity == "error",
                description=f"Great Expectations suite {suite.name!r} (domain code); severity {suite.severity}",
                metadata={"mesh/severity": suite.severity},
            )
        )
    return specs


def _kwargs(kwargs: dict[str, object]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
