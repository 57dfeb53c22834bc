"""`mesh`: the command line of the data-product mesh. One module per verb."""

from __future__ import annotations

import sys

import typer

from mesh_platform.cli import (
    audit,
    check_change,
    emit,
    export_contract,
    import_contract,
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
    versions,
)
from mesh_platform.cli.common import fail
from mesh_platform.pg_warehouse import WarehouseConfigError
from mesh_platform.project.dagster_instance import InstanceConfigError
from mesh_platform.storage.product_store import DamagedStore

app = typer.Typer(
    help="A data-product mesh on Dagster: seed, run, validate and explore the pharmacy mesh.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Click's plain help: each option with its value's type and its help, without `<bool>` beside
    # every flag, up to 100 columns wide where the terminal has them
    rich_markup_mode=None,
    context_settings={"max_content_width": 100},
)
for module in (
    seed,
    run,
    validate,
    products,
    read,
    versions,
    lineage,
    check_change,
    quarantine,
    audit,
    prepare,
    new_domain,
    new_product,
    export_contract,
    import_contract,
    emit,
):
    module.register(app)


def usage_message(exc: typer.TyperException) -> str:
    """Click's message for a bad command line, with where to look, in one line."""
    ctx = getattr(exc, "ctx", None)
    where = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
    return exc.format_message() + where


def main() -> None:
    """Run the command line. Click's usage errors (an unknown verb or option, a value of the wrong
    type or out of range) are one line on stderr with exit status 2, not Click's multi-line box."""
    try:
        code = app(args=sys.argv[1:] or ["--help"], standalone_mode=False)
    except typer.TyperException as exc:  # Click's errors: exit_code 2 for a usage error
        fail(usage_message(exc), exc.exit_code)
    except typer.Abort:
        fail("aborted", 130)
    except (InstanceConfigError, WarehouseConfigError) as exc:  # settings wrong or a server unreachable
        fail(str(exc))
    except DamagedStore as exc:  # a product's record in MESH_HOME edited by hand
        fail(str(exc))
    if isinstance(code, int) and code:
        raise SystemExit(code)
