"""A product scaffolded from its contract (`mesh import-contract`): its descriptor entry, and code that
builds example rows with the contract's columns and types, made to satisfy its expectations, so
that the new product runs green until the team writes its real SELECT.

The rows follow what the expectations say column by column (a value set, a range, a length, a
regular expression, null or not, a pair of columns in order, a row count); an expectation they are
not made for is named in `notes`, since the product's run may then fail on it.
"""

from __future__ import annotations

import json
import re
import textwrap
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import yaml

from mesh_platform.contracts.odcs_export import PHYSICAL
from mesh_platform.descriptor.model import Expectation, Product
from mesh_platform.scaffold.render import render, yaml_scalar
from mesh_platform.sql.syntax import SQL_TYPES, literal, quote

DEFAULT_ROWS = 3
MAX_ROWS = 1000
# data types dbt's contract accepts on both warehouses: PostgreSQL's names, which DuckDB reads too
DBT_TYPES = PHYSICAL["postgres"]
FIRST_DAY = date(2024, 1, 1)
# what the example rows are made to satisfy
HANDLED = frozenset(
    {
        "expect_column_values_to_not_be_null",
        "expect_column_values_to_be_unique",
        "expect_compound_columns_to_be_unique",
        "expect_column_values_to_be_in_set",
        "expect_column_values_to_be_between",
        "expect_column_values_to_match_regex",
        "expect_column_value_lengths_to_be_between",
        "expect_column_value_lengths_to_equal",
        "expect_column_values_to_be_null",
        "expect_column_pair_values_a_to_be_greater_than_b",
        "expect_column_pair_values_to_be_equal",
        "expect_table_row_count_to_equal",
        "expect_table_row_count_to_be_between",
    }
)
LINE = 104  # the SQL sits 8 spaces deep in the generated code; ruff allows 120


# --- the descriptor entry --------------------------------------------------------------------------------


def _flow(value: Any) -> str:
    """`value` as YAML on one line (a scalar, or a flow collection)."""
    text = yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=1 << 20)
    return text.removesuffix("\n").removesuffix("\n...").strip()


def _text(key: str, text: str, indent: str) -> str:
    """`key: text` as the descriptors write it: folded over several lines when long, else one line."""
    one = f"{indent}{key}: {yaml_scalar(text)}\n"
    if len(one) <= 100:
        return one
    lines = textwrap.wrap(text, 96 - len(indent), break_long_words=False, break_on_hyphens=False)
    folded = f"{indent}{key}: >\n" + "".join(f"{indent}  {line}\n" for line in lines)
    parsed = yaml.safe_load(textwrap.dedent(folded))
    return folded if isinstance(parsed, dict) and str(parsed.get(key, "")).strip() == text else one


def product_entry(product: Product) -> str:
    """The product's block under `products:` in domain.yaml (list items indented by two spaces), with
    every field it sets: columns and expectations one flow mapping per line, as the descriptors have them."""
    data = product.model_dump(exclude_none=True)
    out = f"  - name: {data.pop('name')}\n"
    out += _text("description", data.pop("description"), "    ")
    out += _text("value", data.pop("value"), "    ")
    columns, expectations, access = data.pop("columns"), data.pop("expectations"), data.pop("access")
    for key, value in data.items():  # owner, version, freshness, and whatever else the product sets
        out += f"    {key}: {_flow(value)}\n"
    out += "    columns:\n" + "".join(f"      - {_flow(column)}\n" for column in columns)
    if expectations:
        out += "    expectations:\n" + "".join(f"      - {_flow(e)}\n" for e in expectations)
    out += "    access:\n"
    out += f"      consumers: {_flow(access['consumers'])}\n"
    if access["pii_readers"]:
        out += f"      pii_readers: {_flow(access['pii_readers'])}\n"
    return out


# --- example rows ----------------------------------------------------------------------------------------


def _as_day(value: Any) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


def _step(value: Any, kind: str) -> Any:
    """The next value after `value` of a column of type `kind`."""
    if kind == "timestamp":
        return value + timedelta(hours=1)
    if kind == "date":
        return value + timedelta(days=1)
    if kind == "boolean":
        return True
    if kind == "string":
        return f"{value}_next"
    return value + 1


def _default(column: str, kind: str, row: int, position: int) -> Any:
    """A value of the type, distinct per row; dates and timestamps later in later columns."""
    if kind == "string":
        return f"{column}_{row + 1}"
    if kind in ("integer", "bigint"):
        return row + 1
    if kind == "double":
        return float(row + 1)
    if kind == "boolean":
        return row % 2 == 0
    if kind == "date":
        return FIRST_DAY + timedelta(days=row * 30 + position)
    return datetime(2024, 1, 1, 8) + timedelta(days=row, hours=position)


