"""`mesh export-contract D.P [-o FILE]`: the product's contract as an ODCS 3.x YAML document."""

from __future__ import annotations

from pathlib import Path

import typer

from mesh_platform.cli.common import err, fail, invalid, known_product, load_mesh, plain


def export_contract(
    ref: str = typer.Argument(..., metavar="DOMAIN.PRODUCT"),
    output: Path = typer.Option(None, "--output", "-o", help="Write to this file instead of stdout."),
) -> None:
    """Write a product's contract (schema, quality rules, owner, freshness SLA, access, where it lives)
    as ODCS 3.x YAML."""
    from mesh_platform.contracts.odcs_export import ContractSourceError, product_contract
    from mesh_platform.pg_warehouse import warehouse_kind
    from mesh_platform.storage.product_store import ProductStore

    mesh = load_mesh()
    known_product(mesh, ref)
    if output is not None and output.is_dir():
        invalid(f"--output {output} is a directory; give a file name, e.g. {output / (ref + '.odcs.yaml')}")
    home = mesh.project.home.path.resolve()
    try:
        target = output.resolve() if output is not None else None
    except (OSError, RuntimeError) as exc:  # a loop of links
        invalid(f"--output {output}: {exc}")
    if target is not None and target.is_relative_to(home):
        # the warehouses, published versions, keys and audit log: no contract is written over them
        invalid(
            f"--output {output} is inside MESH_HOME ({home}), the platform's own data; write the contract elsewhere"
        )
    warehouse = warehouse_kind()
    try:
        text = product_contract(mesh, ref, warehouse)
    except ContractSourceError as exc:
        fail(str(exc))
    descriptor, product = mesh.product(ref)
    status = ProductStore(mesh.project.home).status(descriptor.domain, product.name) or {}
    if warehouse == "postgres" and status.get("status") not in (None, "published"):
        err.print(
            plain(
                f"note: the last build of {ref} was not published ({status['status']}); "
                "the table on the server holds that build"
            ),
            soft_wrap=True,
        )
    if output is None:
        typer.echo(text, nl=False)
        return
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text)
    except OSError as exc:
        fail(f"cannot write {output}: {exc}")
    err.print(plain(f"wrote the ODCS contract of {ref} to {output}"))


def register(app: typer.Typer) -> None:
    app.command("export-contract")(export_contract)
