"""The mesh as a Dagster resource: what a step of any domain reads besides its own code.

Dagster sets the resource up once per run (in the process that executes the run's steps), so every
step of a run sees the same descriptors, and a run sees the descriptors as they are when it starts:
a grant revoked or a masking policy changed in a producer's descriptor applies from the next run,
whoever launches it (`mesh run`, the UI, a schedule or a sensor).
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from pydantic import PrivateAttr

from mesh_platform.descriptor.model import Descriptor
from mesh_platform.pg_warehouse import warehouse_kind
from mesh_platform.project.locations import MeshHome, MeshProject
from mesh_platform.project.mesh import Mesh
from mesh_platform.storage.product_store import ProductStore

RESOURCE_KEY = "mesh"  # the name each step's parameter has


class MeshResource(dg.ConfigurableResource):
    """Descriptors (with their grants and masking policies), the product store and the warehouse."""

    project_dir: str
    home_dir: str
    _mesh: Mesh | None = PrivateAttr(default=None)

    @classmethod
    def of(cls, project: MeshProject) -> MeshResource:
        return cls(project_dir=str(project.root), home_dir=str(project.home.path))

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._mesh = Mesh.load(MeshProject(Path(self.project_dir), MeshHome(Path(self.home_dir))))

    @property
    def mesh(self) -> Mesh:
        """Every descriptor of the project as read when the run started, with the problems found."""
        if self._mesh is None:  # used outside a run (a direct invocation): read now
            self._mesh = Mesh.load(MeshProject(Path(self.project_dir), MeshHome(Path(self.home_dir))))
        return self._mesh

    @property
    def home(self) -> MeshHome:
        return self.mesh.project.home

    def descriptor(self, domain: str) -> Descriptor:
        return self.mesh.descriptors[domain]

    @property
    def store(self) -> ProductStore:
        """Published versions, rejected builds and each product's latest status."""
        return ProductStore(self.home)

    @property
    def warehouse(self) -> str:
        """The warehouse the run builds in: `duckdb` or `postgres` (`MESH_WAREHOUSE`)."""
        return warehouse_kind()
