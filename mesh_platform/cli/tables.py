"""Listings that fit the width they are printed in without cutting a name.

An identifier column (a product, a domain, a column name, a reason) is as wide as its widest cell and
never wrapped or cut; prose takes the width left. When a table is too wide its least needed columns
are left out, and a line says which; when even the columns that must stay do not fit, the rows are
printed one below the other (`records`). A listing cut by `--limit` says so (`shown_of`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from rich import box
from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from mesh_platform.text import counted

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


@dataclass
class Fitted:
    """`fitted` as a renderable: laid out for the width of wherever it is printed."""

    columns: Sequence[Column]
    title: Text | None = None
    more: str = ""
    caption: Text | None = None

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield from fitted(self.columns, options.max_width, self.title, self.more)
        if self.caption is not None:
            yield self.caption


def print_fitted(console: Console, columns: Sequence[Column], title: Text | None = None, more: str = "") -> None:
    console.print(Fitted(columns, title, more))


def shown_of(shown: int, total: int, noun: str, how: str) -> Text:
    """`showing 50 of 200 records (how)` when a listing is cut, else `200 records` (`1 record`):
    `noun` is the singular."""
    if shown < total:
        return Text(f"showing {shown:,} of {counted(total, noun)} ({how})", style="yellow")
    return Text(counted(total, noun), style="dim")
