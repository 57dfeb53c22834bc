"""Great Expectations' regex expectations on DuckDB.

GX 1.x builds the SQL of every regex metric with `get_dialect_regex_expression`
(`great_expectations/expectations/metrics/util.py`), which knows one operator per dialect and none
for DuckDB: `expect_column_values_to_match_regex` and its five relatives raise "Regex is not
supported for dialect duckdb". `apply_regex_for_duckdb` gives the six metric modules that import
the helper a version that answers DuckDB with `regexp_matches(column, pattern)` (a search, as GX's
other engines do) and defers to GX's own for every other dialect.

Relied on (`tests/test_upstream.py` fails when it changes): GX's helper still returns None for
DuckDB; exactly these six modules use it, each importing it by name; its parameters are
`(column, regex, dialect, positive)`.
"""

from __future__ import annotations

import importlib
from functools import cache
from typing import Any

# every GX module that builds regex SQL with the helper (imported by name into each)
REGEX_MODULES = (
    "great_expectations.expectations.metrics.column_map_metrics.column_values_match_regex",
    "great_expectations.expectations.metrics.column_map_metrics.column_values_not_match_regex",
    "great_expectations.expectations.metrics.column_map_metrics.column_values_match_regex_list",
    "great_expectations.expectations.metrics.column_map_metrics.column_values_not_match_regex_list",
    "great_expectations.expectations.metrics.column_aggregate_metrics.column_values_match_regex_values",
    "great_expectations.expectations.metrics.column_aggregate_metrics.column_values_not_match_regex_values",
)
HELPER = "get_dialect_regex_expression"


def is_duckdb(dialect: Any) -> bool:
    return "duckdb" in str(getattr(dialect, "name", None) or getattr(dialect, "__name__", dialect)).lower()


@cache
def apply_regex_for_duckdb() -> None:
    """Once per process, before the first GX validation on DuckDB."""
    import sqlalchemy as sa
    from great_expectations.expectations.metrics import util

    original = util.get_dialect_regex_expression

    def regex_expression(column: Any, regex: str, dialect: Any, positive: bool = True) -> Any:
        expression = original(column, regex, dialect, positive)
        if expression is None and is_duckdb(dialect):
            matches = sa.func.regexp_matches(column, sa.literal(regex))
            expression = matches if positive else sa.not_(matches)
        return expression

    for name in REGEX_MODULES:
        setattr(importlib.import_module(name), HELPER, regex_expression)
