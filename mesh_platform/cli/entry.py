"""The `mesh` executable: hand the command to the warm server when one runs (`mesh warm`), else
run it here."""

from __future__ import annotations

import sys


def main() -> None:
    from mesh_platform.warm import run_warm

    code = run_warm(sys.argv[1:])
    if code is not None:
        raise SystemExit(code)
    from mesh_platform.cli.app import main as run_here
    from mesh_platform.cli.finish import exit_code, finish

    try:
        run_here()
        code = 0
    except SystemExit as exc:
        code = exit_code(exc)
    finish(code)
