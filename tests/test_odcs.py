"""ODCS contracts in and out: every expectation's ODCS form counts what Great Expectations counts,
imports give back the expectations, a contract becomes a descriptor entry (and code) that validates,
bad documents and other teams' products are refused."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import duckdb
import jsonschema
import pytest
import yaml
from open_data_contract_standard.model import OpenDataContractStandard

from mesh_platform.checks.evaluate import run_contract
from mesh_platform.contracts.odcs_export import to_odcs, to_yaml
from mesh_platform.contracts.odcs_import import (
    ImportRefused,
    InvalidContract,
    from_yaml,
    governance_loosened,
    import_contract,
    read_contract,
)
from mesh_platform.contracts.odcs_quality import OBJECT, GxRule, from_quality, to_quality
from mesh_platform.descriptor.model import Column, Product
from mesh_platform.project.mesh import Mesh
from tests.conftest import ROOT, copy_project, mesh_env, run_mesh_cli
from tests.test_selfserve import _mesh, _problems, same_product

ODCS_SCHEMA = json.loads(OpenDataContractStandard.json_schema())

# a table with nulls, repeats and values at and past the bounds
ROWS = [
    # id, code, amount, score, label, starts, ends
    ("a", "x", 1, 0.5, "a@b", "2024-01-01", "2024-01-02"),
    ("b", "y", 4, 1.5, "ab", "2024-01-03", "2024-01-03"),
    ("c", "x", None, None, None, "2024-01-05", "2024-01-04"),
    ("d", None, 5, 2.5, "cd@e", None, "2024-01-06"),
    ("d", "z", 2, 9.5, "ef@g", "2024-01-07", None),
]
COLUMNS = [
    {"name": "id", "type": "string", "description": "id"},
    {"name": "code", "type": "string", "description": "code"},
    {"name": "amount", "type": "integer", "description": "amount"},
    {"name": "score", "type": "double", "description": "score"},
    {"name": "label", "type": "string", "description": "label"},
    {"name": "starts", "type": "date", "description": "starts"},
    {"name": "ends", "type": "date", "description": "ends"},
]
# (expectation type, kwargs): each native form is tried on a case that passes and one that fails
CASES: list[tuple[str, dict[str, Any]]] = [
    ("expect_column_values_to_not_be_null", {"column": "id"}),
    ("expect_column_values_to_not_be_null", {"column": "code"}),
    ("expect_column_values_to_not_be_null", {"column": "code", "mostly": 0.8}),
    ("expect_column_values_to_not_be_null", {"column": "code", "mostly": 0.9}),
    ("expect_column_values_to_be_unique", {"column": "code"}),
    ("expect_column_values_to_be_unique", {"column": "starts"}),
    ("expect_compound_columns_to_be_unique", {"column_list": ["id", "code"]}),
    ("expect_compound_columns_to_be_unique", {"column_list": ["id", "label"]}),
    ("expect_column_values_to_be_in_set", {"column": "code", "value_set": ["x", "y", "z"]}),
    ("expect_column_values_to_be_in_set", {"column": "code", "value_set": ["x", "y"]}),
    ("expect_column_values_to_be_in_set", {"column": "code", "value_set": ["x", "y"], "mostly": 0.75}),
    ("expect_column_values_to_be_in_set", {"column": "code", "value_set": ["x", "y"], "mostly": 0.8}),
    ("expect_column_values_to_match_regex", {"column": "label", "regex": "^[^@]+@[^@]+$"}),
    ("expect_column_values_to_match_regex", {"column": "label", "regex": "^[a-z]+"}),
    ("expect_table_row_count_to_be_between", {"min_value": 1, "max_value": 5}),
    ("expect_table_row_count_to_be_between", {"min_value": 6}),
    ("expect_table_row_count_to_equal", {"value": 5}),
    ("expect_table_row_count_to_equal", {"value": 4}),
    ("expect_column_values_to_be_between", {"column": "amount", "min_value": 1, "max_value": 5}),
    ("expect_column_values_to_be_between", {"column": "amount", "min_value": 1, "max_value": 5, "strict_max": True}),
    ("expect_column_values_to_be_between", {"column": "amount", "min_value": 2, "mostly": 0.75}),
    ("expect_column_values_to_be_between", {"column": "score", "max_value": 2.5, "mostly": 0.75}),
    ("expect_column_values_to_be_between", {"column": "starts", "min_value": "2024-01-01"}),
    ("expect_column_values_to_be_between", {"column": "starts", "max_value": "2024-01-05"}),
    ("expect_column_value_lengths_to_be_between", {"column": "label", "min_value": 2, "max_value": 4}),
    ("expect_column_value_lengths_to_be_between", {"column": "label", "min_value": 3}),
    ("expect_column_value_lengths_to_equal", {"column": "id", "value": 1}),
    ("expect_column_value_lengths_to_equal", {"column": "label", "value": 4}),
    ("expect_column_values_to_be_null", {"column": "code"}),
    ("expect_column_values_to_not_be_in_set", {"column": "code", "value_set": ["w"]}),
    ("expect_column_values_to_not_be_in_set", {"column": "code", "value_set": ["z"]}),
    ("expect_column_pair_values_a_to_be_greater_than_b", {"column_A": "ends", "column_B": "starts"}),
    ("expect_column_pair_values_a_to_be_greater_than_b", {"column_A": "ends", "column_B": "starts", "or_equal": True}),
    ("expect_column_pair_values_to_be_equal", {"column_A": "starts", "column_B": "ends"}),
    ("expect_column_min_to_be_between", {"column": "amount", "min_value": 1, "max_value": 2}),
    ("expect_column_min_to_be_between", {"column": "amount", "min_value": 2}),
    ("expect_column_max_to_be_between", {"column": "score", "max_value": 9.5}),
    ("expect_column_max_to_be_between", {"column": "score", "max_value": 9.5, "strict_max": True}),
    ("expect_column_mean_to_be_between", {"column": "amount", "min_value": 3, "max_value": 3}),
    ("expect_column_sum_to_be_between", {"column": "amount", "min_value": 13}),
    ("expect_column_unique_value_count_to_be_between", {"column": "code", "min_value": 3, "max_value": 3}),
    ("expect_column_proportion_of_unique_values_to_be_between", {"column": "id", "min_value": 0.9}),
    ("expect_column_proportion_of_non_null_values_to_be_between", {"column": "code", "min_value": 0.8}),
    ("expect_column_distinct_values_to_be_in_set", {"column": "code", "value_set": ["x", "y", "z"]}),
    ("expect_column_distinct_values_to_be_in_set", {"column": "code", "value_set": ["x", "y"]}),
]
THRESHOLDS = {
    "mustBe": lambda v, t: v == t,
    "mustBeGreaterThan": lambda v, t: v is not None and v > t,
    "mustBeGreaterOrEqualTo": lambda v, t: v is not None and v >= t,
    "mustBeLessThan": lambda v, t: v is not None and v < t,
    "mustBeLessOrEqualTo": lambda v, t: v is not None and v <= t,
    "mustBeBetween": lambda v, t: v is not None and t[0] <= v <= t[1],
}


def _table() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute(
        "create table main.cases (id varchar, code varchar, amount integer, score double, label varchar, "
        "starts date, ends date)"
    )
    con.executemany("insert into main.cases values (?, ?, ?, ?, ?, ?, ?)", ROWS)
    return con


def _sql_verdict(con: duckdb.DuckDBPyConnection, quality: Any) -> bool:
    """What an ODCS tool concludes from an `sql` rule: the query's value against its threshold."""
    (value,) = con.execute(quality.query.replace(OBJECT, "main.cases")).fetchone()
    (name, threshold), *_ = [(k, getattr(quality, k)) for k in THRESHOLDS if getattr(quality, k) is not None]
    return THRESHOLDS[name](value, threshold)


