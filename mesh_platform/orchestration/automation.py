"""Declarative automation and freshness, applied once to every asset from its descriptor.

A domain that consumes other domains' products updates when they are published, not on a clock:
each of its assets is `eager` (any dependency updated, none missing or in progress) and waits until
every dependency's blocking checks passed, so a product whose blocking checks failed (and was not
published) never triggers its consumers. A product's `freshness` becomes a Dagster freshness policy.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import dagster as dg

from mesh_platform.descriptor.model import Descriptor, Product


def consumer_condition() -> dg.AutomationCondition:
    return (dg.AutomationCondition.eager() & dg.AutomationCondition.all_deps_blocking_checks_passed()).with_label(
        "eager, after upstream blocking checks pass"
    )


def freshness_policy(product: Product) -> dg.FreshnessPolicy | None:
    seconds = product.freshness_seconds
    if seconds is None:
        return None
    return dg.FreshnessPolicy.time_window(fail_window=timedelta(seconds=seconds))


def automation_attributes(descriptor: Descriptor, product: Product | None) -> dict[str, Any]:
    attributes: dict[str, Any] = {}
    if descriptor.consumes:
        attributes["automation_condition"] = consumer_condition()
    policy = freshness_policy(product) if product is not None else None
    if policy is not None:
        attributes["freshness_policy"] = policy
    return attributes
