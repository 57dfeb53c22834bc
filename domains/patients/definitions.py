"""The patients domain's Dagster code location (listed in workspace.yaml)."""

import dagster as dg

from mesh_platform.defs.domain_definitions import domain_definitions


@dg.definitions
def defs() -> dg.Definitions:
    return domain_definitions("patients")
