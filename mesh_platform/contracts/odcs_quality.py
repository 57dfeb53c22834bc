"""Great Expectations expectations as ODCS 3.x quality rules, and back.

An expectation with an ODCS-native form is exported in that form, so that any ODCS tool runs it
(datacontract-cli's `test` included):

| expectation | ODCS rule |
|---|---|
| `expect_column_values_to_not_be_null` | property `nullValues` = 0 (`mostly`: `unit: percent`) |
| `expect_column_values_to_be_unique` | property `duplicateValues` = 0 |
| `expect_compound_columns_to_be_unique` | schema `duplicateValues` = 0 over `arguments.properties` |
| `expect_column_values_to_be_in_set` | property `invalidValues` = 0 with `arguments.validValues` |
| `expect_column_values_to_match_regex` | property `invalidValues` = 0 with `arguments.pattern` |
| `expect_table_row_count_to_be_between` / `_to_equal` | schema `rowCount` with the bounds |
| ranges, pairs, lengths, sets, aggregates | `type: sql`: a query over `${object}` and a threshold |

Each exported rule keeps the expectation itself as the custom property `greatExpectations`
(`{type, kwargs}`), so that importing the contract gives back exactly the expectation the platform
runs, and an edit of one form but not the other is noticed. An expectation without an ODCS form is
exported as `type: custom, engine: great-expectations` (which ODCS tools may not run: the export
lists them in the contract's description). Severity `error` is ODCS `error` (the platform blocks
publication), `warn` is `warning` (reported only).

The native forms count what GX counts: nulls are never invalid, out of range or duplicated, and a
`mostly` becomes a ratio of the non-null values. One difference remains in
`duplicateValues` over several columns: ODCS tools skip rows with any null key column, GX only
rows whose key columns are all null. LIKE patterns stay Great Expectations rules: GX cannot run them
in DuckDB, so a native form would pass where the platform's check fails.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import yaml
from open_data_contract_standard.model import CustomProperty, DataQuality

from mesh_platform.sql.syntax import literal, quote

GX_ENGINE = "great-expectations"
GX_PROPERTY = "greatExpectations"  # the expectation a rule was exported from: {type, kwargs}
SUITE_PROPERTY = "meshSuite"  # the code suite (`@suite`) a rule comes from
OBJECT = "${object}"  # ODCS's placeholder for the table a schema object names
SEVERITY = {"error": "error", "warn": "warning"}
BLOCKING = frozenset({"error", "critical", "high", "major", "blocker", "fatal"})
REPORTING = frozenset({"warning", "warn", "info", "low", "minor", "trivial"})
# kwargs that change how GX reports, not what it checks
REPORTING_KWARGS = frozenset({"result_format", "catch_exceptions", "meta", "notes", "description"})
COMPARATORS = (
    "mustBe",
    "mustNotBe",
    "mustBeGreaterThan",
    "mustBeGreaterOrEqualTo",
    "mustBeLessThan",
    "mustBeLessOrEqualTo",
    "mustBeBetween",
    "mustNotBeBetween",
)
DIMENSIONS = {
    "nullValues": "completeness",
    "duplicateValues": "uniqueness",
    "invalidValues": "conformity",
    "rowCount": "completeness",
}


class ContractError(ValueError):
    """An ODCS document (or a part of it, named by `field`) the platform cannot use."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class GxRule:
    """One Great Expectations expectation a product is checked with, as the platform runs it."""

    id: str  # the asset check's name; for a suite's expectations `suite__<name>__<n>`
    type: str
    kwargs: dict[str, Any]
    severity: str  # error | warn
    suite: str | None = None

    @property
    def definition(self) -> dict[str, Any]:
        return {"type": self.type, "kwargs": self.kwargs}


@dataclass(frozen=True)
class OdcsRule:
    """A quality rule and where it goes: on the property `column`, or on the schema object (None)."""

    column: str | None
    quality: DataQuality

    @property
    def native(self) -> bool:
        return self.quality.type != "custom"


