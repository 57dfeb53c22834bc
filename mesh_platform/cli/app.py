"""`mesh`: the command line of the data-product mesh. One module per verb."""

from __future__ import annotations

import typer

from mesh_platform.cli import (
    audit,
    emit,
    export_contract,
    lineage,
    new_domain,
    new_product,
    prepare,
    products,
    quarantine,
    read,
    run,
    seed,
    validate,
    warm,
)
from mesh_platform.cli.common import fail
from mesh_platform.instance import InstanceConfigError
from mesh_platform.pg_warehouse import WarehouseConfigError

app = typer.Typer(
    help="A data-product mesh on Dagster: seed, run, validate and explore the pharmacy mesh.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
for module in (
    seed,
    run,
    validate,
    products,
    read,
    lineage,
    quarantine,
    audit,
    prepare,
    new_domain,
    new_product,
    export_contract,
    emit,
    warm,
):
    module.register(app)


def main() -> None:
    try:
        app()
    except (InstanceConfigError, WarehouseConfigError) as exc:  # settings wrong or a server unreachable
        fail(str(exc))
