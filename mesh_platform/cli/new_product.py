"""`mesh new-product DOMAIN NAME [--kind dbt|python]`: add a product to an existing domain."""

from __future__ import annotations

import typer

from mesh_platform.cli.common import fail, known_domain, load_mesh
from mesh_platform.cli.new_domain import check_kind, check_names, report
from mesh_platform.scaffold.apply import ScaffoldError


def new_product(
    domain: str = typer.Argument(..., help="An existing domain."),
    name: str = typer.Argument(..., help="The new product's name: lowercase letters, digits, underscores."),
    kind: str = typer.Option(None, "--kind", help="dbt or python; default: dbt if the domain has a dbt project."),
) -> None:
    """Add a product to DOMAIN: a descriptor entry and the @product function or dbt model that builds it."""
    from mesh_platform.scaffold.new_product import new_product as scaffold

    check_names((name, "product"))
    check_kind(kind)
    mesh = load_mesh()
    known_domain(mesh, domain, "DOMAIN")
    try:
        result = scaffold(mesh, domain, name, kind)
    except ScaffoldError as exc:
        fail(f"{exc} (nothing was written)")
    except RuntimeError as exc:
        fail(f"{exc} (every change was undone)")
    report(
        result,
        ["mesh validate", f"mesh run --domain {domain}", f"edit {domain}.{name} in domains/{domain}"],
        product_reload_hint(domain, name),
    )


def product_reload_hint(domain: str, name: str) -> str:
    return (
        f'a running UI shows {domain}.{name} after reloading code location {domain} ("Reload" beside it in '
        "Deployment > Code locations)"
    )


def register(app: typer.Typer) -> None:
    app.command("new-product")(new_product)
