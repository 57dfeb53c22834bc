"""Which names a descriptor may give a domain, a product or a column: the SQL words they may not be.

A domain, product or column name becomes an identifier in SQL the platform writes (DuckDB and
PostgreSQL), in dbt models and in Great Expectations' generated SQL, not all of which quote it. A
name that is a reserved keyword of either engine (`order`, `group`, `user`, `left`) fails there as
a parser error, so `mesh validate` refuses it (rule `name-not-reserved`). Keyword-like names that
the engines accept as identifiers (`value`, `name`, `type`, `status`, `date`, `timestamp`) stay
allowed.

Kept as data so that reading a descriptor opens no database; `tests/test_descriptor_safety.py`
asserts the lists equal what the installed DuckDB and a PostgreSQL server report.
"""

from __future__ import annotations


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# duckdb_keywords() of categories 'reserved' and 'type_function'
DUCKDB_RESERVED: frozenset[str] = _words(
    """
    all analyse analyze and anti any array as asc asof asymmetric at authorization binary both by case cast check
    collate collation column columns concurrently constraint create cross default deferrable desc describe distinct
    do else end except false fetch for foreign freeze from full generated glob group having ilike in initially inner
    intersect into is isnull join lambda lateral leading left like limit map natural not notnull null offset on only
    or order outer overlaps pivot pivot_longer pivot_wider placing positional primary qualify references returning
    right select semi show similar some struct summarize symmetric table tablesample then to trailing true try_cast
    tuple union unique unpack unpivot using variadic verbose when where window with
    """
)

# pg_get_keywords() of categories R (reserved) and T (reserved, can be a function or type name)
POSTGRES_RESERVED: frozenset[str] = _words(
    """
    all analyse analyze and any array as asc asymmetric authorization binary both case cast check collate collation
    column concurrently constraint create cross current_catalog current_date current_role current_schema current_time
    current_timestamp current_user default deferrable desc distinct do else end except false fetch for foreign freeze
    from full grant group having ilike in initially inner intersect into is isnull join lateral leading left like
    limit localtime localtimestamp natural not notnull null offset on only or order outer overlaps placing primary
    references returning right select session_user similar some symmetric table tablesample then to trailing true
    union unique user using variadic verbose when where window with
    """
)

SQL_RESERVED: frozenset[str] = DUCKDB_RESERVED | POSTGRES_RESERVED


def reserved_by(name: str) -> list[str]:
    """The engines that reserve `name` (empty if it may be used as an identifier)."""
    return [
        engine for engine, words in (("DuckDB", DUCKDB_RESERVED), ("PostgreSQL", POSTGRES_RESERVED)) if name in words
    ]
