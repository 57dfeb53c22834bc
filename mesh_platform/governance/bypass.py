"""An early, friendlier warning: SQL that names another domain's tables or files.

What stops such a read is the sandbox (`governance.sandbox`): DuckDB refuses it when the SQL runs,
whatever the SQL looks like. This scan only tells the author sooner, at `mesh validate`, for the
cases it can see. dbt: every model's SQL is parsed with sqlglot (the Jinja of `ref()` and
`source()` replaced by placeholders first), and any table qualified by another domain's name, or
any file path into another domain's warehouse or product store, is reported: cross-domain reads
are `source()`s, which resolve to governed views. Python: string literals in the domain's code that
query another domain's tables (`from <domain>.<table>`) or name its files: use `ctx.read()`.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import sqlglot
from sqlglot import exp

from mesh_platform.descriptor.problems import Problem

_JINJA_REF = re.compile(r"\{\{\s*ref\(\s*['\"](\w+)['\"]\s*\)\s*\}\}")
_JINJA_SOURCE = re.compile(r"\{\{\s*source\(\s*['\"](\w+)['\"]\s*,\s*['\"](\w+)['\"]\s*\)\s*\}\}")
_JINJA_OTHER = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.S)


def _paths_into(text: str, domains: Iterable[str]) -> list[str]:
    hits = []
    for other in domains:
        if re.search(rf"warehouse/{other}\.duckdb|products/{other}/", text):
            hits.append(other)
    return hits


def strip_jinja(sql: str) -> str:
    sql = _JINJA_SOURCE.sub(lambda m: f"__source__{m.group(1)}__{m.group(2)}", sql)
    sql = _JINJA_REF.sub(lambda m: f"__ref__{m.group(1)}", sql)
    return _JINJA_OTHER.sub("null", sql)


def sql_bypasses(sql: str, domain: str, others: set[str]) -> list[str]:
    """Tables or files of other domains that `sql` reads directly."""
    found = [f"a file of domain {o}" for o in _paths_into(sql, others)]
    try:
        trees = sqlglot.parse(strip_jinja(sql), dialect="duckdb")
    except sqlglot.errors.ParseError:
        return found
    for tree in trees:
        if tree is None:
            continue
        for table in tree.find_all(exp.Table):
            qualifiers = {table.db, table.catalog} - {""}
            for other in sorted(qualifiers & others):
                found.append(f"table {table.sql(dialect='duckdb')} of domain {other}")
    return found


def dbt_bypasses(manifest: Mapping[str, Any], domain: str, others: set[str], file: str) -> list[Problem]:
    problems = []
    for node in manifest.get("nodes", {}).values():
        if node["resource_type"] not in ("model", "snapshot"):
            continue
        for hit in sql_bypasses(node.get("raw_code", ""), domain, others):
            problems.append(
                Problem(
                    node["original_file_path"],
                    node["name"],
                    "governed-read-only",
                    f"dbt model {domain}.{node['name']} reads {hit} directly; read other domains' products "
                    f"through {{{{ source('<domain>', '<product>') }}}} (declared in {file} consumes)",
                    domain=domain,
                )
            )
    return problems


_SQL_FROM = r"(?:from|join)\s+\"?({others})\"?\s*\.\s*\"?(\w+)"


def python_bypasses(code: Path, rel: str, domain: str, others: set[str]) -> list[Problem]:
    if not code.exists() or not others:
        return []
    pattern = re.compile(_SQL_FROM.format(others="|".join(sorted(others))), re.I)
    problems = []
    for node in ast.walk(ast.parse(code.read_text(), str(code))):
        if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
            continue
        hits = [f"table {m.group(1)}.{m.group(2)}" for m in pattern.finditer(node.value)]
        hits += [f"a file of domain {o}" for o in _paths_into(node.value, others)]
        for hit in hits:
            problems.append(
                Problem(
                    rel,
                    f"line {node.lineno}",
                    "governed-read-only",
                    f"Python code of {domain} reads {hit} directly; use ctx.read('<domain>.<product>')",
                    line=node.lineno,
                    domain=domain,
                )
            )
    return problems
