"""A freshness sensor per domain: a product older than its `freshness` alerts its owner, once per breach.

Dagster's freshness policy (on each product's asset) shows the state in the UI; this sensor turns a
breach into an alert. Its cursor is the set of products currently stale: a product alerts when it
becomes stale and again only after it was fresh in between.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import dagster as dg

from mesh_platform.descriptor.model import Descriptor

FRESHNESS_INTERVAL_S = 60


def human(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def stale_products(
    instance: dg.DagsterInstance, descriptor: Descriptor, now: float | None = None
) -> dict[str, tuple[float, int]]:
    """Products past their freshness: name -> (age in seconds, allowed seconds). Never-built ones
    are not stale (their state is unknown), as in Dagster's freshness policy."""
    now = time.time() if now is None else now
    stale = {}
    for product in descriptor.products:
        allowed = product.freshness_seconds
        if allowed is None:
            continue
        event = instance.get_latest_materialization_event(dg.AssetKey([descriptor.domain, product.name]))
        if event is not None and now - event.timestamp > allowed:
            stale[product.name] = (now - event.timestamp, allowed)
    return stale


def freshness_sensor(descriptor: Descriptor, notify: Callable[[str, str], None]) -> dg.SensorDefinition:
    """`notify(product, message)` sends the alert (see `mesh_platform.defs.publish.alert`)."""

    @dg.sensor(
        name=f"{descriptor.domain}_freshness",
        minimum_interval_seconds=FRESHNESS_INTERVAL_S,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Alerts the owner when a {descriptor.domain} product is older than its freshness.",
    )
    def _sensor(context: dg.SensorEvaluationContext) -> dg.SkipReason:
        previously = set(json.loads(context.cursor)) if context.cursor else set()
        stale = stale_products(context.instance, descriptor)
        for name in sorted(set(stale) - previously):
            age, allowed = stale[name]
            notify(
                name,
                f"{descriptor.domain}.{name} is stale: last published {human(age)} ago, "
                f"its freshness allows {human(allowed)}",
            )
        context.update_cursor(json.dumps(sorted(stale)))
        return dg.SkipReason(f"stale: {', '.join(sorted(stale)) or 'none'}")

    return _sensor
