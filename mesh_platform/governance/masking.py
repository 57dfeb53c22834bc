"""Masking policies: named, applied at read time by the governed read.

Each policy turns a column expression into a SQL expression of the same type, so a consumer's
SQL (and its dbt contracts) work whether it sees raw or masked values. Nulls stay null. The SQL is
DuckDB's or PostgreSQL's (`dialect`); both give the same values, so a token made in one warehouse
joins with a token made in the other.

- token:  keyed hash token `tok_<16 hex>` (SHA-256 of the mesh's secret key and the value): equal
          values give equal tokens, so joins and counts still work, the value is not revealed.
- year:   a date or timestamp truncated to January 1st of its year (age analysis, not identity).
- zip3:   a ZIP code cut to its first three digits plus 'XX' (region, not address).
- redact: the literal '[redacted]' (free text, names, phone numbers).
- null:   NULL of the column's type (the column stays in the schema, nothing is revealed).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

Dialect = Literal["duckdb", "postgres"]

SQL_TYPES = {
    "string": "varchar",
    "integer": "integer",
    "bigint": "bigint",
    "double": "double",
    "boolean": "boolean",
    "date": "date",
    "timestamp": "timestamp",
}
POSTGRES_TYPES = {**SQL_TYPES, "double": "double precision"}


def sql_type(col_type: str, dialect: Dialect) -> str:
    return (POSTGRES_TYPES if dialect == "postgres" else SQL_TYPES)[col_type]


def quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _token(col: str, col_type: str, key: str, dialect: Dialect) -> str:
    text = f"{literal(key)} || cast({col} as varchar)"
    digest = f"encode(sha256(convert_to({text}, 'UTF8')), 'hex')" if dialect == "postgres" else f"sha256({text})"
    return f"case when {col} is null then null else 'tok_' || left({digest}, 16) end"


def _year(col: str, col_type: str, key: str, dialect: Dialect) -> str:
    if col_type == "timestamp":
        return f"date_trunc('year', {col})"
    if col_type == "date":
        return f"cast(date_trunc('year', {col}) as date)"
    return _null(col, col_type, key, dialect)


def _zip3(col: str, col_type: str, key: str, dialect: Dialect) -> str:
    return f"case when {col} is null then null else left(cast({col} as varchar), 3) || 'XX' end"


def _redact(col: str, col_type: str, key: str, dialect: Dialect) -> str:
    if col_type != "string":
        return _null(col, col_type, key, dialect)
    return f"case when {col} is null then null else '[redacted]' end"


def _null(col: str, col_type: str, key: str, dialect: Dialect) -> str:
    return f"cast(null as {sql_type(col_type, dialect)})"


POLICIES: dict[str, Callable[[str, str, str, Dialect], str]] = {
    "token": _token,
    "year": _year,
    "zip3": _zip3,
    "redact": _redact,
    "null": _null,
}


def mask_expression(policy: str, column: str, column_type: str, key: str, dialect: Dialect = "duckdb") -> str:
    return POLICIES[policy](quote(column), column_type, key, dialect)
