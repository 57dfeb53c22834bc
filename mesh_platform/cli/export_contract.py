"""`mesh export-contract D.P [-o FILE]`: the product's contract as an ODCS 3.x YAML document."""

from __future__ import annotations

from pathlib import Path

import typer

from mesh_platform.cli.common import err, fail, load_mesh


def export_contract(
    ref: str = typer.Argument(..., metavar="DOMAIN.PRODUCT"),
    output: Path = typer.Option(None, "--output", "-o", help="Write to this file instead of stdout."),
) -> None:
    """Write a product's contract (schema, quality, owner, freshness SLA, access) as ODCS 3.x YAML."""
    from mesh_platform.contract import to_yaml

    mesh = load_mesh()
    try:
        descriptor, product = mesh.product(ref)
    except KeyError as exc:
        fail(str(exc).strip('"'))
    text = to_yaml(descriptor, product)
    if output is None:
        typer.echo(text, nl=False)
        return
    if output.is_dir():
        fail(f"--output {output} is a directory; give a file name, e.g. {output / (ref + '.odcs.yaml')}")
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text)
    except OSError as exc:
        fail(f"cannot write {output}: {exc}")
    err.print(f"wrote the ODCS contract of {ref} to {output}")


def register(app: typer.Typer) -> None:
    app.command("export-contract")(export_contract)
