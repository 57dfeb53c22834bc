"""The whole mesh as described: every descriptor, every problem, the domain graph."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

from mesh_platform.descriptor.load import DESCRIPTOR_FILE, read_descriptor
from mesh_platform.descriptor.model import Descriptor, Product
from mesh_platform.descriptor.problems import Problem
from mesh_platform.descriptor.rules import (
    consume_rules,
    cycle_rules,
    domain_order,
    product_rules,
)
from mesh_platform.project.locations import MeshProject


@dataclass
class Mesh:
    project: MeshProject
    descriptors: dict[str, Descriptor] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    lines: dict[str, Callable[[str], int | None]] = field(default_factory=dict)  # descriptor file -> line of a field

    @classmethod
    def load(cls, project: MeshProject | None = None) -> Mesh:
        """Every descriptor, each read on its own: a broken one is its domain's problem only."""
        project = project or MeshProject.discover()
        mesh = cls(project)
        broken: set[str] = set()
        for domain in project.domain_names():
            path = project.domain_dir(domain) / DESCRIPTOR_FILE
            rel = project.rel(path)
            mesh.files[domain] = rel
            loaded = read_descriptor(path, rel)
            mesh.lines[rel] = loaded.line_of
            mesh.problems += loaded.problems
            if loaded.descriptor is None or loaded.problems:
                broken.add(domain)
                continue
            mesh.descriptors[domain] = loaded.descriptor
            mesh.problems += product_rules(loaded.descriptor, rel)
        mesh.problems += consume_rules(mesh.descriptors, mesh.files, broken)
        mesh.problems += cycle_rules(mesh.descriptors, mesh.files)
        mesh.problems = mesh.located(mesh.problems)
        return mesh

    def located(self, problems: list[Problem]) -> list[Problem]:
        """The problems, each in a descriptor given the line of its field where it had none."""
        return [
            replace(p, line=self.lines[p.file](p.field) or 1) if p.line is None and p.file in self.lines else p
            for p in problems
        ]

    @property
    def domains(self) -> list[str]:
        """Valid domains, producers before consumers."""
        return domain_order(self.descriptors)

    def problems_for(self, domain: str) -> list[Problem]:
        return [p for p in self.problems if p.domain == domain]

    def product(self, ref: str) -> tuple[Descriptor, Product]:
        """Resolve `<domain>.<product>`; KeyError with a readable message if unknown."""
        domain, _, name = ref.partition(".")
        descriptor = self.descriptors.get(domain)
        product = descriptor.product(name) if descriptor else None
        if descriptor is None or product is None:
            known = ", ".join(f"{d}.{p.name}" for d, desc in self.descriptors.items() for p in desc.products)
            raise KeyError(f"unknown product {ref!r}; known products: {known}")
        return descriptor, product

    def products(self) -> list[tuple[Descriptor, Product]]:
        return [(self.descriptors[d], p) for d in self.domains for p in self.descriptors[d].products]

    def consumers_of(self, domain: str, product: str) -> list[str]:
        ref = f"{domain}.{product}"
        return sorted(d for d, desc in self.descriptors.items() if ref in desc.consumes)