def test_every_native_sql_form_concludes_what_great_expectations_concludes() -> None:
    con = _table()
    product = Product.model_validate(
        {
            "name": "cases",
            "description": "cases",
            "value": "cases",
            "columns": COLUMNS,
            "expectations": [{"type": t, "kwargs": kw} for t, kw in CASES],
        }
    )
    outcomes = run_contract(con, product)[1:]  # the schema contract first
    verdicts = {True: 0, False: 0}
    for (type_, kwargs), outcome in zip(CASES, outcomes, strict=True):
        rule = to_quality(GxRule(outcome.name, type_, kwargs, "error"))
        assert rule.native, (type_, kwargs)
        jsonschema.validate(
            rule.quality.model_dump(exclude_none=True, by_alias=True),
            ODCS_SCHEMA["$defs"]["DataQuality"] | {"$defs": ODCS_SCHEMA["$defs"]},
        )
        if rule.quality.type == "sql":
            assert _sql_verdict(con, rule.quality) == outcome.passed, (
                type_,
                kwargs,
                rule.quality.query,
                outcome.summary,
            )
        verdicts[outcome.passed] += 1
        # and back: importing the rule gives the expectation again
        assert from_quality(rule.quality, rule.column, "rule") == [(type_, kwargs)]
    assert verdicts[True] >= 15 and verdicts[False] >= 15, verdicts  # the cases test both outcomes


