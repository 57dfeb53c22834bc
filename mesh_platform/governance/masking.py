"""Masking: the one owner of what is pii, how a pii column is masked for a consumer, and how samples
and records that may hold pii are masked before they leave the platform (check results,
quarantined records).

A column is pii when its descriptor classifies it `pii`; a consumer without pii access reads it
through its `mask` policy (`column_policy`, default `token`). Policies are applied at read time by
the governed read.

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

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal, Protocol

from mesh_platform.sql.syntax import Dialect, literal, quote, sql_type

PII = "pii"  # the classification of a column whose values identify a person
MaskPolicy = Literal["token", "year", "zip3", "redact", "null"]
DEFAULT_POLICY: MaskPolicy = "token"
MASKED = "<pii masked>"  # what a masked value in a check result or a quarantined record reads


class ClassifiedColumn(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def classification(self) -> str: ...


def column_policy(classification: str, mask: str | None) -> MaskPolicy | None:
    """The policy a consumer without pii access reads a column through: its `mask` (default `token`)
    for a pii column, None (raw values) for any other."""
    if classification != PII:
        return None
    return mask or DEFAULT_POLICY  # type: ignore[return-value]


def pii_columns(columns: Iterable[ClassifiedColumn]) -> list[str]:
    """The names of the pii columns among `columns`, in their order."""
    return [c.name for c in columns if c.classification == PII]


def masked_sample(values: list[Any]) -> list[str]:
    """A sample of a pii column's values, as a check result may show it: how many, not which."""
    return [f"<pii masked: {len(values)} value(s)>"] if values else []


def masked_record(values: Mapping[str, Any], fields: Iterable[str]) -> dict[str, Any]:
    """A record with the values of `fields` masked (nulls stay null)."""
    hidden = set(fields)
    return {k: (MASKED if k in hidden and v is not None else v) for k, v in values.items()}


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


POLICIES: dict[MaskPolicy, Callable[[str, str, str, Dialect], str]] = {
    "token": _token,
    "year": _year,
    "zip3": _zip3,
    "redact": _redact,
    "null": _null,
}


def mask_expression(policy: str, column: str, column_type: str, key: str, dialect: Dialect = "duckdb") -> str:
    return POLICIES[policy](quote(column), column_type, key, dialect)
