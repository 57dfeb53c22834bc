"""Descriptor expectations that Great Expectations itself refuses (bad kwargs), found before any run."""

from __future__ import annotations

from mesh_platform.descriptor.problems import Problem
from mesh_platform.project.mesh import Mesh


def expectation_kwargs_problems(mesh: Mesh) -> list[Problem]:
    from mesh_platform.checks.evaluate import gx_expectation

    problems = []
    for domain, descriptor in mesh.descriptors.items():
        for i, product in enumerate(descriptor.products):
            for j, expectation in enumerate(product.expectations):
                try:
                    gx_expectation(expectation.type, expectation.kwargs)
                except Exception as exc:  # GX raises pydantic or its own errors
                    detail = " ".join(str(exc).split())[:300]
                    problems.append(
                        Problem(
                            mesh.files[domain],
                            f"products[{i}].expectations[{j}].kwargs",
                            "expectation-kwargs",
                            f"Great Expectations rejects {expectation.type}({expectation.kwargs}): {detail}",
                            domain=domain,
                        )
                    )
    return problems
