"""Which names a new domain or product may take, and why not."""

from __future__ import annotations

import keyword
import re

from mesh_platform.descriptor.model import NAME_PATTERN
from mesh_platform.descriptor.reserved_words import reserved_by

MAX_LENGTH = {"domain": 40, "product": 63}  # a domain's name also prefixes its code location, job and files
# folders and modules of the project and its tools, DuckDB's built-in schemas and catalogs, dbt's
# Jinja names, and the names a domain's assets.py imports from the SDK
PROJECT_NAMES = frozenset(
    {
        "mesh",
        "mesh_platform",
        "mesh_domains",
        "domains",
        "dbt_projects",
        "tests",
        "test",
        "bench",
        "devtools",
        "dagster",
        "dbt",
        "duckdb",
        "main",
        "temp",
        "system",
        "memory",
        "information_schema",
        "pg_catalog",
        "ref",
        "source",
        "config",
        "this",
        "var",
        "env_var",
        "product",
        "internal",
        "suite",
        "ctx",
    }
)


class InvalidName(ValueError):
    pass


def check_name(name: str, what: str) -> None:
    """Raise InvalidName saying what is wrong with `name` as a `what` (domain or product) name."""
    if not re.match(NAME_PATTERN, name or ""):
        raise InvalidName(
            f"{what} name {name!r} is not valid: use lowercase letters, digits and underscores, "
            f"starting with a letter (e.g. {'vaccine_outreach' if what == 'domain' else 'daily_reminders'})"
        )
    if len(name) > MAX_LENGTH.get(what, 63):
        raise InvalidName(f"{what} name {name!r} is longer than {MAX_LENGTH.get(what, 63)} characters")
    if keyword.iskeyword(name) or keyword.issoftkeyword(name):
        raise InvalidName(f"{what} name {name!r} is a Python keyword")
    if name in PROJECT_NAMES:
        raise InvalidName(f"{what} name {name!r} is reserved by the platform")
    if reserved_by(name):
        raise InvalidName(f"{what} name {name!r} is a reserved SQL word in {' and '.join(reserved_by(name))}")
