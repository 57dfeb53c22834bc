"""The `mesh` executable: run the command, then end the process without tearing down its heap."""

from __future__ import annotations


def main() -> None:
    from mesh_platform.cli.app import main as run_command
    from mesh_platform.cli.finish import exit_code, finish

    try:
        run_command()
        code = 0
    except SystemExit as exc:
        code = exit_code(exc)
    finish(code)
