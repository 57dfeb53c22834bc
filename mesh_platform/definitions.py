"""The whole mesh as one code location (`dg check defs`, tests); domains that fail to build are
left out and reported in the log. The UI's workspace.yaml loads one code location per domain
instead, so a broken domain shows its own error there."""

from __future__ import annotations

import logging

import dagster as dg

from mesh_platform.defs.domain_definitions import build_domain, definitions_from
from mesh_platform.descriptor.problems import MeshDefinitionError
from mesh_platform.project.mesh import Mesh

log = logging.getLogger(__name__)


def mesh_definitions(mesh: Mesh | None = None) -> dg.Definitions:
    mesh = mesh or Mesh.load()
    parts = []
    for domain in mesh.project.domain_names():
        try:
            parts.append(build_domain(mesh, domain))
        except MeshDefinitionError as exc:
            log.error("domain %s is left out:\n%s", domain, exc)
    return definitions_from(parts)


@dg.definitions
def defs() -> dg.Definitions:
    return mesh_definitions()