def _in_range(kind: str, row: int, kwargs: dict[str, Any]) -> Any:
    """A value within min_value/max_value for row `row`: counting up from the minimum (or down from
    the maximum), held within the maximum."""
    low, high = kwargs.get("min_value"), kwargs.get("max_value")
    strict_low, strict_high = bool(kwargs.get("strict_min")), bool(kwargs.get("strict_max"))
    if kind in ("date", "timestamp"):
        low, high = _as_day(low), _as_day(high)
        step: Any = timedelta(days=1)
    elif isinstance(low, int | float | None) and isinstance(high, int | float | None):
        step = 1
    else:
        return None
    if low is not None:
        value = low + step * (row + (1 if strict_low else 0))
    elif high is not None:
        value = high - step * (row + (1 if strict_high else 0))
    else:
        return None
    if high is not None and (value > high or (strict_high and value >= high)):
        value = high - step if low is None or high - step > low else low + (high - low) / 2
    if kind == "timestamp":
        return datetime(value.year, value.month, value.day, 12)
    if kind in ("integer", "bigint"):
        return int(value) if float(value).is_integer() else value
    return float(value) if kind == "double" else value


def _matching(column: str, row: int, pattern: str) -> str | None:
    try:
        regex = re.compile(pattern)
    except re.error:
        return None
    n = row + 1
    candidates = [f"{column}_{n}", f"{column}{n}@example.com", str(n), f"{column.upper()}_{n}", f"{column}-{n}"]
    candidates += [f"{c}{n}" for c in "abcxyzABCXYZ"]
    return next((c for c in candidates if regex.search(c)), None)


def _sized(value: str, low: int | None, high: int | None) -> str:
    if low is not None and len(value) < low:
        value = value + "x" * (low - len(value))
    if high is not None and len(value) > high:
        value = value[-high:] if high else ""
    return value


@dataclass
class ExampleRows:
    rows: int
    values: dict[str, list[Any]]
    notes: list[str] = field(default_factory=list)


def _row_count(expectations: list[tuple[str, Expectation]], notes: list[str]) -> int:
    """As many rows as the row-count expectations ask for (DEFAULT_ROWS if they do not, or ask too many)."""
    rows, asked_by = DEFAULT_ROWS, ""
    for name, e in expectations:
        kw = e.kwargs
        low, high = kw.get("min_value"), kw.get("max_value")
        if e.type == "expect_table_row_count_to_equal" and isinstance(kw.get("value"), int):
            rows, asked_by = kw["value"], name
        elif e.type == "expect_table_row_count_to_be_between":
            if isinstance(low, int) and rows < low + (1 if kw.get("strict_min") else 0):
                rows, asked_by = low + (1 if kw.get("strict_min") else 0), name
            if isinstance(high, int) and rows > high - (1 if kw.get("strict_max") else 0):
                rows, asked_by = high - (1 if kw.get("strict_max") else 0), name
    if not 0 <= rows <= MAX_ROWS:
        notes.append(f"{asked_by}: the example rows are {DEFAULT_ROWS}, not the {rows} the row count asks for")
        rows = DEFAULT_ROWS
    return rows


def example_rows(product: Product) -> ExampleRows:
    named = product.named_expectations()
    notes: list[str] = []
    rows = _row_count(named, notes)
    kinds = {c.name: c.type for c in product.columns}
    values = {
        c.name: [_default(c.name, c.type, row, position) for row in range(rows)]
        for position, c in enumerate(product.columns)
    }
    required = {e.kwargs.get("column") for e in product.expectations if e.type == "expect_column_values_to_not_be_null"}
    for name, e in named:
        kw, column = e.kwargs, e.kwargs.get("column")
        if e.type not in HANDLED:
            notes.append(
                f"{name}: the example rows are not made to satisfy {e.type}; it may fail until the SELECT is written"
            )
            continue
        if not isinstance(column, str) or column not in kinds:
            continue
        kind, cells = kinds[column], values[column]
        if e.type == "expect_column_values_to_be_in_set" and kw.get("value_set"):
            cells[:] = [list(kw["value_set"])[row % len(kw["value_set"])] for row in range(rows)]
        elif e.type == "expect_column_values_to_be_between":
            ranged = [_in_range(kind, row, kw) for row in range(rows)]
            cells[:] = [v if v is not None else cells[i] for i, v in enumerate(ranged)]
        elif e.type == "expect_column_values_to_be_null":
            cells[:] = [None] * rows
        elif e.type == "expect_column_values_to_match_regex" and kind == "string":
            found = [_matching(column, row, str(kw.get("regex", ""))) for row in range(rows)]
            if None in found and column in required:
                notes.append(f"{name}: no example value matches {kw.get('regex')!r}; write the SELECT first")
            cells[:] = found if None not in found or column not in required else cells
        elif e.type.startswith("expect_column_value_lengths") and kind == "string":
            low = kw.get("value", kw.get("min_value"))
            high = kw.get("value", kw.get("max_value"))
            cells[:] = [None if v is None else _sized(str(v), low, high) for v in cells]
    for _, e in named:  # pairs last: one column follows the other
        a, b = e.kwargs.get("column_A"), e.kwargs.get("column_B")
        if a not in kinds or b not in kinds:
            continue
        for row in range(rows):
            left, right = values[a][row], values[b][row]
            if e.type == "expect_column_pair_values_to_be_equal":
                values[a][row] = right
            elif (
                left is not None
                and right is not None
                and not (left >= right if e.kwargs.get("or_equal") else left > right)
            ):
                values[a][row] = _step(right, kinds[a])
    return ExampleRows(rows, values, notes)


