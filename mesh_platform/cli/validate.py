"""`mesh validate`: every descriptor, the cross-domain graph, and each domain's definitions."""

from __future__ import annotations

import typer

from mesh_platform.cli.common import err, load_mesh, print_json
from mesh_platform.descriptor.problems import MeshDefinitionError, Problem
from mesh_platform.text import counted, one_line


def collect_problems() -> tuple[list[str], list[Problem], list[Problem]]:
    """(domains, problems, warnings)."""
    from mesh_platform.checks.validate_expectations import expectation_kwargs_problems
    from mesh_platform.contracts.majors import sunset_warnings
    from mesh_platform.defs.domain_definitions import build_domain
    from mesh_platform.governance.grant_warnings import grant_warnings
    from mesh_platform.project.workspace_file import workspace_problems

    mesh = load_mesh()
    problems = list(mesh.problems) + expectation_kwargs_problems(mesh) + workspace_problems(mesh.project)
    warnings: list[Problem] = sunset_warnings(mesh) + grant_warnings(mesh)
    for domain in mesh.descriptors:
        if mesh.problems_for(domain):
            continue
        try:
            warnings += build_domain(mesh, domain).warnings
        except MeshDefinitionError as exc:
            problems += exc.problems
        except Exception as exc:  # a definition Dagster refuses: the domain's problem, reported like the rest
            detail = one_line(f"{type(exc).__name__}: {exc}")[:500]
            problems.append(Problem(mesh.files[domain], "", "domain-definitions", detail, domain=domain))

    def ordered(found: list[Problem]) -> list[Problem]:
        return sorted(set(mesh.located(found)), key=lambda p: (p.file, p.line or 0, p.field))

    return mesh.project.domain_names(), ordered(problems), ordered(warnings)


def validate(as_json: bool = typer.Option(False, "--json", help="Problems as a JSON document.")) -> None:
    """Report every problem at once (file, field, rule); exit 1 if there is any."""
    domains, problems, warnings = collect_problems()
    if as_json:
        print_json(
            {
                "valid": not problems,
                "domains": domains,
                "problems": [p.as_dict() for p in problems],
                "warnings": [p.as_dict() for p in warnings],
            }
        )
    else:
        for problem in problems:
            err.print(str(problem), markup=False, soft_wrap=True)
        for warning in warnings:
            err.print(f"warning: {warning}", markup=False, soft_wrap=True)
        summary = f"{counted(len(domains), 'domain')}, {len(problems)} problem(s)"
        if warnings:
            summary += f", {len(warnings)} warning(s)"
        err.print(("[red]✘ " if problems else "[green]✔ ") + summary + "[/]")
    raise SystemExit(1 if problems else 0)


def register(app: typer.Typer) -> None:
    app.command("validate")(validate)
