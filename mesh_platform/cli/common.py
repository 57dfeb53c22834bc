"""What every verb shares: the mesh it works on, a stderr console, clean failures.

Exit status (the DESIGN's): 0 success, 1 a failed check or a refused change (`fail`), 2 invalid
arguments (`invalid`). Either way the reason is one line on stderr, and text that came from the
user or from a file is never read as Rich markup.
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
from typing import Any, NoReturn

from rich.console import Console
from rich.text import Text

from mesh_platform.project.locations import NotAMeshProject
from mesh_platform.project.mesh import Mesh
from mesh_platform.text import one_line

EXIT_FAILED = 1
EXIT_INVALID = 2

# output that is not a terminal (CI logs, `| less`) is laid out for 100 columns, unless COLUMNS says
# otherwise; a terminal's own width is used as it is
PIPED_WIDTH = 100


def _width(stream: Any) -> int | None:
    return None if stream.isatty() or os.environ.get("COLUMNS", "").isdigit() else PIPED_WIDTH


err = Console(stderr=True, highlight=False, width=_width(sys.stderr))
out = Console(highlight=False, width=_width(sys.stdout))


# control characters (but tab and newline) and the bidirectional overrides: a value from a source
# system could otherwise move the cursor, recolour or retitle the terminal, or reorder what is shown
_UNSHOWN = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def plain(text: object, style: str = "") -> Text:
    """Text shown as it is: `[bold]` stays `[bold]`, `[/]` cannot break the output, and a control
    character is shown escaped (`\x1b`), never sent to the terminal."""
    return Text(_UNSHOWN.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), str(text)), style=style)


def fail(message: str, code: int = EXIT_FAILED) -> NoReturn:
    """`error: <message>` as one line on stderr, then exit with `code`."""
    err.print(Text.assemble(("error: ", "bold red"), plain(one_line(str(message)))), soft_wrap=True)
    raise SystemExit(code)


def invalid(message: str) -> NoReturn:
    """An invalid argument: one line on stderr, exit status 2."""
    fail(message, EXIT_INVALID)


def check_number(option: str, value: float, low: float, high: float) -> None:
    """A finite number within [low, high], or exit 2 naming the option (nan and inf are not numbers)."""
    if not (math.isfinite(value) and low <= value <= high):
        invalid(f"{option} must be a number from {low:g} to {high:g}, got {value!r}")


def load_mesh() -> Mesh:
    try:
        return Mesh.load()
    except NotAMeshProject as exc:
        invalid(str(exc))


def known_product(mesh: Mesh, ref: str) -> None:
    """Exit 2 unless `ref` names a product; exit 1 if its domain's descriptor cannot be used."""
    domain = ref.partition(".")[0]
    if domain in mesh.project.domain_names() and domain not in mesh.descriptors:
        fail(f"{ref}: {mesh.files[domain]} has problems, so its products cannot be used (see `mesh validate`)")
    try:
        mesh.product(ref)
    except KeyError as exc:
        invalid(str(exc.args[0]))


def known_domain(mesh: Mesh, domain: str, option: str) -> None:
    """Exit 2 unless `domain` is a domain of the project (its descriptor valid or not)."""
    if domain not in mesh.project.domain_names():
        invalid(f"{option}: unknown domain {domain!r}; domains: {', '.join(mesh.project.domain_names())}")


def warn_left_out(mesh: Mesh) -> None:
    """One line on stderr per domain whose descriptor cannot be used, so a listing that leaves it out says so."""
    for domain in sorted(set(mesh.project.domain_names()) - set(mesh.descriptors)):
        count = len(mesh.problems_for(domain))
        err.print(
            plain(f"warning: {domain} is left out: {mesh.files[domain]} has {count} problem(s) (see `mesh validate`)"),
            style="yellow",
            soft_wrap=True,
        )


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
