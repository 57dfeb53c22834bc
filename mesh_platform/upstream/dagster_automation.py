"""Dagster's declarative automation, where the mesh's consumer condition goes past Dagster's API
docs: the one operand and the run tag listed in this package's docstring (`mesh_platform/upstream`)."""

from __future__ import annotations

import dagster as dg

# the tag Dagster's asset daemon gives every run an automation condition sensor requests
AUTOMATION_RUN_TAG = "dagster/from_automation_condition"


def updated_by_a_run_automation_did_not_request() -> dg.AutomationCondition:
    """The asset was updated since the last evaluation, by at least one run without the tag."""
    ac = dg.AutomationCondition
    return ac.newly_updated() & ~ac.all_new_updates_have_run_tags(tag_keys={AUTOMATION_RUN_TAG})
