"""What every verb shares: the mesh it works on, a stderr console, clean failures.

Exit status (the DESIGN's): 0 success, 1 a failed check or a refused change (`fail`), 2 invalid
arguments (`invalid`). Either way the reason is one line on stderr, and text that came from the
user or from a file is never read as Rich markup.
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NoReturn

from rich import box
from rich.console import Console, Group, RenderableType
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from mesh_platform.mesh import Mesh
from mesh_platform.project import NotAMeshProject

EXIT_FAILED = 1
EXIT_INVALID = 2

# output that is not a terminal (CI logs, `| less`) is laid out for 100 columns, unless COLUMNS says
# otherwise; a terminal's own width is used as it is
PIPED_WIDTH = 100


def _width(stream: Any) -> int | None:
    return None if stream.isatty() or os.environ.get("COLUMNS", "").isdigit() else PIPED_WIDTH


err = Console(stderr=True, highlight=False, width=_width(sys.stderr))
out = Console(highlight=False, width=_width(sys.stdout))


def plain(text: object) -> Text:
    """Text shown as it is: `[bold]` stays `[bold]`, `[/]` cannot break the output."""
    return Text(str(text))


def fail(message: str, code: int = EXIT_FAILED) -> NoReturn:
    """`error: <message>` as one line on stderr, then exit with `code`."""
    err.print(Text.assemble(("error: ", "bold red"), " ".join(str(message).split())), soft_wrap=True)
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


# --- tables that fit the width without cutting identifiers ------------------------------------------

GAP = 2  # between two columns: one space of padding and the (blank) divider
PROSE_MIN = 20  # narrower than this, a prose column says too little to be worth showing


@dataclass
class Column:
    """A column of a listing. An identifier column is as wide as its widest cell, never wrapped or
    cut; a `prose` column takes the width left and cuts its text with an ellipsis (or wraps it, with
    `wrap`). `drop` orders what goes when the table is too wide: 0 stays, higher numbers go first."""

    header: str
    cells: list[Text] = field(default_factory=list)
    drop: int = 0
    prose: bool = False
    wrap: bool = False  # a prose column that wraps at spaces instead of being cut (a detail view)
    justify: Literal["left", "right"] = "left"

    def width(self) -> int:
        return max([len(self.header), *(c.cell_len for c in self.cells)])

    def min_width(self) -> int:
        """Identifiers: all of it; prose that wraps: its longest word; prose that is cut: PROSE_MIN."""
        if not self.prose:
            return self.width()
        if not self.wrap:
            return PROSE_MIN
        return max([PROSE_MIN, len(self.header), *(len(w) for c in self.cells for w in c.plain.split())])


def listing(title: str | Text | None = None) -> Table:
    """An empty table in the style of every listing: a rule under the header, no borders."""
    return Table(
        box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1, 0, 0), title=title, title_justify="left"
    )


def _needed(columns: Sequence[Column]) -> int:
    return sum(c.min_width() for c in columns) + GAP * (len(columns) - 1)


def fitted_table(columns: Sequence[Column], width: int, title: Text | None = None) -> tuple[Table, list[str]]:
    """A table of `columns` no wider than `width` (if the columns that stay fit at all), and the
    headers of the columns left out to fit."""
    shown = list(columns)
    while _needed(shown) > width and any(c.drop for c in shown):
        shown.remove(max((c for c in shown if c.drop), key=lambda c: c.drop))
    prose = [c for c in shown if c.prose]
    fixed = sum(c.width() for c in shown if not c.prose) + GAP * (len(shown) - 1)
    prose_width = (width - fixed) // len(prose) if prose else 0
    table = listing(title)
    for c in shown:
        size = max(c.min_width(), min(prose_width, c.width())) if c.prose else c.width()
        overflow = "fold" if c.wrap else "ellipsis"
        table.add_column(c.header, width=size, no_wrap=not c.wrap, overflow=overflow, justify=c.justify)
    for row in zip(*(c.cells for c in shown), strict=True):
        table.add_row(*row)
    return table, [c.header for c in columns if c not in shown]


def records(columns: Sequence[Column], width: int, title: Text | None = None) -> Group:
    """The rows one below the other, each a block of `header  value` lines (psql's expanded display):
    for rows too wide for any table at this width. Values wrap; nothing is left out."""
    label = max(len(c.header) for c in columns)
    count = len(columns[0].cells) if columns else 0
    parts: list[Any] = [title] if title is not None else []
    for i in range(count):
        parts.append(Rule(f"row {i + 1} of {count}", align="left", characters="─"))
        grid = Table.grid(padding=(0, 2))
        grid.add_column(width=label, no_wrap=True)
        grid.add_column(overflow="fold", max_width=max(PROSE_MIN, width - label - 2))
        for c in columns:
            grid.add_row(Text(c.header, style="bold"), c.cells[i])
        parts.append(grid)
    return Group(*parts)


def fitted(columns: Sequence[Column], width: int, title: Text | None = None, more: str = "") -> list[RenderableType]:
    """`columns` as a table that fits `width`, then one line naming what was left out (and `more`:
    where to see it); if even the columns that must stay do not fit, as records."""
    if _needed([c for c in columns if not c.drop]) > width:
        return [records(columns, width, title)]
    table, left_out = fitted_table(columns, width, title)
    if not left_out:
        return [table]
    note = f"not shown at this width: {', '.join(left_out)}" + (f"; {more}" if more else "")
    return [table, Text(note, style="dim")]


def print_fitted(console: Console, columns: Sequence[Column], title: Text | None = None, more: str = "") -> None:
    for part in fitted(columns, console.width, title, more):
        console.print(part, soft_wrap=isinstance(part, Text))


def shown_of(shown: int, total: int, noun: str, how: str) -> Text:
    """`showing 50 of 200 records (how)` when a listing is cut, else `200 records`."""
    if shown < total:
        return Text(f"showing {shown:,} of {total:,} {noun} ({how})", style="yellow")
    return Text(f"{total:,} {noun}", style="dim")