def _count_where(predicate: str, column: str | None, mostly: float | None) -> dict[str, Any]:
    """Rows matching `predicate` must be none, or at most 1 - `mostly` of the non-null values of `column`."""
    if mostly is None:
        return {"type": "sql", "query": f"SELECT COUNT(*) FROM {OBJECT} WHERE {predicate}", "mustBe": 0}
    base = f"COUNT({quote(column)})" if column else "COUNT(*)"
    query = f"SELECT COUNT(*) FILTER (WHERE {predicate}) * 1.0 / GREATEST({base}, 1) FROM {OBJECT}"
    return {"type": "sql", "query": query, "mustBeLessOrEqualTo": round(1 - mostly, 12)}


def _bounds(kwargs: dict[str, Any]) -> dict[str, Any] | None:
    """An ODCS threshold for min_value/max_value (strict_min/strict_max), or None if it has none (ODCS
    thresholds are numbers, and a range is of two different numbers)."""
    low, high = kwargs.get("min_value"), kwargs.get("max_value")
    strict_low, strict_high = bool(kwargs.get("strict_min")), bool(kwargs.get("strict_max"))
    if any(v is not None and (isinstance(v, bool) or not isinstance(v, int | float)) for v in (low, high)):
        return None
    if low is not None and high is not None:
        if strict_low or strict_high:
            return None
        return {"mustBe": low} if low == high else {"mustBeBetween": [low, high]}
    if low is not None:
        return {"mustBeGreaterThan" if strict_low else "mustBeGreaterOrEqualTo": low}
    if high is not None:
        return {"mustBeLessThan" if strict_high else "mustBeLessOrEqualTo": high}
    return None


def _out_of_range(expression: str, kwargs: dict[str, Any]) -> str | None:
    """The predicate of values outside [min_value, max_value] (strict bounds exclude the bound)."""
    terms = []
    if kwargs.get("min_value") is not None:
        terms.append(f"{expression} {'<=' if kwargs.get('strict_min') else '<'} {literal(kwargs['min_value'])}")
    if kwargs.get("max_value") is not None:
        terms.append(f"{expression} {'>=' if kwargs.get('strict_max') else '>'} {literal(kwargs['max_value'])}")
    return " OR ".join(terms) or None


# --- expectation -> native ODCS rule ---------------------------------------------------------------------

Native = tuple[str | None, dict[str, Any]]  # (property or None for the schema, DataQuality fields)


def _mostly(kwargs: dict[str, Any]) -> float | None:
    mostly = kwargs.get("mostly")
    if mostly is None or mostly == 1:
        return None
    return float(mostly)


def _not_null(kw: dict[str, Any]) -> Native | None:
    mostly = _mostly(kw)
    if mostly is None:
        return kw["column"], {"metric": "nullValues", "mustBe": 0}
    return kw["column"], {
        "metric": "nullValues",
        "unit": "percent",
        "mustBeLessOrEqualTo": round((1 - mostly) * 100, 10),
    }


def _unique(kw: dict[str, Any]) -> Native | None:
    return kw["column"], {"metric": "duplicateValues", "mustBe": 0}


def _compound_unique(kw: dict[str, Any]) -> Native | None:
    if kw.get("ignore_row_if", "all_values_are_missing") != "all_values_are_missing":
        return None
    return None, {"metric": "duplicateValues", "arguments": {"properties": list(kw["column_list"])}, "mustBe": 0}


def _in_set(kw: dict[str, Any]) -> Native | None:
    column, values = kw["column"], list(kw["value_set"])
    if _mostly(kw) is None:
        return column, {"metric": "invalidValues", "arguments": {"validValues": values}, "mustBe": 0}
    predicate = f"NOT ({quote(column)} IN ({', '.join(literal(v) for v in values)}))"
    return column, _count_where(predicate, column, _mostly(kw))


def _regex(kw: dict[str, Any]) -> Native | None:
    if _mostly(kw) is not None:
        return None  # the regex functions differ between engines: only the library form is portable
    return kw["column"], {"metric": "invalidValues", "arguments": {"pattern": kw["regex"]}, "mustBe": 0}


