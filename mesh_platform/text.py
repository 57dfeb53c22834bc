"""Plain-text helpers every layer uses when it words a message: imports nothing of the platform, so
any package may import it (its place is beside `sql` at the bottom of the import graph)."""

from __future__ import annotations


def one_line(text: str) -> str:
    """`text` on one line: every run of whitespace (newlines included) becomes one space, none at the
    ends. For exception text and other multi-line strings shown in a one-line message."""
    return " ".join(text.split())


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """`count` and `noun`, the noun in the plural unless the count is one: `1 row`, `0 rows`,
    `1,200 rows`. `plural` for a noun that does not take an `s` (`counted(2, "entry", "entries")`)."""
    return f"{count:,} {noun if count == 1 else plural or noun + 's'}"
