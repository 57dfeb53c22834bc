"""`mesh`: the command line of the data-product mesh. One module per verb."""

from __future__ import annotations

import typer

from mesh_platform.cli import (
    audit,
    lineage,
    prepare,
    products,
    quarantine,
    read,
    run,
    seed,
    validate,
)

app = typer.Typer(
    help="A data-product mesh on Dagster: seed, run, validate and explore the pharmacy mesh.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
for module in (seed, run, validate, products, read, lineage, quarantine, audit, prepare):
    module.register(app)


def main() -> None:
    app()