def test_an_expectation_without_a_native_form_is_a_listed_great_expectations_rule() -> None:
    descriptor = _mesh(ROOT).descriptors["pharmacy"]
    product = descriptor.product("sites").model_copy(deep=True)
    product.expectations.append(
        product.expectations[0].model_copy(
            update={"type": "expect_column_values_to_be_dateutil_parseable", "kwargs": {"column": "site_name"}}
        )
    )
    doc = to_odcs(descriptor, product)
    (custom,) = [q for p in doc.schema_[0].properties for q in p.quality or [] if q.type == "custom"]
    assert custom.engine == "great-expectations" and custom.id == "column_values_to_be_dateutil_parseable__site_name"
    assert custom.implementation == {
        "type": "expect_column_values_to_be_dateutil_parseable",
        "kwargs": {"column": "site_name"},
    }
    assert "column_values_to_be_dateutil_parseable__site_name" in doc.description.limitations
    assert "datacontract-cli do not" in doc.description.limitations
    assert same_product(from_yaml(doc.to_yaml()).product, product)  # and it comes back
    # every other rule is native: no limitations to list
    assert to_odcs(descriptor, descriptor.product("sites")).description.limitations is None


# --- import: a contract becomes a descriptor entry ------------------------------------------------------


def export(mesh: Mesh, ref: str) -> dict[str, Any]:
    from mesh_platform.contracts.odcs_export import product_suites

    descriptor, product = mesh.product(ref)
    return yaml.safe_load(to_yaml(descriptor, product, product_suites(mesh, descriptor.domain, product.name)))


def semantic(doc: dict[str, Any]) -> dict[str, Any]:
    """A contract without what names or places it (id, domain, servers) and without rule ids and texts,
    its rules in a stable order: two contracts that check the same product the same way are equal."""

    def rules(items: list[dict[str, Any]] | None) -> list[str]:
        kept = []
        for rule in items or []:
            rule = {k: v for k, v in rule.items() if k not in ("id", "description")}
            props = [p for p in rule.pop("customProperties", []) if p["property"] != "meshSuite"]
            kept.append(json.dumps({**rule, "customProperties": props}, sort_keys=True))
        return sorted(kept)

    doc = {k: v for k, v in doc.items() if k not in ("id", "domain", "servers")}
    schema = dict(doc.pop("schema")[0])
    schema["quality"] = rules(schema.get("quality"))
    schema["properties"] = [{**p, "quality": rules(p.get("quality"))} for p in schema["properties"]]
    return {**doc, "schema": schema}


