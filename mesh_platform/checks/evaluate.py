"""Run a product's contract on its freshly built (unpublished) table.

The schema contract is compared in DuckDB. Expectations — the descriptor's, one check each, and
any suite a domain adds in code, one check per suite — run through Great Expectations 1.x's SQL
engine inside DuckDB (`gx_sql_engine`, which fixes GX #10738), so no table is loaded into memory.
Samples of unexpected values of pii columns are masked before they leave this module.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import duckdb

from mesh_platform.checks.asset_checks import SCHEMA_CHECK
from mesh_platform.checks.gx_sql_engine import duckdb_batch
from mesh_platform.descriptor.model import Product
from mesh_platform.governance.masking import MASKED, masked_sample, pii_columns
from mesh_platform.sdk import SuiteFn
from mesh_platform.sql.syntax import SQL_TYPES, quote

SAMPLE_SIZE = 5
# arguments that carry SQL of their own (`UnexpectedRowsExpectation`, a suite's query expectations)
QUERY_KWARGS = ("unexpected_rows_query", "base_query", "comparison_query")
# counts, percent and observed value. Without a sample: GX fetches a sample with a query of its own
# (a whole scan when nothing is unexpected), so samples are fetched only for what failed.
RESULT_FORMAT = {"result_format": "BASIC", "partial_unexpected_count": 0}
SAMPLE_FORMAT = {"result_format": "BASIC", "partial_unexpected_count": SAMPLE_SIZE}


@dataclass
class CheckOutcome:
    """One check's result. A check that was not evaluated (`ran` False: an earlier blocking check
    failed) did not pass, but did not fail either: it blocks nothing and is reported as not run."""

    name: str
    passed: bool
    blocking: bool
    severity: str
    metadata: dict[str, Any] = field(default_factory=dict)
    summary: str = ""
    ran: bool = True

    @property
    def blocks(self) -> bool:
        return self.ran and self.blocking and not self.passed

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "passed": self.passed,
            "blocking": self.blocking,
            "severity": self.severity,
            "summary": self.summary,
            "ran": self.ran,
        }


def not_run(name: str, severity: str, reason: str) -> CheckOutcome:
    return CheckOutcome(name, False, severity == "error", severity, {"not_run": reason}, f"not run: {reason}", False)


def contract_not_run(product: Product, suites: Sequence[SuiteFn], reason: str) -> list[CheckOutcome]:
    """Every check of the product's contract, as not run (the build was blocked before its audit)."""
    checks = [(SCHEMA_CHECK, "error"), *((n, e.severity) for n, e in product.named_expectations())]
    checks += [(s.check_name, s.severity) for s in suites]
    return [not_run(name, severity, reason) for name, severity in checks]


@dataclass
class CheckPlan:
    """One asset check: a name, a severity and the GX expectations it evaluates."""

    name: str
    severity: str
    expectations: list[Any]

    @property
    def blocking(self) -> bool:
        return self.severity == "error"


def schema_outcome(con: duckdb.DuckDBPyConnection, relation: str, product: Product) -> CheckOutcome:
    actual = {row[0]: str(row[1]).upper() for row in con.execute(f"describe {relation}").fetchall()}
    declared = {c.name: SQL_TYPES[c.type] for c in product.columns}
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
def gx_module() -> Any:
    import great_expectations as gx

    return gx


def gx_expectation(type_: str, kwargs: dict[str, Any]) -> Any:
    """Build a GX 1.x expectation; raises GX's own error for kwargs it rejects."""
    from great_expectations.expectations.registry import get_expectation_impl

    return get_expectation_impl(type_)(**kwargs)


def plans_for(product: Product, suites: Sequence[SuiteFn] = ()) -> list[CheckPlan]:
    plans = [
        CheckPlan(name, e.severity, [gx_expectation(e.type, e.kwargs)]) for name, e in product.named_expectations()
    ]
    for suite in suites:
        plans.append(CheckPlan(suite.check_name, suite.severity, list(suite.fn(gx_module()))))
    return plans


def _columns_of(expectation: Any) -> list[str]:
    names = [getattr(expectation, a, None) for a in ("column", "column_A", "column_B")]
    names += list(getattr(expectation, "column_list", None) or [])
    return [str(n) for n in names if n]


def _sample(values: list[Any], masked: bool) -> list[Any]:
    if masked:
        return masked_sample(values)
    return [v if isinstance(v, int | float | bool) or v is None else str(v) for v in values[:SAMPLE_SIZE]]


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, int | float | bool | str):
        return value
    return str(value)


def _gx_error(result: Any) -> str | None:
    """GX reports a metric it could not compute in `exception_info` instead of raising."""
    info = result.exception_info or {}
    entries = info.values() if info and "raised_exception" not in info else [info]
    messages = [e.get("exception_message") for e in entries if isinstance(e, dict) and e.get("raised_exception")]
    return "; ".join(str(m) for m in messages) or None


def _pii_read(expectation: Any, pii: set[str]) -> set[str]:
    """The pii columns an expectation reads: those it names, and those its row condition mentions (a
    not-null check on `state` filtered on `email` reads `email`). A query (`QUERY_KWARGS`) reads
    them all: SQL reaches a column without its name (`*`, `columns('^em')`, `#4`, a row as a
    struct), so no scan of its text can tell which it reads."""
    if any(getattr(expectation, a, None) for a in QUERY_KWARGS):
        return set(pii)
    read = {c for c in _columns_of(expectation) if c in pii}
    text = str(getattr(expectation, "row_condition", None) or "")
    return read | {c for c in pii if re.search(rf"\b{re.escape(c)}\b", text)}