# --- the code that builds it -----------------------------------------------------------------------------


def _cell(value: Any) -> str:
    return "NULL" if value is None else literal(value)


def _rows_sql(example: ExampleRows, names: list[str]) -> list[str]:
    """`(v1, v2, ...)` per row, wrapped to fit in LINE characters."""
    lines: list[str] = []
    for row in range(example.rows):
        cells = [_cell(example.values[n][row]) for n in names]
        line = "    ("
        for i, cell in enumerate(cells):
            piece = cell + (", " if i < len(cells) - 1 else "")
            if len(line) + len(piece) > LINE and line.strip() != "(":
                lines.append(line.rstrip())
                line = "     "
            line += piece
        lines.append(line + ")" + ("," if row < example.rows - 1 else ""))
    return lines


def example_select(product: Product, types: dict[str, str]) -> str:
    """A SELECT of the example rows with the product's columns, cast to `types` (column type -> SQL)."""
    example = example_rows(product)
    names = [c.name for c in product.columns]
    casts = [f"    cast(c{i} as {types[c.type]}) as {quote(c.name)}" for i, c in enumerate(product.columns, 1)]
    aliases = ", ".join(f"c{i}" for i in range(1, len(names) + 1))
    if example.rows == 0:
        return "select\n" + ",\n".join(c.replace(f"c{i}", "null", 1) for i, c in enumerate(casts, 1)) + "\nwhere false"
    body = "\n".join(_rows_sql(example, names))
    alias_line = f") as example ({aliases})"
    if len(alias_line) > LINE:
        alias_line = (
            ") as example (\n"
            + "\n".join(textwrap.wrap(aliases, LINE - 4, initial_indent="    ", subsequent_indent="    "))
            + "\n)"
        )
    return "select\n" + ",\n".join(casts) + "\nfrom (values\n" + body + "\n" + alias_line


@dataclass(frozen=True)
class ContractProduct:
    """What `mesh new-product` writes for a product, made from a contract instead of the example."""

    product: Product
    source: str  # the contract it comes from, for the code's comment

    def descriptor_entry(self) -> str:
        return product_entry(self.product)

    def _comment(self, prefix: str) -> str:
        text = (
            f"Scaffolded by `mesh import-contract` from {self.source}: example rows with the contract's columns, "
            "made to satisfy its expectations. Replace them with the product's own SELECT."
        )
        return "\n".join(
            textwrap.wrap(text, 110, initial_indent=prefix, subsequent_indent=prefix, break_long_words=False)
        )

    @property
    def notes(self) -> list[str]:
        return example_rows(self.product).notes

    def domain_test(self) -> str:
        """The fast test of the product, for the domain's `test_<domain>.py`."""
        return "\n\n" + render("domain/test_product_from_contract.py").rstrip("\n")

    def python_function(self) -> str:
        select = example_select(self.product, SQL_TYPES)
        body = textwrap.indent(select, " " * 8)
        if '"""' in body or "\\" in body:
            code = f"    return {json.dumps(select)}"
        else:
            code = f'    return """\n{body}\n    """'
        return render(
            "python/product_from_contract.py", name=self.product.name, comment=self._comment("    # "), code=code
        )

    def dbt_model(self) -> tuple[str, str]:
        columns = "".join(
            f"      - {_flow({'name': c.name, 'data_type': DBT_TYPES[c.type]})}\n" for c in self.product.columns
        ).rstrip("\n")
        sql = render(
            "dbt/model_from_contract.sql", comment=self._comment("-- "), select=example_select(self.product, DBT_TYPES)
        )
        yml = render(
            "dbt/model_from_contract.yml",
            name=self.product.name,
            description=yaml_scalar(self.product.description),
            columns=columns,
        )
        return sql, yml
