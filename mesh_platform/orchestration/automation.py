"""Declarative automation and freshness, applied once to every asset from its descriptor.

A domain that consumes other domains' products updates when they are published, not on a clock:
each of its assets is Dagster's `eager` (any dependency updated, none missing or in progress, the
asset itself not in progress), unless a dependency's blocking check failed on its latest
materialization, so a product whose blocking checks failed (and was not published) never triggers
its consumers. One difference: a dependency tagged `mesh/refresh: stream` (what a landing folder
feeds, refreshed by micro-batches) does not hold its consumers while one of its batch runs is in
progress. With files landing every few seconds such a product is in progress most of the time,
and its consumers would wait for a pause in the stream; they read the version published last,
which passed its blocking checks, never a run's work in progress. (Dagster's
`all_deps_blocking_checks_passed` is not used for the same reason: it is false while a
dependency's checks are planned in a run.) A product's `freshness` becomes a Dagster freshness
policy.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import dagster as dg

from mesh_platform.descriptor.model import Descriptor, Product

# the tag of an asset the domain's micro-batches of landing files refresh
REFRESH_TAG, STREAM = "mesh/refresh", "stream"


def consumer_condition() -> dg.AutomationCondition:
    streamed = dg.AssetSelection.tag(REFRESH_TAG, STREAM)
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