def _row_count_between(kw: dict[str, Any]) -> Native | None:
    threshold = _bounds(kw)
    return (None, {"metric": "rowCount", **threshold}) if threshold else None


def _row_count_equal(kw: dict[str, Any]) -> Native | None:
    return None, {"metric": "rowCount", "mustBe": kw["value"]}


def _between(kw: dict[str, Any]) -> Native | None:
    predicate = _out_of_range(quote(kw["column"]), kw)
    return (kw["column"], _count_where(predicate, kw["column"], _mostly(kw))) if predicate else None


def _lengths_between(kw: dict[str, Any]) -> Native | None:
    predicate = _out_of_range(f"LENGTH({quote(kw['column'])})", kw)
    return (kw["column"], _count_where(predicate, kw["column"], _mostly(kw))) if predicate else None


def _lengths_equal(kw: dict[str, Any]) -> Native | None:
    predicate = f"LENGTH({quote(kw['column'])}) <> {literal(kw['value'])}"
    return kw["column"], _count_where(predicate, kw["column"], _mostly(kw))


def _be_null(kw: dict[str, Any]) -> Native | None:
    if _mostly(kw) is not None:
        return None
    return kw["column"], _count_where(f"{quote(kw['column'])} IS NOT NULL", None, None)


def _not_in_set(kw: dict[str, Any]) -> Native | None:
    values = list(kw["value_set"] or [])
    if not values:
        return None
    predicate = f"{quote(kw['column'])} IN ({', '.join(literal(v) for v in values)})"
    return kw["column"], _count_where(predicate, kw["column"], _mostly(kw))


def _pair(operator: str) -> Callable[[dict[str, Any]], Native | None]:
    def native(kw: dict[str, Any]) -> Native | None:
        if kw.get("ignore_row_if", "both_values_are_missing") != "both_values_are_missing" or _mostly(kw):
            return None
        op = ">=" if operator == ">" and kw.get("or_equal") else operator
        return None, _count_where(f"NOT ({quote(kw['column_A'])} {op} {quote(kw['column_B'])})", None, None)

    return native


def _aggregate(template: str) -> Callable[[dict[str, Any]], Native | None]:
    """A column aggregate (`template` with {c}: the quoted column) within min_value/max_value."""

    def native(kw: dict[str, Any]) -> Native | None:
        threshold = _bounds(kw)
        if threshold is None:
            return None
        query = f"SELECT {template.format(c=quote(kw['column']))} FROM {OBJECT}"
        return kw["column"], {"type": "sql", "query": query, **threshold}

    return native


def _distinct_in_set(kw: dict[str, Any]) -> Native | None:
    values = list(kw.get("value_set") or [])
    if not values:
        return None
    column = quote(kw["column"])
    query = f"SELECT COUNT(DISTINCT {column}) FROM {OBJECT} WHERE NOT ({column} IN ({', '.join(map(literal, values))}))"
    return kw["column"], {"type": "sql", "query": query, "mustBe": 0}