def _write(path: Path, doc: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def test_every_product_round_trips_through_a_fresh_domain(project: Path, tmp_path: Path) -> None:
    """export -> import as a new domain (its code scaffolded) -> validate -> export: the same contract."""
    refs = [f"{d.domain}.{p.name}" for d, p in _mesh(project).products()]
    assert len(refs) == 9
    for ref in refs:
        domain, name = ref.split(".")
        doc = export(_mesh(project), ref)
        doc |= {"domain": f"{domain}_copy", "id": f"{domain}_copy.{name}"}
        contracted = read_contract(_write(tmp_path / f"{ref}.yaml", doc), f"{ref}.yaml")
        imported = import_contract(_mesh(project), contracted, f"{ref}.yaml")
        assert imported.action == "created", imported
        assert f"domains/{domain}_copy/assets.py" in imported.created + imported.changed, imported
        again = export(_mesh(project), f"{domain}_copy.{name}")
        assert semantic(again) == semantic(doc), ref
    assert _problems(project) == []


def test_a_suites_rules_stay_with_the_code_that_defines_them(project: Path, tmp_path: Path) -> None:
    doc = export(_mesh(project), "scheduling.appointments")
    suite_rules = [q for q in doc["schema"][0]["quality"] if q["id"].startswith("suite__appointment_lifecycle")]
    assert suite_rules and all(
        {"property": "meshSuite", "value": "appointment_lifecycle"} in q["customProperties"] for q in suite_rules
    )
    before = (project / "domains/scheduling/domain.yaml").read_text()
    contracted = read_contract(_write(tmp_path / "a.yaml", doc), "a.yaml")
    imported = import_contract(_mesh(project), contracted, "a.yaml")
    # scheduling's code defines the suite: importing its own contract changes nothing
    assert imported.action == "unchanged" and any("left to the domain's code" in n for n in imported.notes)
    assert (project / "domains/scheduling/domain.yaml").read_text() == before


def test_updating_a_product_replaces_its_entry_and_keeps_the_rest_of_the_file(project: Path, tmp_path: Path) -> None:
    path = project / "domains/pharmacy/domain.yaml"
    text = path.read_text().replace("products:\n", "products:  # the pharmacy's products\n")
    text = text.replace("  - name: vaccine_stock\n", "  # stock by lot\n  - name: vaccine_stock\n")
    path.write_text(text)
    doc = export(_mesh(project), "pharmacy.sites")
    doc["schema"][0]["description"] = "Every site of the pharmacy network."
    site_name = next(p for p in doc["schema"][0]["properties"] if p["name"] == "site_name")
    site_name["quality"] = [{"type": "library", "metric": "nullValues", "mustBe": 0, "severity": "warning"}]
    site_name["classification"] = "internal"
    imported = import_contract(_mesh(project), read_contract(_write(tmp_path / "s.yaml", doc), "s.yaml"), "s.yaml")
    assert imported.action == "updated" and imported.changed == ["domains/pharmacy/domain.yaml"]
    after = path.read_text()
    lines, new_lines = text.splitlines(), after.splitlines()
    start = lines.index("  - name: sites")
    end = lines.index("  # stock by lot")
    assert new_lines[:start] == lines[:start] and new_lines[-(len(lines) - end) :] == lines[end:]
    sites = _mesh(project).descriptors["pharmacy"].product("sites")
    assert sites.description == "Every site of the pharmacy network."
    assert sites.column("site_name").classification == "internal"
    assert {
        "type": "expect_column_values_to_not_be_null",
        "kwargs": {"column": "site_name"},
        "severity": "warn",
    } in [e.model_dump() for e in sites.expectations]
    assert len(sites.expectations) == 3
    assert _problems(project) == []
    # the same contract again: nothing to write
    again = import_contract(_mesh(project), read_contract(tmp_path / "s.yaml", "s.yaml"), "s.yaml")
    assert again.action == "unchanged" and path.read_text() == after


def test_a_contract_written_elsewhere_becomes_expectations(project: Path, tmp_path: Path) -> None:
    """A team's own contract, with ODCS's library rules, flags and a text rule, and no mesh extras."""
    doc = {
        "apiVersion": "v3.1.0",
        "kind": "DataContract",
        "id": "orders-contract",
        "version": "2.3.1",
        "status": "draft",
        "domain": "fulfilment",
        "team": {"name": "fulfilment"},
        "description": {"purpose": "Which orders to ship today.", "usage": "Orders, one row each."},
        "slaProperties": [{"property": "latency", "value": 30, "unit": "minutes"}],
        "roles": [{"role": "consumer:site_operations", "access": "read"}, {"role": "analyst", "access": "read"}],
        "schema": [
            {
                "name": "orders",
                "properties": [
                    {"name": "order_id", "logicalType": "string", "description": "Order", "primaryKey": True},
                    {"name": "email", "physicalType": "text", "description": "Buyer", "classification": "PII"},
                    {
                        "name": "quantity",
                        "physicalType": "INTEGER",
                        "description": "Items",
                        "logicalTypeOptions": {"minimum": 1, "maximum": 99},
                    },
                    {
                        "name": "state",
                        "logicalType": "string",
                        "description": "Where it is",
                        "quality": [
                            {"metric": "invalidValues", "arguments": {"validValues": ["new", "sent"]}, "mustBe": 0},
                            {"type": "text", "description": "sent orders stay sent"},
                        ],
                    },
                    {"name": "placed_at", "physicalType": "timestamp without time zone", "description": "When"},
                ],
                "quality": [{"metric": "rowCount", "mustBeGreaterThan": 0, "severity": "warning"}],
            }
        ],
    }
    contracted = read_contract(_write(tmp_path / "orders.yaml", doc), "orders.yaml")
    product = contracted.product
    assert contracted.owner == "team:fulfilment" and product.freshness == "30m"
    assert [(c.name, c.type, c.classification) for c in product.columns] == [
        ("order_id", "string", "internal"),
        ("email", "string", "pii"),
        ("quantity", "integer", "internal"),
        ("state", "string", "internal"),
        ("placed_at", "timestamp", "internal"),
    ]
    assert {(e.type, json.dumps(e.kwargs), e.severity) for e in product.expectations} == {
        ("expect_column_values_to_be_in_set", '{"column": "state", "value_set": ["new", "sent"]}', "error"),
        ("expect_table_row_count_to_be_between", '{"min_value": 0, "strict_min": true}', "warn"),
        ("expect_column_values_to_not_be_null", '{"column": "order_id"}', "error"),
        ("expect_column_values_to_be_unique", '{"column": "order_id"}', "error"),
        ("expect_column_values_to_be_between", '{"column": "quantity", "min_value": 1, "max_value": 99}', "error"),
    }
    assert product.access.consumers == ["site_operations"]
    assert any("'analyst'" in n for n in contracted.notes) and any("text rule" in n for n in contracted.notes)
    imported = import_contract(_mesh(project), contracted, "orders.yaml")
    assert imported.action == "created" and "domains/fulfilment/domain.yaml" in imported.created
    assert _problems(project) == []
    assets = (project / "domains/fulfilment/assets.py").read_text()
    assert '@product("orders")' in assets and "'new'" in assets and "cast(c3 as INTEGER)" in assets


def _gx_rule(kwargs: dict[str, Any]) -> dict[str, Any]:
    implementation = {"type": "expect_column_values_to_be_between", "kwargs": kwargs}
    return {"type": "custom", "engine": "great-expectations", "implementation": implementation}


@pytest.mark.parametrize(
    ("change", "where", "message"),
    [
        (lambda d: d.update(apiVersion="v2.2.2"), ":3: apiVersion:", "not an ODCS 3.x data contract"),
        (lambda d: d.update(kind="DataProduct"), ":2: kind:", "not an ODCS 3.x data contract"),
        (lambda d: d.pop("domain"), ": domain:", "missing"),
        (lambda d: d.update(domain="Pharmacy Two"), ": domain:", "is not valid"),
        (lambda d: d["schema"].append(d["schema"][0]), ": schema:", "exactly one schema object, got 2"),
        (
            lambda d: d["schema"][0]["properties"][1].update(physicalType="GEOMETRY"),
            "properties[1].physicalType:",
            "'GEOMETRY' is not a column type",
        ),
        (
            lambda d: d["schema"][0]["properties"][1].update(physicalType=None, logicalType="array"),
            "properties[1].logicalType:",
            "'array' has no column type",
        ),
        (
            lambda d: d["schema"][0]["properties"][1].update(physicalType="INTEGER"),
            "properties[1].logicalType:",
            "contradicts physicalType",
        ),
        (lambda d: d["schema"][0]["properties"][2].pop("description"), "properties[2].description:", "missing"),
        (
            lambda d: d["schema"][0]["properties"][2].update(classification="secret"),
            "properties[2].classification:",
            "'secret' is not one of",
        ),
        (lambda d: d["description"].pop("purpose"), ": description.purpose:", "missing"),
        (lambda d: d.update(team={"name": "Pharmacy Ops"}), ": team.name:", "is not a Dagster owner"),
        (lambda d: d.update(id="pharmacy.other"), ": id:", "names another product"),
        (lambda d: d["slaProperties"][0].update(unit="fortnights"), "slaProperties[0].unit:", "not a latency unit"),
        (
            lambda d: d["schema"][0]["properties"][0]["quality"][0].update(severity="urgent"),
            "quality[0].severity:",
            "'urgent' is not a severity",
        ),
        (
            lambda d: d["schema"][0]["properties"][0]["quality"][0].update(mustBe=3),
            "properties[0].quality[0]:",
            "no longer says what its greatExpectations",
        ),
        (
            lambda d: d["schema"][0]["properties"][4].update(
                quality=[{"type": "sql", "query": "select 1", "mustBe": 1}]
            ),
            "properties[4].quality[0].query:",
            "an sql rule has no Great Expectations form",
        ),
        (
            lambda d: d["schema"][0]["properties"][4].update(quality=[{"metric": "nullValues", "mustBe": 5}]),
            "properties[4].quality[0].mustBe:",
            "threshold other than 0",
        ),
        (
            lambda d: d["schema"][0].update(quality=[_gx_rule({"column": "nope", "min_value": 1})]),
            "schema[0].quality[0]:",
            "names column 'nope'",
        ),
        (
            lambda d: d["schema"][0].update(quality=[_gx_rule({"column": "zip", "min_value": 1, "max_valu": 2})]),
            "schema[0].quality[0]:",
            "Great Expectations refuses",
        ),
        (
            lambda d: d["schema"][0].update(
                quality=[{"type": "custom", "engine": "soda", "implementation": "checks: []"}]
            ),
            "schema[0].quality[0].engine:",
            "'soda' rules cannot run",
        ),
        # a version read as none would take the product's declared version away
        (lambda d: d.update(version="v2.1.0-final"), ": version:", "'v2.1.0-final' is not a version"),
        (
            lambda d: d["schema"][0].update(
                quality=[
                    {
                        "type": "custom",
                        "engine": "great-expectations",
                        "implementation": {
                            "type": "expect_column_values_to_be_in_set",
                            "kwargs": {"column": "zip", "value_set": [{"a": 1}, [1, 2]]},
                        },
                    }
                ]
            ),
            "schema[0].quality[0]:",
            "value_set must be a list of values",
        ),
    ],
)
def test_a_bad_document_is_named_by_file_line_and_field(tmp_path: Path, change, where: str, message: str) -> None:
    doc = export(_mesh(ROOT), "pharmacy.sites")
    change(doc)
    with pytest.raises(InvalidContract) as caught:
        read_contract(_write(tmp_path / "bad.yaml", doc), "bad.yaml")
    text = str(caught.value)
    assert text.startswith("bad.yaml:") and where in text and message in text and "\n" not in text, text


def test_unreadable_documents_are_refused_before_they_are_built(tmp_path: Path) -> None:
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
        for p, c in zip("abcdefgh", "bcdefghi", strict=True)
    )
    for text, rule in (
        (bomb, "[alias-expansion]"),
        ("kind: DataContract\nkind: DataContract\n", "[duplicate-key]"),
        ("[a, b", "[yaml]"),
        ("- just\n- a list\n", "not a YAML mapping"),
        ('kind: DataContract\ndescription: {purpose: "a\\0b"}\n', "[nul-character]"),  # no code or SQL holds one
    ):
        path = tmp_path / "doc.yaml"
        path.write_text(text)
        with pytest.raises(InvalidContract, match=re.escape(rule)):
            read_contract(path, "doc.yaml")


