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
        """Resolve `<domain>.<product>` or one of its majors, `<domain>.<product>@<major>`; KeyError with a
        readable message if unknown."""
        name, at, major = ref.partition("@")
        domain, _, product_name = name.partition(".")
        descriptor = self.descriptors.get(domain)
        product = descriptor.product(product_name) if descriptor else None
        if descriptor is None or product is None:
            known = ", ".join(f"{d}.{p.pinned_ref}" for d, desc in self.descriptors.items() for p in desc.products)
            raise KeyError(f"unknown product {ref!r}; known products: {known}")
        if not at:
            return descriptor, product
        found = next((p for p in descriptor.majors_of(product.family) if str(p.major) == major), None)
        if found is None:
            published = ", ".join(f"@{p.major}" for p in descriptor.majors_of(product.family) if p.major is not None)
            raise KeyError(f"{name} has no major {major!r} (published: {published or 'no declared version'})")
        return descriptor, found

    def products(self) -> list[tuple[Descriptor, Product]]:
        return [(self.descriptors[d], p) for d in self.domains for p in self.descriptors[d].products]

    def consumers_of(self, domain: str, product: str) -> list[str]:
        """The domains that read product `product` of `domain` (a major: the domains that pin it, or read
        the latest)."""
        ref = f"{domain}.{product}"
        descriptor = self.descriptors.get(domain)
        found = descriptor.product(product) if descriptor else None
        family = f"{domain}.{found.family}" if found else ref
        return sorted(
            d for d, desc in self.descriptors.items() if family in desc.consumed_refs and self.resolve(d, family) == ref
        )

    def resolve(self, consumer: str, ref: str) -> str:
        """The product `consumer` reads when it names `ref` (`<domain>.<product>`): the major it pins in
        its consumes (an older major is `<domain>.<product>_v<major>`), else the latest."""
        descriptor = self.descriptors.get(consumer)
        major = descriptor.pinned_major(ref) if descriptor else None
        domain, _, name = ref.partition(".")
        producer = self.descriptors.get(domain)
        if major is None or producer is None:
            return ref
        pinned = next((p for p in producer.majors_of(name) if p.major == major), None)
        return f"{domain}.{pinned.name}" if pinned else ref


def pinned_majors(mesh: Mesh) -> set[tuple[str, str, int]]:
    """(domain, product, major) of every major a consumer pins in its consumes: the store keeps the
    current version of each (retention never prunes it). `product` is the name the major is stored
    under (`<product>_v<major>` for an older major)."""
    pinned = set()
    for consumer, descriptor in mesh.descriptors.items():
        for ref in descriptor.consumed_refs:
            major = descriptor.pinned_major(ref)
            if major is None:
                continue
            domain, _, product = mesh.resolve(consumer, ref).partition(".")
            pinned.add((domain, product, major))
    return pinned
