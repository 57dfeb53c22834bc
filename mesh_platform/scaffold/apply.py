"""Write a checked plan, prepare the dbt project it touches, keep the README's lineage current."""

from __future__ import annotations

from dataclasses import dataclass, field

from mesh_platform.project.mesh import Mesh
from mesh_platform.scaffold.plan import FilePlan


class ScaffoldError(ValueError):
    """Bad input for a scaffold: nothing was written."""


@dataclass
class Scaffolded:
    created: list[str]
    changed: list[str]
    notes: list[str] = field(default_factory=list)


def apply(mesh: Mesh, plan: FilePlan, dbt_domain: str | None, notes: list[str]) -> Scaffolded:
    """Write `plan`; parse `dbt_domain`'s project (undoing every write if dbt refuses it); refresh the README."""
    result = Scaffolded(plan.created(), plan.changed(), list(notes))
    with plan.applied():
        if dbt_domain is not None:
            prepare_dbt(mesh, dbt_domain)
    if refresh_readme(mesh):
        result.changed.append("README.md")
    return result


def prepare_dbt(mesh: Mesh, domain: str) -> None:
    """`mesh prepare` for one dbt project: parsed now, so the first definitions load finds it parsed."""
    from mesh_platform.defs.dbt_project import prepare_project

    project_dir = mesh.project.dbt_project_dir(domain)
    assert project_dir is not None, f"no dbt project for {domain}"
    prepare_project(project_dir, mesh.project.dbt_dir, domain)


def refresh_readme(mesh: Mesh) -> bool:
    """Regenerate the README's lineage diagram (if the project has one) to include the new code."""
    from mesh_platform.lineage.readme_diagram import START, update

    readme = mesh.project.root / "README.md"
    if not readme.exists() or START not in readme.read_text():
        return False
    return update(mesh.project.root)
