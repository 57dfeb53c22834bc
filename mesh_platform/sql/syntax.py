"""Identifiers, literals and column types as SQL text, the same for DuckDB and PostgreSQL."""

from __future__ import annotations

import math
from datetime import date, datetime
from typing import Literal

Dialect = Literal["duckdb", "postgres"]

# the warehouse type each descriptor column type is built as (DuckDB's names)
SQL_TYPES = {
    "string": "VARCHAR",
    "integer": "INTEGER",
    "bigint": "BIGINT",
    "double": "DOUBLE",
    "boolean": "BOOLEAN",
    "date": "DATE",
    "timestamp": "TIMESTAMP",
}
POSTGRES_TYPES = {**SQL_TYPES, "double": "DOUBLE PRECISION"}


def sql_type(column_type: str, dialect: Dialect = "duckdb") -> str:
    """The SQL type a descriptor column type (`string`, `integer`, ...) is built as in `dialect`."""
    return (POSTGRES_TYPES if dialect == "postgres" else SQL_TYPES)[column_type]


def quote(identifier: str) -> str:
    """A quoted identifier: `a"b` -> `"a""b"`."""
    return '"' + identifier.replace('"', '""') + '"'


def literal(value: object) -> str:
    """A SQL literal both DuckDB and PostgreSQL read the same way (text, number, boolean, date)."""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise ValueError(f"{value!r} has no SQL literal")
        return repr(value)
    if isinstance(value, datetime | date):
        value = value.isoformat()
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    raise ValueError(f"{value!r} has no SQL literal")
