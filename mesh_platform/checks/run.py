"""Run a product's contract on its freshly built (unpublished) table.

The schema contract is compared in DuckDB. Expectations run through Great Expectations 1.x on
a pandas batch of only the columns they name (GX's SQL engine fails on DuckDB, GX #10738).
Samples of unexpected values of pii columns are masked before they leave this module.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import Any

import duckdb

from mesh_platform.checks.specs import SCHEMA_CHECK
from mesh_platform.defs.specs import SQL_TYPE_NAMES
from mesh_platform.descriptor.model import Expectation, Product
from mesh_platform.governance.policies import quote

SAMPLE_SIZE = 5


@dataclass
class CheckOutcome:
    name: str
    passed: bool
    blocking: bool
    severity: str
    metadata: dict[str, Any] = field(default_factory=dict)
    summary: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "passed": self.passed,
            "blocking": self.blocking,
            "severity": self.severity,
            "summary": self.summary,
        }


def schema_outcome(con: duckdb.DuckDBPyConnection, relation: str, product: Product) -> CheckOutcome:
    actual = {row[0]: str(row[1]).upper() for row in con.execute(f"describe {relation}").fetchall()}
    declared = {c.name: SQL_TYPE_NAMES[c.type] for c in product.columns}
    missing = sorted(set(declared) - set(actual))
    extra = sorted(set(actual) - set(declared))
    retyped = sorted(c for c in set(declared) & set(actual) if declared[c] != actual[c])
    diff = [f"- {c} ({declared[c]}) missing" for c in missing]
    diff += [f"+ {c} ({actual[c]}) not declared" for c in extra]
    diff += [f"~ {c}: declared {declared[c]}, built {actual[c]}" for c in retyped]
    passed = not diff
    return CheckOutcome(
        SCHEMA_CHECK,
        passed,
        True,
        "error",
        {
            "missing": ", ".join(missing),
            "extra": ", ".join(extra),
            "retyped": ", ".join(retyped),
            "diff": "\n".join(diff) or "(none)",
        },
        "schema matches" if passed else "schema drift: " + "; ".join(diff),
    )


@cache
def _gx_batch_factory() -> Any:
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    asset = context.data_sources.add_pandas("mesh").add_dataframe_asset("product")
    return asset.add_batch_definition_whole_dataframe("whole")


def _gx_expectation(expectation: Expectation) -> Any:
    from great_expectations.expectations.registry import get_expectation_impl

    return get_expectation_impl(expectation.type)(**expectation.kwargs)


def _masked_sample(values: list[Any], masked: bool) -> list[Any]:
    if masked:
        return [f"<pii masked: {len(values)} value(s)>"] if values else []
    return [v if isinstance(v, (int, float, bool)) or v is None else str(v) for v in values[:SAMPLE_SIZE]]


def expectation_outcomes(con: duckdb.DuckDBPyConnection, relation: str, product: Product) -> list[CheckOutcome]:
    if not product.expectations:
        return []
    needed = sorted({c for e in product.expectations for c in e.columns} or {product.columns[0].name})
    frame = con.execute(f"select {', '.join(quote(c) for c in needed)} from {relation}").df()
    batch = _gx_batch_factory().get_batch(batch_parameters={"dataframe": frame})
    pii = {c.name for c in product.columns if c.classification == "pii"}
    outcomes = []
    for expectation in product.expectations:
        blocking = expectation.severity == "error"
        try:
            result = batch.validate(_gx_expectation(expectation), result_format="SUMMARY")
        except Exception as exc:  # a GX error is a failed check, reported, not a crash
            outcomes.append(
                CheckOutcome(
                    expectation.check_name,
                    False,
                    blocking,
                    expectation.severity,
                    {"error": str(exc)},
                    f"{expectation.type} could not run: {exc}",
                )
            )
            continue
        detail = result.result or {}
        masked = any(c in pii for c in expectation.columns)
        observed = detail.get("observed_value")
        metadata = {
            "expectation": expectation.type,
            "success": bool(result.success),
            "observed_value": "<pii masked>" if masked and observed is not None else _jsonable(observed),
            "element_count": detail.get("element_count"),
            "unexpected_count": detail.get("unexpected_count"),
            "unexpected_percent": _round(detail.get("unexpected_percent")),
            "partial_unexpected_list": _masked_sample(list(detail.get("partial_unexpected_list") or []), masked),
        }
        metadata = {k: v for k, v in metadata.items() if v is not None}
        observed_text = metadata.get("observed_value", metadata.get("unexpected_count"))
        summary = f"{expectation.type}: {'passed' if result.success else 'failed'} (observed {observed_text}"
        if "unexpected_count" in metadata:
            summary += f", {metadata['unexpected_count']} unexpected, {metadata.get('unexpected_percent')}%"
        outcomes.append(
            CheckOutcome(
                expectation.check_name, bool(result.success), blocking, expectation.severity, metadata, summary + ")"
            )
        )
    return outcomes


def _round(value: Any) -> Any:
    return round(float(value), 4) if value is not None else None


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (int, float, bool, str)):
        return value
    return str(value)


def run_contract(con: duckdb.DuckDBPyConnection, relation: str, product: Product) -> list[CheckOutcome]:
    schema = schema_outcome(con, relation, product)
    if not schema.passed:
        skipped = [
            CheckOutcome(
                e.check_name,
                False,
                e.severity == "error",
                e.severity,
                {"skipped": "schema drift"},
                f"{e.type}: not run, the schema contract failed",
            )
            for e in product.expectations
        ]
        return [schema, *skipped]
    return [schema, *expectation_outcomes(con, relation, product)]
