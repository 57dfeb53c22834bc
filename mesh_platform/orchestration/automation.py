"""Declarative automation and freshness, applied once to every asset from its descriptor.

A domain that consumes other domains' products updates when they are published, not on a clock.
Each of its assets follows Dagster's `eager` (any dependency updated, none missing or in progress,
the asset itself not in progress), unless a dependency's blocking check failed on its latest
materialization, so a product whose blocking checks failed (and was not published) never triggers
its consumers. Two differences:
- a dependency tagged `mesh/refresh: stream` (what a landing folder feeds, refreshed by
  micro-batches) does not hold its consumers while one of its batch runs is in progress. With files
  landing every few seconds such a product is in progress most of the time, and its consumers would
  wait for a pause in the stream; they read the version published last, which passed its blocking
  checks, never a run's work in progress. (Dagster's `all_deps_blocking_checks_passed` is not used
  for the same reason: it is false while a dependency's checks are planned in a run.)
- an update of a dependency is not forgotten because the consumer was requested or updated in the
  same evaluation. `eager` forgets it (its `since_last_handled` resets on the asset's request or
  update, and a trigger seen in the same evaluation as the reset loses to it: Dagster orders the
  two by time only for conditions without an `|`); with files landing every few seconds the
  consumer then waited for a later publication (docs/performance.md). Here the consumer's request
  resets only in an evaluation in which no dependency updated; otherwise it stays due and runs again
  once its run has ended (that run may have read the update already: one run too many, never one
  too few). The end of a run automation requested resets nothing; an update by any other run (from
  the UI, `mesh run`, a schedule) resets as in `eager`, so a whole-mesh run with the daemon up does
  not run the consumers twice.
A product's `freshness` becomes a Dagster freshness policy.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import dagster as dg

from mesh_platform.descriptor.model import Descriptor, Product
from mesh_platform.upstream.dagster_automation import updated_by_a_run_automation_did_not_request

# the tag of an asset the domain's micro-batches of landing files refresh
REFRESH_TAG, STREAM = "mesh/refresh", "stream"

# The minimum interval of the landing and automation sensors: every loop of Dagster's daemons,
# which evaluate sensors at most every 5 s. A minimum of 5 s skipped every other loop (a loop
# starts 5 s after the previous one started, a little less than 5 s after that tick's timestamp),
# so files waited up to 10 s for their sensor and published products up to 10 s for their consumers.
EVERY_DAEMON_LOOP_S = 4


def consumer_condition() -> dg.AutomationCondition:
    ac = dg.AutomationCondition
    streamed = dg.AssetSelection.tag(REFRESH_TAG, STREAM)
    deps_updated = ac.any_deps_updated()
    by_another_run = updated_by_a_run_automation_did_not_request()
    handled = ((ac.newly_requested() & ~deps_updated) | by_another_run | ac.initial_evaluation()).with_label(
        "handled: requested while no dependency updated, or updated by a run automation did not request"
    )
    eager = (
        ac.in_latest_time_window()
        & (ac.newly_missing() | deps_updated).since(handled)
        & ~ac.any_deps_missing()
        & ~ac.any_deps_in_progress().ignore(streamed)
        & ~ac.in_progress()
    ).with_label("eager")
    check_failed = ac.any_checks_match(ac.check_failed(), blocking_only=True)
    blocked = ac.any_deps_match(check_failed).with_label("a dependency's blocking check failed")
    return (eager & ~blocked).with_label(
        "eager (not waiting on a streamed dependency's micro-batch, not forgetting an update seen with its own run), "
        "unless a dependency's blocking check failed"
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
