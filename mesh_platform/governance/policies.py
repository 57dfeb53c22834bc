"""Masking policies: named, applied at read time by the governed read.

Each policy turns a column expression into a DuckDB SQL expression of the same type, so a
consumer's SQL (and its dbt contracts) work whether it sees raw or masked values. Nulls stay null.

- token:  keyed hash token `tok_<16 hex>` (SHA-256 of the mesh's secret key and the value): equal
          values give equal tokens, so joins and counts still work, the value is not revealed.
- year:   a date or timestamp truncated to January 1st of its year (age analysis, not identity).
- zip3:   a ZIP code cut to its first three digits plus 'XX' (region, not address).
- redact: the literal '[redacted]' (free text, names, phone numbers).
- null:   NULL of the column's type (the column stays in the schema, nothing is revealed).
"""

from __future__ import annotations

from collections.abc import Callable

SQL_TYPES = {
    "string": "varchar",
    "integer": "integer",
    "bigint": "bigint",
    "double": "double",
    "boolean": "boolean",
    "date": "date",
    "timestamp": "timestamp",
}


def quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _token(col: str, col_type: str, key: str) -> str:
    return (
        f"case when {col} is null then null else "
        f"'tok_' || left(sha256({literal(key)} || cast({col} as varchar)), 16) end"
    )


def _year(col: str, col_type: str, key: str) -> str:
    if col_type == "timestamp":
        return f"date_trunc('year', {col})"
    if col_type == "date":
        return f"cast(date_trunc('year', {col}) as date)"
    return f"cast(null as {SQL_TYPES[col_type]})"


def _zip3(col: str, col_type: str, key: str) -> str:
    return f"case when {col} is null then null else left(cast({col} as varchar), 3) || 'XX' end"


def _redact(col: str, col_type: str, key: str) -> str:
    if col_type != "string":
        return f"cast(null as {SQL_TYPES[col_type]})"
    return f"case when {col} is null then null else '[redacted]' end"


def _null(col: str, col_type: str, key: str) -> str:
    return f"cast(null as {SQL_TYPES[col_type]})"


POLICIES: dict[str, Callable[[str, str, str], str]] = {
    "token": _token,
    "year": _year,
    "zip3": _zip3,
    "redact": _redact,
    "null": _null,
}


def mask_expression(policy: str, column: str, column_type: str, key: str) -> str:
    return POLICIES[policy](quote(column), column_type, key)
