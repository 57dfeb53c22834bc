"""`mesh new-domain NAME --owner OWNER [--consumes D.P ...] [--kind dbt|python]`: scaffold a domain that runs green."""

from __future__ import annotations

import typer
from rich.text import Text

from mesh_platform.cli.common import err, fail, invalid, known_product, load_mesh
from mesh_platform.descriptor.model import OWNER_PATTERN
from mesh_platform.scaffold.apply import Scaffolded, ScaffoldError
from mesh_platform.scaffold.name_rules import InvalidName, check_name
from mesh_platform.scaffold.new_domain import KINDS


def check_names(*names: tuple[str, str]) -> None:
    """Exit 2 for a name a domain or product may not take: (name, "domain" | "product") pairs."""
    for name, what in names:
        try:
            check_name(name, what)
        except InvalidName as exc:
            invalid(str(exc))


def check_kind(kind: str | None) -> None:
    if kind is not None and kind not in KINDS:
        invalid(f"--kind must be one of {', '.join(KINDS)}, got {kind!r}")


def report(result: Scaffolded, next_steps: list[str], in_the_ui: str) -> None:
    """What a scaffold wrote, what it asks of others, what to run next and how a running UI shows it (stderr)."""
    for path in result.created:
        err.print(Text.assemble(("created ", "green"), str(path)))
    for path in result.changed:
        err.print(Text.assemble(("changed ", "yellow"), str(path)))
    for note in result.notes:
        err.print(Text.assemble(("note: ", "bold yellow"), note), soft_wrap=True)
    err.print("next: " + "; ".join(next_steps), markup=False, soft_wrap=True)
    err.print("in the UI: " + in_the_ui, markup=False, soft_wrap=True)


def ui_reload_hint(name: str) -> str:
    """How a running Dagster UI shows the new code location `name`."""
    return (
        f'a running `make ui` shows code location {name} after "Reload all" (Deployment > Code locations); '
        "a UI started with plain `dagster dev` serves only the locations it started with: restart it"
    )


def new_domain(
    name: str = typer.Argument(..., help="The domain's name: lowercase letters, digits, underscores."),
    owner: str = typer.Option(..., "--owner", help="Dagster owner: team:<name> or an email address."),
    consumes: list[str] = typer.Option(None, "--consumes", help="A product it reads, DOMAIN.PRODUCT (repeatable)."),
    kind: str = typer.Option("python", "--kind", help="python (@product functions) or dbt (a dbt project)."),
    product: str = typer.Option("example", "--product", help="Name of the example product."),
    business_process: str = typer.Option(None, "--business-process", help="Defaults to the mesh's."),
    description: str = typer.Option(None, "--description", help="What the domain is for."),
) -> None:
    """Create domains/NAME (descriptor, code, test), for dbt also dbt_projects/NAME, and its code location."""
    from mesh_platform.scaffold.new_domain import new_domain as scaffold

    check_names((name, "domain"), (product, "product"))
    check_kind(kind)
    if not OWNER_PATTERN.match(owner):
        invalid(f"--owner {owner!r} is not a Dagster owner: use 'team:<name>' or an email address")
    mesh = load_mesh()
    for ref in consumes or []:
        known_product(mesh, ref)
    try:
        result = scaffold(
            mesh,
            name,
            owner,
            list(consumes or []),
            kind,
            product,
            business_process=business_process,
            description=description,
        )
    except ScaffoldError as exc:
        fail(f"{exc} (nothing was written)")
    except RuntimeError as exc:  # dbt refused the generated project: every write was undone
        fail(f"{exc} (every change was undone)")
    next_steps = ["mesh validate", f"mesh run --domain {name}", f"pytest domains/{name}"]
    report(result, [*next_steps, f"edit domains/{name}/domain.yaml and its code"], ui_reload_hint(name))


def register(app: typer.Typer) -> None:
    app.command("new-domain")(new_domain)
