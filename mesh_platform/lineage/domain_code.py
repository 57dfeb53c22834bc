"""A domain's `@product` / `@internal` functions, for analysis outside `build_domain`: the code scan
runs first (importing a module runs its top level), exactly as when definitions load."""

from __future__ import annotations

import traceback

from mesh_platform.descriptor.problems import Problem
from mesh_platform.project.mesh import Mesh
from mesh_platform.sdk import AssetFn


def domain_asset_functions(mesh: Mesh, domain: str) -> tuple[list[AssetFn], list[Problem]]:
    """The domain's asset functions, or the problems that keep its code from being imported."""
    from mesh_platform.defs.domain_definitions import _asset_fns, _import_domain_code, code_access_problems

    descriptor = mesh.descriptors[domain]
    if access := code_access_problems(mesh, descriptor):
        return [], access
    try:
        return _asset_fns(_import_domain_code(mesh, domain), descriptor), []
    except Exception as exc:
        detail = "".join(traceback.format_exception_only(exc)).strip()
        code_file = mesh.project.rel(mesh.project.domain_dir(domain) / "assets.py")
        return [], [Problem(code_file, "", "domain-code-imports", detail, domain=domain)]
