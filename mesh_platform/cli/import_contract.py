"""`mesh import-contract FILE`: a product's descriptor entry from an ODCS 3.x document."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from mesh_platform.cli.common import err, fail, invalid, load_mesh, plain
from mesh_platform.cli.new_domain import report, ui_reload_hint
from mesh_platform.cli.new_product import product_reload_hint


def import_contract(
    file: Path = typer.Argument(..., metavar="FILE", help="An ODCS 3.x data contract (YAML)."),
) -> None:
    """Create or update a product's entry in domains/<domain>/domain.yaml from an ODCS 3.x contract
    (columns, classifications, quality rules as expectations, value, freshness, access); a new
    product also gets the code that builds it."""
    from mesh_platform.contracts.odcs_export import ContractSourceError
    from mesh_platform.contracts.odcs_import import ImportRefused, InvalidContract, import_contract, read_contract
    from mesh_platform.scaffold.apply import Scaffolded, ScaffoldError

    if not file.is_file():
        invalid(f"FILE {str(file)!r}: " + ("no such file" if not file.exists() else "not a file"))
    mesh = load_mesh()
    rel = os.path.relpath(file)
    try:
        contracted = read_contract(file, rel)
    except InvalidContract as exc:
        invalid(str(exc))
    try:
        imported = import_contract(mesh, contracted, rel)
    except (ImportRefused, ContractSourceError) as exc:
        fail(f"{rel}: {exc} (nothing was written)")
    except ScaffoldError as exc:
        fail(f"{rel}: {exc} (nothing was written)")
    except RuntimeError as exc:  # dbt refused the generated model: every write was undone
        fail(f"{rel}: {exc} (every change was undone)")
    if imported.action == "unchanged":
        for note in imported.notes:
            err.print(plain(f"note: {note}"), soft_wrap=True)
        err.print(plain(f"{imported.ref} already says what {rel} says: nothing was written"), soft_wrap=True)
        return
    err.print(plain(f"{imported.action} {imported.ref} from {rel}"), soft_wrap=True)
    domain, name = imported.ref.split(".", 1)
    new_domain = any(Path(p).name == "workspace.yaml" for p in imported.changed)
    report(
        Scaffolded(imported.created, imported.changed, imported.notes),
        ["mesh validate", f"mesh run --domain {domain}", f"mesh export-contract {imported.ref}"],
        ui_reload_hint(domain) if new_domain else product_reload_hint(domain, name),
    )


def register(app: typer.Typer) -> None:
    app.command("import-contract")(import_contract)
