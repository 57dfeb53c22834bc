"""Message wording shared by every layer (`mesh_platform/text.py`): text on one line, counts with
their noun in the singular or plural, and no copy of the one-line helper elsewhere."""

from __future__ import annotations

import ast

from mesh_platform.text import counted, one_line
from tests.conftest import ROOT

TEXT_MODULE = ROOT / "mesh_platform" / "text.py"


def test_one_line_collapses_every_run_of_whitespace() -> None:
    assert one_line("  while parsing a block mapping\n  in '<unicode>', line 3\t\tcolumn 5  ") == (
        "while parsing a block mapping in '<unicode>', line 3 column 5"
    )
    assert one_line("") == "" and one_line(" \n ") == ""


def test_a_count_of_one_takes_the_singular() -> None:
    assert [counted(n, "row") for n in (0, 1, 2, 1200)] == ["0 rows", "1 row", "2 rows", "1,200 rows"]
    assert counted(1, "entry", "entries") == "1 entry" and counted(3, "entry", "entries") == "3 entries"


def _collapses_whitespace(node: ast.AST) -> bool:
    """`" ".join(x.split())` (a join on one space of a `split()` without arguments)."""
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "join"):
        return False
    joiner, args = node.func.value, node.args
    if not (isinstance(joiner, ast.Constant) and joiner.value == " " and len(args) == 1):
        return False
    arg = args[0]
    return (
        isinstance(arg, ast.Call)
        and isinstance(arg.func, ast.Attribute)
        and arg.func.attr == "split"
        and not arg.args
        and not arg.keywords
    )


def test_the_platform_puts_text_on_one_line_only_through_one_line() -> None:
    copies = [
        f"{path.relative_to(ROOT)}:{node.lineno}"
        for path in sorted((ROOT / "mesh_platform").rglob("*.py"))
        if path != TEXT_MODULE
        for node in ast.walk(ast.parse(path.read_text()))
        if _collapses_whitespace(node)
    ]
    assert copies == [], f"use mesh_platform.text.one_line: {copies}"


def test_the_copy_check_sees_a_copy() -> None:
    found = [_collapses_whitespace(n) for n in ast.walk(ast.parse("' '.join(str(exc).split())[:200]"))]
    assert any(found)
    assert not any(_collapses_whitespace(n) for n in ast.walk(ast.parse("', '.join(names.split())")))
