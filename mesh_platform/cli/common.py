"""What every verb shares: the mesh it works on, a stderr console, clean failures."""

from __future__ import annotations

import json
import sys
from typing import Any, NoReturn

from rich.console import Console

from mesh_platform.mesh import Mesh
from mesh_platform.project import NotAMeshProject

# piped output (CI logs, `| less`) gets a wide table rather than rich's 80-column default
err = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 160)
out = Console(highlight=False, width=None if sys.stdout.isatty() else 160)


def fail(message: str) -> NoReturn:
    err.print(f"[bold red]error:[/] {message}", markup=True, soft_wrap=True)
    raise SystemExit(1)


def load_mesh() -> Mesh:
    try:
        return Mesh.load()
    except NotAMeshProject as exc:
        fail(str(exc))


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
