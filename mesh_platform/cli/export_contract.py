"""`mesh export-contract D.P [-o FILE]`: the product's contract as an ODCS 3.x YAML document."""

from __future__ import annotations

from pathlib import Path

import typer

from mesh_platform.cli.common import err, fail, invalid, known_product, load_mesh, plain


def export_contract(
    ref: str = typer.Argument(..., metavar="DOMAIN.PRODUCT"),
    output: Path = typer.Option(None, "--output", "-o", help="Write to this file instead of stdout."),
) -> None:
    """Write a product's contract (schema, quality, owner, freshness SLA, access) as ODCS 3.x YAML."""
    from mesh_platform.contract import to_yaml

    mesh = load_mesh()
    known_product(mesh, ref)
    descriptor, product = mesh.product(ref)
    text = to_yaml(descriptor, product)
    if output is None:
        typer.echo(text, nl=False)
        return
    if output.is_dir():
        invalid(f"--output {output} is a directory; give a file name, e.g. {output / (ref + '.odcs.yaml')}")
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text)
    except OSError as exc:
        fail(f"cannot write {output}: {exc}")
    err.print(plain(f"wrote the ODCS contract of {ref} to {output}"))


def register(app: typer.Typer) -> None:
    app.command("export-contract")(export_contract)