def test_another_teams_product_or_domain_is_refused_and_nothing_is_written(project: Path, tmp_path: Path) -> None:
    before = {p: p.read_text() for p in (project / "domains").rglob("*") if p.is_file()}
    doc = export(_mesh(project), "pharmacy.sites")
    doc["team"] = {"name": "intruders"}
    contracted = read_contract(_write(tmp_path / "s.yaml", doc), "s.yaml")
    with pytest.raises(ImportRefused, match=r"owned by team:pharmacy-ops; the contract names team:intruders"):
        import_contract(_mesh(project), contracted, "s.yaml")
    doc["schema"][0]["name"], doc["id"], doc["dataProduct"] = "sites_copy", "pharmacy.sites_copy", "sites_copy"
    contracted = read_contract(_write(tmp_path / "n.yaml", doc), "n.yaml")
    with pytest.raises(ImportRefused, match=r"domain pharmacy is owned by team:pharmacy-ops"):
        import_contract(_mesh(project), contracted, "n.yaml")
    assert {p: p.read_text() for p in (project / "domains").rglob("*") if p.is_file()} == before


def test_a_contract_never_loosens_masking_or_access_and_nothing_is_written(project: Path, tmp_path: Path) -> None:
    """An imported contract cannot unmask another team's product (its owner is only a name in the
    file): a pii column made public or masked by a policy that shows more, a consumer or pii reader
    added, are refused, whatever the version says. Tightening goes through."""
    before = {p: p.read_text() for p in (project / "domains").rglob("*") if p.is_file()}
    original = export(_mesh(project), "patients.patient_accounts")
    pii = [p for p in original["schema"][0]["properties"] if p.get("classification") == "pii"]

    def opened(change, expected: str) -> None:
        doc = copy.deepcopy(original)
        change(doc)
        doc["version"] = "9.0.0"  # a new major does not make it any less open
        contracted = read_contract(_write(tmp_path / "open.yaml", doc), "open.yaml")
        with pytest.raises(ImportRefused, match=re.escape(expected)) as caught:
            import_contract(_mesh(project), contracted, "open.yaml")
        assert "never loosens masking or access" in str(caught.value)

    def made_public(doc: dict[str, Any]) -> None:
        doc["schema"][0]["properties"][1]["classification"] = "public"
        doc["schema"][0]["properties"][1].pop("customProperties", None)

    opened(made_public, f"column {pii[0]['name']}: pii")
    opened(
        lambda d: d["roles"].append({"role": "consumer:site_operations", "access": "read"}),
        "consumers site_operations added",
    )
    opened(
        lambda d: d["roles"].append({"role": "pii_reader:patient_360", "access": "read"}),
        "pii_readers patient_360 added",
    )
    assert {p: p.read_text() for p in (project / "domains").rglob("*") if p.is_file()} == before
    tighter = copy.deepcopy(original)
    for prop in tighter["schema"][0]["properties"]:
        if prop.get("classification") == "pii":
            prop["customProperties"] = [{"property": "mask", "value": "null"}]
    contracted = read_contract(_write(tmp_path / "tight.yaml", tighter), "tight.yaml")
    assert import_contract(_mesh(project), contracted, "tight.yaml").action == "updated"
    product = _mesh(project).descriptors["patients"].product("patient_accounts")
    assert {c.mask for c in product.columns if c.classification == "pii"} == {"null"}
    everyone = product.model_copy(update={"access": product.access.model_copy(update={"consumers": ["*"]})})
    named = everyone.model_copy(update={"access": everyone.access.model_copy(update={"consumers": ["*", "x"]})})
    assert governance_loosened(everyone, named) == []  # granted to every domain already


