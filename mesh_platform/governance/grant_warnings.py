"""`mesh validate`'s warnings on access grants that do nothing: a grant to the owning domain (an owner
always reads its products, pii included), and to a name that is no domain of the mesh (a typo leaves
the intended consumer without access, and would grant a domain later created under that name). A pii
reader that is not a consumer is a problem (`pii-reader-is-consumer`, `descriptor.rules`)."""

from __future__ import annotations

from mesh_platform.descriptor.problems import Problem
from mesh_platform.project.mesh import Mesh

ROLES = ("consumers", "pii_readers")


def grant_warnings(mesh: Mesh) -> list[Problem]:
    domains = set(mesh.project.domain_names())
    warnings = []
    for domain, descriptor in mesh.descriptors.items():
        for i, product in enumerate(descriptor.products):
            ref = f"{domain}.{product.name}"
            for role in ROLES:
                for j, name in enumerate(getattr(product.access, role)):
                    if name == "*":
                        continue
                    if name == domain:
                        rule = "grant-to-owner"
                        message = f"{name} owns {ref} and always reads it, pii included: the grant does nothing"
                    elif name not in domains:
                        rule = "grant-unknown-domain"
                        message = (
                            f"{name!r} is no domain of this mesh ({', '.join(sorted(domains))}): the grant "
                            f"does nothing now, and would grant a domain created later under that name"
                        )
                    else:
                        continue
                    field = f"products[{i}].access.{role}[{j}]"
                    warnings.append(Problem(mesh.files[domain], field, rule, message, None, domain))
    return mesh.located(warnings)