COLUMN = ("column",)
RANGE = ("min_value", "max_value", "strict_min", "strict_max")
# expectation type -> (the kwargs its native form understands, the converter)
NATIVE: dict[str, tuple[tuple[str, ...], Callable[[dict[str, Any]], Native | None]]] = {
    "expect_column_values_to_not_be_null": ((*COLUMN, "mostly"), _not_null),
    "expect_column_values_to_be_unique": (COLUMN, _unique),
    "expect_compound_columns_to_be_unique": (("column_list", "ignore_row_if"), _compound_unique),
    "expect_column_values_to_be_in_set": ((*COLUMN, "value_set", "mostly"), _in_set),
    "expect_column_values_to_match_regex": ((*COLUMN, "regex", "mostly"), _regex),
    "expect_table_row_count_to_be_between": (RANGE, _row_count_between),
    "expect_table_row_count_to_equal": (("value",), _row_count_equal),
    "expect_column_values_to_be_between": ((*COLUMN, *RANGE, "mostly"), _between),
    "expect_column_value_lengths_to_be_between": ((*COLUMN, *RANGE, "mostly"), _lengths_between),
    "expect_column_value_lengths_to_equal": ((*COLUMN, "value", "mostly"), _lengths_equal),
    "expect_column_values_to_be_null": ((*COLUMN, "mostly"), _be_null),
    "expect_column_values_to_not_be_in_set": ((*COLUMN, "value_set", "mostly"), _not_in_set),
    "expect_column_pair_values_a_to_be_greater_than_b": (
        ("column_A", "column_B", "or_equal", "ignore_row_if", "mostly"),
        _pair(">"),
    ),
    "expect_column_pair_values_to_be_equal": (("column_A", "column_B", "ignore_row_if", "mostly"), _pair("=")),
    "expect_column_min_to_be_between": ((*COLUMN, *RANGE), _aggregate("MIN({c})")),
    "expect_column_max_to_be_between": ((*COLUMN, *RANGE), _aggregate("MAX({c})")),
    "expect_column_mean_to_be_between": ((*COLUMN, *RANGE), _aggregate("AVG({c})")),
    "expect_column_sum_to_be_between": ((*COLUMN, *RANGE), _aggregate("SUM({c})")),
    "expect_column_unique_value_count_to_be_between": ((*COLUMN, *RANGE), _aggregate("COUNT(DISTINCT {c})")),
    "expect_column_proportion_of_unique_values_to_be_between": (
        (*COLUMN, *RANGE),
        _aggregate("COUNT(DISTINCT {c}) * 1.0 / NULLIF(COUNT({c}), 0)"),
    ),
    "expect_column_proportion_of_non_null_values_to_be_between": (
        (*COLUMN, *RANGE),
        _aggregate("COUNT({c}) * 1.0 / NULLIF(COUNT(*), 0)"),
    ),
    "expect_column_distinct_values_to_be_in_set": ((*COLUMN, "value_set"), _distinct_in_set),
}


def native_form(type_: str, kwargs: dict[str, Any]) -> Native | None:
    """The ODCS-native form of an expectation, or None when it has none (or kwargs it cannot say)."""
    known = NATIVE.get(type_)
    if known is None or not set(kwargs) <= set(known[0]) | REPORTING_KWARGS:
        return None
    try:
        return known[1](kwargs)
    except (KeyError, TypeError, ValueError):  # a kwarg missing or of a type SQL cannot say
        return None


def _description(rule: GxRule) -> str:
    effect = "blocks publication when it fails" if rule.severity == "error" else "reported, does not block"
    origin = f"; from the code suite {rule.suite!r}" if rule.suite else ""
    return f"{rule.type} {json.dumps(rule.kwargs, default=str)}; {effect}{origin}"


def to_quality(rule: GxRule) -> OdcsRule:
    """The rule in its ODCS-native form when it has one, else as a Great Expectations custom rule."""
    properties = [CustomProperty(property=GX_PROPERTY, value=rule.definition)]
    if rule.suite:
        properties.append(CustomProperty(property=SUITE_PROPERTY, value=rule.suite))
    common = {"id": rule.id, "severity": SEVERITY[rule.severity], "description": _description(rule)}
    native = native_form(rule.type, rule.kwargs)
    if native is None:
        column = rule.kwargs.get("column")
        quality = DataQuality(
            **common,
            type="custom",
            engine=GX_ENGINE,
            implementation=rule.definition,
            customProperties=properties[1:] or None,
        )
        return OdcsRule(column if isinstance(column, str) else None, quality)
    column, fields = native
    dimension = DIMENSIONS.get(fields.get("metric", ""))
    if fields.get("type") != "sql":
        fields = {"type": "library", **fields}
    return OdcsRule(column, DataQuality(**common, **fields, dimension=dimension, customProperties=properties))


# --- ODCS rule -> expectation ----------------------------------------------------------------------------