def test_a_pii_column_dropped_by_one_import_cannot_come_back_public_in_the_next(project: Path, tmp_path: Path) -> None:
    """Dropping a pii column (a breaking change a major allows) and adding it back public in a
    second import would unmask what the product's code still selects: a column any kept published
    version masked is held to that mask, whether a run published the drop in between or not."""
    from mesh_platform.contracts.snapshot import contract_snapshot
    from mesh_platform.project.locations import MeshHome
    from mesh_platform.storage.product_store import Build, ProductStore

    mesh = _mesh(project)
    store, home = ProductStore(MeshHome(tmp_path / "home")), tmp_path / "home"

    def publish() -> None:  # a version of patient_accounts as the descriptor now declares it
        now = _mesh(project).descriptors["patients"]
        product = now.product("patient_accounts")
        con = duckdb.connect()
        con.execute("create table t as select 1 as x")
        store.publish(
            con, "patients", "patient_accounts", Build("t", staging=home), "run", contract_snapshot(now, product)
        )
        con.close()

    home.mkdir(parents=True, exist_ok=True)
    publish()
    original = export(mesh, "patients.patient_accounts")
    properties = original["schema"][0]["properties"]
    email = next(p for p in properties if p["name"] == "email")
    dropped = copy.deepcopy(original)
    dropped["schema"][0]["properties"] = [p for p in properties if p["name"] != "email"]
    dropped["version"] = "2.0.0"
    contracted = read_contract(_write(tmp_path / "drop.yaml", dropped), "drop.yaml")
    assert import_contract(_mesh(project), contracted, "drop.yaml").action == "updated"
    assert "email" not in {c.name for c in _mesh(project).descriptors["patients"].product("patient_accounts").columns}
    back = copy.deepcopy(dropped)
    back["schema"][0]["properties"].append({**email, "classification": "public", "customProperties": []})
    back["version"] = "3.0.0"
    for published_in_between in (False, True):
        if published_in_between:
            publish()  # the version without email is current now; an older one masked it
        before = (project / "domains/patients/domain.yaml").read_text()
        contracted = read_contract(_write(tmp_path / "back.yaml", back), "back.yaml")
        with pytest.raises(ImportRefused, match=r"column email: pii masked by \w+ in a published version -> public"):
            import_contract(_mesh(project), contracted, "back.yaml")
        assert (project / "domains/patients/domain.yaml").read_text() == before
    index = home / "products/patients/patient_accounts/versions.json"
    intact = index.read_text()
    data = json.loads(intact)
    data["versions"][0]["written_by_a_later_release"] = True  # read as before: the history still holds
    index.write_text(json.dumps(data))
    with pytest.raises(ImportRefused, match=r"in a published version"):
        import_contract(_mesh(project), contracted, "back.yaml")
    index.write_text(intact[:100])  # damaged: what the versions masked is not known, so nothing opens
    with pytest.raises(ImportRefused, match=r"published versions of patients.patient_accounts cannot be read"):
        import_contract(_mesh(project), contracted, "back.yaml")
    assert (project / "domains/patients/domain.yaml").read_text() == before
    for verb in (
        ["versions", "patients.patient_accounts"],
        ["read", "patients.patient_accounts", "--as", "patients", "--at", "2099-01-01"],
    ):
        proc = run_mesh_cli(*verb, env=mesh_env(project, home), cwd=project)
        assert proc.returncode == 1 and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr
        assert "versions.json is damaged (JSONDecodeError" in proc.stderr
    index.write_text(intact)
    masked = copy.deepcopy(back)
    masked["schema"][0]["properties"][-1] = email  # back as pii, as masked as before: that is no loosening
    contracted = read_contract(_write(tmp_path / "masked.yaml", masked), "masked.yaml")
    assert import_contract(_mesh(project), contracted, "masked.yaml").action == "updated"