def _shown_error(expectation: Any, error: str, pii: set[str]) -> str:
    """The error as a check result shows and stores it. An expectation that reads a pii column gets
    only the error's kind: the database's message quotes the value it failed on (`Could not convert
    string 'someone@example.com' to INT32`), and check results are read by every consumer."""
    read = sorted(_pii_read(expectation, pii))
    if not read:
        return error
    kind = error.split(":", 1)[0] if ":" in error else ""
    kind = kind if kind and not any(q in kind for q in "'\"`") else "an error"
    return f"{kind}: {MASKED} (the message is not shown: it can quote values of {', '.join(read)})"


def _describe(expectation: Any, result: Any, pii: set[str]) -> tuple[dict[str, Any], str]:
    error = _gx_error(result)
    if error:
        error = _shown_error(expectation, error, pii)
        return {"expectation": expectation.expectation_type, "success": False, "error": error[:500]}, (
            f"{expectation.expectation_type} could not run: {error[:300]}"
        )
    detail = result.result or {}
    masked = any(c in pii for c in _columns_of(expectation))
    observed = detail.get("observed_value")
    percent = detail.get("unexpected_percent")
    metadata = {
        "expectation": expectation.expectation_type,
        "success": bool(result.success),
        "observed_value": MASKED if masked and observed is not None else _jsonable(observed),
        "element_count": detail.get("element_count"),
        "unexpected_count": detail.get("unexpected_count"),
        "unexpected_percent": round(float(percent), 4) if percent is not None else None,
        "partial_unexpected_list": _sample(list(detail.get("partial_unexpected_list") or []), masked),
    }
    metadata = {k: v for k, v in metadata.items() if v is not None}
    observed_text = metadata.get("observed_value", metadata.get("unexpected_count"))
    summary = f"{expectation.expectation_type}: {'passed' if result.success else 'failed'} (observed {observed_text}"
    if "unexpected_count" in metadata:
        summary += f", {metadata['unexpected_count']} unexpected, {metadata.get('unexpected_percent')}%"
    return metadata, summary + ")"


def _validate_each(batch: Any, expectations: list[Any], result_format: dict[str, Any] = RESULT_FORMAT) -> list[Any]:
    """One GX validation per expectation; an expectation GX cannot run becomes its exception."""
    results: list[Any] = []
    for expectation in expectations:
        try:
            results.append(batch.validate(expectation, result_format=result_format))
        except Exception as exc:  # a GX error is a failed check, reported, not a crash
            results.append(exc)
    return results


def _with_samples(batch: Any, expectations: list[Any], results: list[Any]) -> list[Any]:
    """Validate the expectations that failed again, this time with a sample of unexpected values."""
    failed = [i for i, r in enumerate(results) if not isinstance(r, Exception) and not r.success and not _gx_error(r)]
    for i, result in zip(failed, _validate_each(batch, [expectations[i] for i in failed], SAMPLE_FORMAT), strict=True):
        if not isinstance(result, Exception):
            results[i] = result
    return results


def _validate_all(batch: Any, expectations: list[Any]) -> list[Any]:
    """Every expectation of the product in one GX suite validation, so GX bundles their metrics into
    fewer queries; if GX cannot (or its results do not line up), one validation per expectation."""
    gx = gx_module()
    try:
        suite = gx.ExpectationSuite(name="mesh_contract", expectations=[e.copy() for e in expectations])
        results = list(batch.validate(suite, result_format=RESULT_FORMAT).results)
    except Exception:
        return _with_samples(batch, expectations, _validate_each(batch, expectations))
    types = [r.expectation_config.type for r in results]
    if types != [e.expectation_type for e in expectations]:
        results = _validate_each(batch, expectations)
    return _with_samples(batch, expectations, results)


def _outcome(plan: CheckPlan, results: list[Any], pii: set[str]) -> CheckOutcome:
    described = []
    for expectation, result in zip(plan.expectations, results, strict=True):
        if isinstance(result, Exception):
            error = _shown_error(expectation, str(result), pii)
            described.append(
                (
                    {"expectation": expectation.expectation_type, "success": False, "error": error},
                    f"{expectation.expectation_type} could not run: {error}",
                )
            )
            continue
        described.append(_describe(expectation, result, pii))
    passed = all(m["success"] for m, _ in described)
    if len(described) == 1:
        metadata, summary = described[0]
    else:
        metadata = {"expectations": [m for m, _ in described], "failed": sum(not m["success"] for m, _ in described)}
        summary = "; ".join(s for m, s in described if not m["success"]) or f"{len(described)} expectations passed"
    return CheckOutcome(plan.name, passed, plan.blocking, plan.severity, metadata, summary)


def expectation_outcomes(
    con: duckdb.DuckDBPyConnection, table: str, product: Product, plans: list[CheckPlan]
) -> list[CheckOutcome]:
    if not plans:
        return []
    batch = duckdb_batch(con, table)
    pii = set(pii_columns(product.columns))
    results = iter(_validate_all(batch, [e for plan in plans for e in plan.expectations]))
    return [_outcome(plan, [next(results) for _ in plan.expectations], pii) for plan in plans]


def run_contract(
    con: duckdb.DuckDBPyConnection, product: Product, suites: Sequence[SuiteFn] = ()
) -> list[CheckOutcome]:
    """The product's checks on its freshly built table `main.<product>` (not yet published)."""
    schema = schema_outcome(con, f"main.{quote(product.name)}", product)
    plans = plans_for(product, suites)
    if not schema.passed:
        return [schema, *(not_run(p.name, p.severity, "the schema contract failed") for p in plans)]
    return [schema, *expectation_outcomes(con, product.name, product, plans)]