def severity_of(rule: DataQuality, field: str) -> str:
    """`error` (blocks publication) or `warn`; a rule without a severity blocks, as ODCS tools treat it."""
    severity = (rule.severity or "error").strip().lower()
    if severity in BLOCKING:
        return "error"
    if severity in REPORTING:
        return "warn"
    allowed = ", ".join(sorted(BLOCKING | REPORTING))
    raise ContractError(f"{field}.severity", f"{rule.severity!r} is not a severity the mesh knows ({allowed})")


def _custom(rule: DataQuality, name: str) -> Any:
    return next((c.value for c in rule.customProperties or [] if c.property == name), None)


def suite_of(rule: DataQuality) -> str | None:
    suite = _custom(rule, SUITE_PROPERTY)
    return suite if isinstance(suite, str) else None


def _definition(value: Any, field: str) -> tuple[str, dict[str, Any]]:
    """{type, kwargs} of an expectation written in a contract (a mapping, or its JSON or YAML text)."""
    if isinstance(value, str):
        try:
            value = yaml.safe_load(value)
        except yaml.YAMLError:
            value = None
    if not isinstance(value, dict) or not isinstance(value.get("type"), str):
        raise ContractError(field, "a Great Expectations expectation is a mapping {type: expect_..., kwargs: {...}}")
    kwargs = value.get("kwargs") or {}
    if not isinstance(kwargs, dict):
        raise ContractError(f"{field}.kwargs", "must be a mapping of the expectation's arguments")
    return value["type"], dict(kwargs)


def _threshold(rule: DataQuality, field: str) -> tuple[str, Any]:
    given = [(name, getattr(rule, name)) for name in COMPARATORS if getattr(rule, name) is not None]
    if len(given) != 1:
        raise ContractError(field, f"a rule needs exactly one of {', '.join(COMPARATORS)}, got {len(given)}")
    return given[0]


def _zero(rule: DataQuality, field: str, what: str) -> None:
    name, value = _threshold(rule, field)
    if [name, value] not in [["mustBe", 0], ["mustBeLessOrEqualTo", 0], ["mustBeLessThan", 1]]:
        raise ContractError(
            f"{field}.{name}",
            f"{what} with a threshold other than 0 has no Great Expectations form; write it as a @suite in code",
        )


def _row_count(rule: DataQuality, field: str) -> tuple[str, dict[str, Any]]:
    name, value = _threshold(rule, field)
    forms: dict[str, tuple[str, dict[str, Any]]] = {
        "mustBe": ("expect_table_row_count_to_equal", {"value": value}),
        "mustBeGreaterThan": ("expect_table_row_count_to_be_between", {"min_value": value, "strict_min": True}),
        "mustBeGreaterOrEqualTo": ("expect_table_row_count_to_be_between", {"min_value": value}),
        "mustBeLessThan": ("expect_table_row_count_to_be_between", {"max_value": value, "strict_max": True}),
        "mustBeLessOrEqualTo": ("expect_table_row_count_to_be_between", {"max_value": value}),
    }
    if name == "mustBeBetween" and isinstance(value, list) and len(value) == 2:
        return "expect_table_row_count_to_be_between", {"min_value": value[0], "max_value": value[1]}
    if name not in forms:
        raise ContractError(f"{field}.{name}", "a rowCount rule needs mustBe, mustBeBetween or one bound")
    return forms[name]