def test_an_older_contract_or_a_file_with_shared_anchors_is_refused_in_one_line(project: Path, tmp_path: Path) -> None:
    path = project / "domains/pharmacy/domain.yaml"
    doc = export(_mesh(project), "pharmacy.sites")
    path.write_text(path.read_text().replace("  - name: sites\n", '  - name: sites\n    version: "2.1"\n', 1))
    contracted = read_contract(_write(tmp_path / "old.yaml", doc), "old.yaml")  # exported at 1.0.0
    with pytest.raises(ImportRefused, match=r"pharmacy.sites is at version 2.1; the contract is 1.0, older"):
        import_contract(_mesh(project), contracted, "old.yaml")
    # sites' site_id anchored, and vaccine_stock's site_id the same column through an alias
    sites_id, stock_id = [line for line in path.read_text().splitlines() if "{name: site_id" in line][:2]
    anchored = path.read_text().replace(sites_id, sites_id.replace("{name: site_id", "&site {name: site_id"), 1)
    path.write_text(anchored.replace(stock_id, stock_id.split("{")[0] + "*site", 1))
    assert not _mesh(project).problems_for("pharmacy") and "*site" in path.read_text()
    doc["version"], doc["description"]["purpose"] = "2.1.0", "Decides where to send stock."
    contracted = read_contract(_write(tmp_path / "anchors.yaml", doc), "anchors.yaml")
    with pytest.raises(ImportRefused, match=r"uses YAML anchors or aliases across entries: edit the entry by hand"):
        import_contract(_mesh(project), contracted, "anchors.yaml")


