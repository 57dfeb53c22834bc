"""A PostgreSQL URL from a setting (`MESH_PG_URL`, `MESH_WAREHOUSE_URL`), parsed and checked without
connecting: every problem is one line naming the setting and what is wrong."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

DEFAULT_PORT = 5432


class PostgresUrlError(ValueError):
    """The setting's URL is malformed, has another scheme, or lacks a part it needs."""


@dataclass(frozen=True)
class PostgresUrl:
    host: str
    port: int
    user: str
    password: str = dataclasses.field(repr=False)
    database: str


def parse_postgres_url(
    setting: str, url: str, schemes: tuple[str, ...], scheme_note: str, form: str, default_database: str | None = None
) -> PostgresUrl:
    """`url`, the value of `setting`: one of `schemes` (the first is named in errors, with
    `scheme_note`), a host and a user, and a database unless `default_database` is given."""
    try:
        parts = urlsplit(url)
        port = parts.port or DEFAULT_PORT
    except ValueError as exc:
        raise PostgresUrlError(f"{setting} is not a valid URL: {exc}") from None
    if parts.scheme not in schemes:
        raise PostgresUrlError(
            f"{setting} must start with {schemes[0]}:// ({scheme_note}), not {parts.scheme or 'no scheme'}://"
        )
    database = unquote(parts.path.lstrip("/")) or default_database or ""
    given = {"host": parts.hostname, "user": parts.username, "database": database}
    missing = [name for name, value in given.items() if not value]
    if missing:
        raise PostgresUrlError(f"{setting} has no {' and no '.join(missing)}: expected {form}")
    return PostgresUrl(
        parts.hostname or "", port, unquote(parts.username or ""), unquote(parts.password or ""), database
    )