def from_library(rule: DataQuality, column: str | None, field: str) -> list[tuple[str, dict[str, Any]]]:
    """The expectations an ODCS library rule (nullValues, duplicateValues, ...) means."""
    metric = rule.metric or rule.rule
    arguments = rule.arguments or {}
    if metric == "rowCount" and column is None:
        return [_row_count(rule, field)]
    if metric == "duplicateValues" and column is None:
        names = arguments.get("properties")
        if not (isinstance(names, list) and names and all(isinstance(n, str) for n in names)):
            raise ContractError(f"{field}.arguments.properties", "duplicateValues on a schema names its properties")
        _zero(rule, field, "duplicateValues")
        return [("expect_compound_columns_to_be_unique", {"column_list": names})]
    if column is None:
        raise ContractError(
            f"{field}.metric", f"{metric!r} is not a schema-level rule the mesh knows (rowCount, duplicateValues)"
        )
    if metric == "nullValues":
        name, value = _threshold(rule, field)
        percent = (rule.unit or "").lower() in ("percent", "percentage", "%")
        if percent and name == "mustBeLessOrEqualTo" and isinstance(value, int | float) and 0 <= value <= 100:
            return [("expect_column_values_to_not_be_null", {"column": column, "mostly": round(1 - value / 100, 12)})]
        _zero(rule, field, "nullValues")
        return [("expect_column_values_to_not_be_null", {"column": column})]
    if metric == "duplicateValues":
        _zero(rule, field, "duplicateValues")
        return [("expect_column_values_to_be_unique", {"column": column})]
    if metric == "invalidValues":
        _zero(rule, field, "invalidValues")
        found = []
        if arguments.get("validValues") is not None:
            found.append(
                ("expect_column_values_to_be_in_set", {"column": column, "value_set": list(arguments["validValues"])})
            )
        if arguments.get("pattern") is not None:
            found.append(
                ("expect_column_values_to_match_regex", {"column": column, "regex": str(arguments["pattern"])})
            )
        if not found:
            raise ContractError(f"{field}.arguments", "invalidValues needs validValues or pattern")
        return found
    if metric == "missingValues":
        _zero(rule, field, "missingValues")
        values = [v for v in arguments.get("missingValues") or [] if v is not None]
        found = [("expect_column_values_to_not_be_null", {"column": column})]
        return found + (
            [("expect_column_values_to_not_be_in_set", {"column": column, "value_set": values})] if values else []
        )
    raise ContractError(
        f"{field}.metric",
        f"{metric!r} is not a metric the mesh knows "
        "(nullValues, missingValues, invalidValues, duplicateValues, rowCount)",
    )


def _native_fields(rule: DataQuality) -> dict[str, Any]:
    """What a rule checks, as its native form says it (for comparing with its greatExpectations property)."""
    keys = ("type", "metric", "arguments", "unit", "query", *COMPARATORS)
    dumped = rule.model_dump(exclude_none=True)
    return {k: dumped[k] for k in keys if k in dumped and not (k == "type" and dumped[k] == "library")}


def from_quality(rule: DataQuality, column: str | None, field: str) -> list[tuple[str, dict[str, Any]]]:
    """The expectations (type, kwargs) a quality rule stands for; [] for a `text` rule (documentation)."""
    kind = (rule.type or "library").lower()
    exported = _custom(rule, GX_PROPERTY)
    if exported is not None:
        type_, kwargs = _definition(exported, f"{field}.customProperties.{GX_PROPERTY}")
        native = native_form(type_, kwargs)
        if native is None or native[0] != column:
            raise ContractError(
                f"{field}.customProperties.{GX_PROPERTY}",
                f"{type_} is not what this rule checks; remove the property to import the rule as it is written",
            )
        if _native_fields(DataQuality(**({"type": "library"} | native[1]))) != _native_fields(rule):
            raise ContractError(
                field,
                f"the rule no longer says what its {GX_PROPERTY} custom property ({type_}) says: edit both, "
                "or remove the property to import the rule as it is written",
            )
        return [(type_, kwargs)]
    if kind == "text":
        return []
    if kind == "custom":
        if (rule.engine or "").lower() not in (GX_ENGINE, "greatexpectations", "great_expectations", "gx"):
            raise ContractError(f"{field}.engine", f"{rule.engine!r} rules cannot run in the mesh (only {GX_ENGINE})")
        return [_definition(rule.implementation, f"{field}.implementation")]
    if kind == "sql":
        raise ContractError(
            f"{field}.query",
            "an sql rule has no Great Expectations form the descriptor can hold; write it as a @suite in code",
        )
    if kind != "library":
        raise ContractError(f"{field}.type", f"{rule.type!r} is not an ODCS quality type (library, sql, custom, text)")
    if not (rule.metric or rule.rule):
        raise ContractError(f"{field}.metric", "a library rule names its metric")
    return from_library(rule, column, field)