def test_import_contract_cli_exit_status_and_one_line_errors(tmp_path: Path) -> None:
    root = copy_project(tmp_path / "project")
    env = mesh_env(root, tmp_path / "home")
    doc = export(_mesh(ROOT), "pharmacy.sites")
    doc["schema"][0]["properties"][3]["physicalType"] = "GEOMETRY"
    proc = run_mesh_cli("import-contract", str(_write(tmp_path / "bad.yaml", doc)), env=env, cwd=root)
    assert proc.returncode == 2 and not proc.stdout, proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert re.match(r"error: .*bad\.yaml:\d+: schema\[0\]\.properties\[3\]\.physicalType: 'GEOMETRY'", proc.stderr)
    doc["schema"][0]["properties"][3]["physicalType"] = "VARCHAR"
    doc["team"] = {"name": "intruders"}
    proc = run_mesh_cli("import-contract", str(_write(tmp_path / "other.yaml", doc)), env=env, cwd=root)
    assert proc.returncode == 1 and "owned by team:pharmacy-ops" in proc.stderr and "nothing was written" in proc.stderr
    assert proc.stderr.count("\n") == 1
    proc = run_mesh_cli("import-contract", str(tmp_path / "missing.yaml"), env=env, cwd=root)
    assert proc.returncode == 2 and "no such file" in proc.stderr
    # a contract written over the platform's own data (its keys, warehouses, audit log): refused
    run_mesh_cli("products", env=env, cwd=root, check=True)  # MESH_HOME and its masking key exist
    key = tmp_path / "home" / "masking.key"
    kept = key.read_bytes() if key.exists() else None
    proc = run_mesh_cli("export-contract", "pharmacy.sites", "-o", str(key), env=env, cwd=root)
    assert proc.returncode == 2 and "inside MESH_HOME" in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr
    assert (key.read_bytes() if key.exists() else None) == kept
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    proc = run_mesh_cli("export-contract", "pharmacy.sites", "-o", str(tmp_path / "loop" / "c.yaml"), env=env, cwd=root)
    assert proc.returncode in (1, 2) and proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr


def test_a_new_product_in_a_dbt_domain_is_a_dbt_model_with_its_contract(project: Path, tmp_path: Path) -> None:
    doc = export(_mesh(project), "patients.patient_consent")
    doc["schema"][0]["name"], doc["id"] = "consent_copy", "patients.consent_copy"
    doc["name"] = doc["dataProduct"] = "consent_copy"
    contracted = read_contract(_write(tmp_path / "c.yaml", doc), "c.yaml")
    imported = import_contract(_mesh(project), contracted, "c.yaml")
    marts = "dbt_projects/patients/models/marts"
    assert imported.action == "created" and imported.created == [
        f"{marts}/consent_copy.sql",
        f"{marts}/consent_copy.yml",
    ]
    manifest = json.loads((project / "dbt_projects/patients/target/manifest.json").read_text())
    model = manifest["nodes"]["model.patients.consent_copy"]
    assert model["config"]["contract"]["enforced"] is True
    assert {c: v["data_type"] for c, v in model["columns"].items()} == {
        "patient_id": "text",
        "consent_research": "boolean",
        "consent_marketing": "boolean",
        "recorded_at": "timestamp",
    }
    assert _problems(project) == []
    assert semantic(export(_mesh(project), "patients.consent_copy")) == semantic(doc)


@pytest.mark.skipif("version" not in Product.model_fields, reason="the descriptor declares no product versions")
def test_the_products_version_is_the_contracts_and_back(project: Path, tmp_path: Path) -> None:
    doc = export(_mesh(project), "pharmacy.sites")
    assert doc["version"] == "1.0.0"  # a product without a version is at 1.0
    doc |= {"domain": "site_registry", "id": "site_registry.sites", "version": "2.1.0"}
    import_contract(_mesh(project), read_contract(_write(tmp_path / "s.yaml", doc), "s.yaml"), "s.yaml")
    assert _mesh(project).descriptors["site_registry"].product("sites").version == "2.1"
    assert 'version: "2.1"' in (project / "domains/site_registry/domain.yaml").read_text().replace("'", '"')
    assert export(_mesh(project), "site_registry.sites")["version"] == "2.1.0"
    # the owner's own export, imported again, changes nothing (1.0.0 is a product without a version)
    own = export(_mesh(project), "pharmacy.vaccine_stock")
    contracted = read_contract(_write(tmp_path / "v.yaml", own), "v.yaml")
    assert import_contract(_mesh(project), contracted, "v.yaml").action == "unchanged"


@pytest.mark.skipif("derived_from" not in Column.model_fields, reason="the descriptor declares no column lineage")
def test_an_update_keeps_what_a_contract_cannot_say(project: Path, tmp_path: Path) -> None:
    path = project / "domains/site_operations/domain.yaml"
    declared = "{name: site_id, type: string, description: Site identifier, classification: public}"
    lineage = declared[:-1] + ", derived_from: [pharmacy.sites.site_id]}"
    path.write_text(path.read_text().replace(declared, lineage))
    doc = export(_mesh(project), "site_operations.site_daily_capacity")
    doc["description"]["purpose"] = "Decides staffing per site and day."
    imported = import_contract(_mesh(project), read_contract(_write(tmp_path / "c.yaml", doc), "c.yaml"), "c.yaml")
    assert imported.action == "updated"
    product = _mesh(project).descriptors["site_operations"].product("site_daily_capacity")
    assert product.value == "Decides staffing per site and day."
    assert product.column("site_id").derived_from == ["pharmacy.sites.site_id"]
