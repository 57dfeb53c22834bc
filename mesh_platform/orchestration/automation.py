"""Declarative automation and freshness, applied once to every asset from its descriptor.

A domain that consumes other domains' products updates when they are published, not on a clock:
each of its assets is `eager` (any dependency updated, none missing, the asset itself not in
progress) unless a dependency's blocking check failed on its latest materialization, so a
product whose blocking checks failed (and was not published) never triggers its consumers. Unlike
Dagster's plain `eager` (and `all_deps_blocking_checks_passed`, false while a dependency's checks
are planned in a run) it does not wait while a dependency's run is in progress: a consumer reads the
versions its producers have published, which passed their blocking checks, never a run's work in
progress, and a producer fed by a stream of landing files is in progress most of the time, which
would hold its consumers back for as long as the stream flows. A product's `freshness` becomes a
Dagster freshness policy.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import dagster as dg

from mesh_platform.descriptor.model import Descriptor, Product

STREAMED_TAG = {"mesh/refresh": "stream"}  # an asset the domain's micro-batches of landing files refresh


def consumer_condition() -> dg.AutomationCondition:
    streamed = dg.AssetSelection.tag(*next(iter(STREAMED_TAG.items())))
    batch_in_progress = dg.AutomationCondition.any_deps_in_progress().ignore(streamed)
    eager = dg.AutomationCondition.eager().replace("any_deps_in_progress", batch_in_progress)
    check_failed = dg.AutomationCondition.any_checks_match(dg.AutomationCondition.check_failed(), blocking_only=True)
    blocked = dg.AutomationCondition.any_deps_match(check_failed).with_label("a dependency's blocking check failed")
    return (eager & ~blocked).with_label(
        "eager (not waiting on a streamed dependency's micro-batch), unless a dependency's blocking check failed"
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
