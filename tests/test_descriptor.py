"""Descriptor validation: each rule, with a bad file each, names file, field and rule."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from mesh_platform.descriptor.expectations import EXPECTATION_TYPES
from mesh_platform.descriptor.schema import SCHEMA_PATH, descriptor_json_schema
from mesh_platform.project.locations import MeshProject
from mesh_platform.project.mesh import Mesh
from tests.conftest import ROOT, mesh_env, run_mesh_cli


def _edit(project: Path, domain: str, change) -> None:
    path = project / "domains" / domain / "domain.yaml"
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def _problems(project: Path) -> list:
    return Mesh.load(MeshProject.discover(project)).problems


def _validate_refuses(project: Path, tmp_path: Path, rule: str) -> list[dict]:
    """`mesh validate --json` fails without a traceback; its problems of `rule`."""
    proc = run_mesh_cli("validate", "--json", env=mesh_env(project, tmp_path / "home"), cwd=project)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    return [p for p in json.loads(proc.stdout)["problems"] if p["rule"] == rule]


def _only(problems: list, rule: str):
    matching = [p for p in problems if p.rule == rule]
    assert matching, f"no {rule} problem in {[str(p) for p in problems]}"
    return matching[0]


def test_shipped_descriptors_are_valid(project: Path) -> None:
    assert _problems(project) == []


def test_missing_owner(project: Path) -> None:
    _edit(project, "pharmacy", lambda d: d.pop("owner"))
    problem = _only(_problems(project), "required")
    assert (problem.file, problem.field) == ("domains/pharmacy/domain.yaml", "owner")


def test_bad_owner_format(project: Path) -> None:
    _edit(project, "pharmacy", lambda d: d.update(owner="pharmacy people"))
    assert _only(_problems(project), "owner-format").field == "owner"


def test_empty_value_statement(project: Path) -> None:
    _edit(project, "pharmacy", lambda d: d["products"][1].update(value="   "))
    problem = _only(_problems(project), "not-empty")
    assert problem.field == "products[1].value"
    assert problem.line is not None


def test_unknown_column_in_expectation(project: Path) -> None:
    def change(d):
        d["products"][0]["expectations"].append(
            {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "site_code"}, "severity": "error"}
        )

    _edit(project, "pharmacy", change)
    problem = _only(_problems(project), "expectation-column")
    assert problem.field == "products[0].expectations[2].kwargs"
    assert "site_code" in problem.message


def test_unknown_expectation_type(project: Path) -> None:
    def change(d):
        d["products"][0]["expectations"][0]["type"] = "expect_sites_to_be_nice"

    _edit(project, "pharmacy", change)
    problem = _only(_problems(project), "expectation-type")
    assert problem.field == "products[0].expectations[0].type"


def test_consume_of_missing_product(project: Path) -> None:
    _edit(project, "site_operations", lambda d: d["consumes"].append("pharmacy.staff_rota"))
    problem = _only(_problems(project), "consume-exists")
    assert problem.file == "domains/site_operations/domain.yaml"
    assert problem.field == "consumes[4]"


def test_consume_not_granted_names_both_files(project: Path) -> None:
    _edit(project, "pharmacy", lambda d: d["products"][0]["access"].update(consumers=["immunizations"]))
    problem = _only(_problems(project), "access-granted")
    assert problem.file == "domains/site_operations/domain.yaml"
    assert "domains/pharmacy/domain.yaml" in problem.message
    assert "products[0].access.consumers" in problem.message


def test_cycle_between_domains(project: Path) -> None:
    _edit(project, "pharmacy", lambda d: d.update(consumes=["immunizations.administered_doses"]))
    _edit(project, "immunizations", lambda d: d["products"][0]["access"]["consumers"].append("pharmacy"))
    problem = _only(_problems(project), "no-cycles")
    assert re.search(
        r"immunizations -> pharmacy -> immunizations|pharmacy -> immunizations -> pharmacy", problem.message
    )


def test_malformed_yaml_names_the_line(project: Path) -> None:
    path = project / "domains" / "scheduling" / "domain.yaml"
    path.write_text(path.read_text().replace("products:", "products: [", 1))
    problems = _problems(project)
    problem = _only(problems, "yaml")
    assert problem.file == "domains/scheduling/domain.yaml" and problem.line
    # consumers of the broken domain are told why, other domains are untouched
    assert {p.domain for p in problems} == {"scheduling", "patient_360", "site_operations"}


def test_every_problem_reported_at_once(project: Path) -> None:
    _edit(project, "pharmacy", lambda d: d.pop("owner"))
    _edit(project, "patients", lambda d: d["products"][0].update(value=""))
    rules = {p.rule for p in _problems(project)}
    assert {"required", "not-empty"} <= rules


def test_expectation_list_matches_installed_gx() -> None:
    import inspect

    import great_expectations as gx
    from great_expectations.expectations.expectation import Expectation

    installed = {
        re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()
        for name, cls in inspect.getmembers(gx.expectations, inspect.isclass)
        if issubclass(cls, Expectation) and name.startswith("Expect") and name != "Expectation"
    }
    assert installed == EXPECTATION_TYPES


def test_json_schema_is_exported_and_current() -> None:
    assert json.loads(SCHEMA_PATH.read_text()) == descriptor_json_schema()


@pytest.mark.slow
def test_mesh_validate_cli_reports_without_traceback(project: Path, tmp_path: Path) -> None:
    _edit(project, "pharmacy", lambda d: d.pop("owner"))
    path = project / "domains" / "scheduling" / "domain.yaml"
    path.write_text(path.read_text() + "\n  bad: [\n")
    env = mesh_env(project, tmp_path / "home")
    proc = run_mesh_cli("validate", env=env, cwd=project)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert "domains/pharmacy/domain.yaml" in proc.stderr and "[required]" in proc.stderr
    assert "domains/scheduling/domain.yaml" in proc.stderr and "[yaml]" in proc.stderr
    report = json.loads(run_mesh_cli("validate", "--json", env=env, cwd=project).stdout)
    assert report["valid"] is False
    assert {(p["file"], p["rule"]) for p in report["problems"]} >= {
        ("domains/pharmacy/domain.yaml", "required"),
        ("domains/scheduling/domain.yaml", "yaml"),
    }
    assert run_mesh_cli("validate", env=mesh_env(ROOT, tmp_path / "home2"), cwd=ROOT).returncode == 0


def test_kwargs_great_expectations_rejects(project: Path) -> None:
    from mesh_platform.checks.validate_expectations import expectation_kwargs_problems

    def change(d):
        d["products"][0]["expectations"][1]["kwargs"] = {"column": "daily_capacity", "min_value": "lots"}

    _edit(project, "pharmacy", change)
    (problem,) = expectation_kwargs_problems(Mesh.load(MeshProject.discover(project)))
    assert problem.rule == "expectation-kwargs"
    assert (problem.file, problem.field) == ("domains/pharmacy/domain.yaml", "products[0].expectations[1].kwargs")


def test_a_regex_duckdb_cannot_compile_fails_validate_naming_the_expectation(project: Path, tmp_path: Path) -> None:
    """The checks match with DuckDB's RE2: a pattern it refuses is a validate problem, not a check
    error in the middle of a run; patterns it compiles pass."""

    def change(d):
        d["products"][0]["expectations"] += [
            {"type": "expect_column_values_to_match_regex", "kwargs": {"column": "site_id", "regex": "^S[0-9]+$"}},
            {"type": "expect_column_values_to_match_regex", "kwargs": {"column": "site_id", "regex": "(S"}},
            {
                "type": "expect_column_values_to_not_match_regex_list",
                "kwargs": {"column": "zip", "regex_list": ["^0", "1(?=2)"]},
            },
            {  # GX's run-time parameter form: no mesh run supplies one
                "type": "expect_column_values_to_match_regex_list",
                "kwargs": {"column": "zip", "regex_list": {"$PARAMETER": "zips"}},
            },
        ]

    _edit(project, "pharmacy", change)
    problems = _validate_refuses(project, tmp_path, "expectation-regex")
    assert [(p["file"], p["field"]) for p in problems] == [
        ("domains/pharmacy/domain.yaml", "products[0].expectations[3].kwargs"),
        ("domains/pharmacy/domain.yaml", "products[0].expectations[4].kwargs"),
        ("domains/pharmacy/domain.yaml", "products[0].expectations[5].kwargs"),
    ]
    assert "regex_list must be a list of regular expressions, got dict" in problems[2]["message"]
    assert "'(S'" in problems[0]["message"] and "missing )" in problems[0]["message"]
    assert "'1(?=2)'" in problems[1]["message"] and "RE2" in problems[1]["message"]


def test_grants_that_do_nothing_are_warnings_naming_the_grant(project: Path, tmp_path: Path) -> None:
    """A typo in a grant leaves the intended consumer without access (and would grant a domain
    created later under the typo): validate says so, without failing the mesh."""

    def change(d):
        d["products"][1]["access"] = {
            "consumers": ["immunizations", "patient360", "pharmacy"],
            "pii_readers": ["immunizations", "pharmacy"],
        }

    _edit(project, "pharmacy", change)
    proc = run_mesh_cli("validate", "--json", env=mesh_env(project, tmp_path / "home"), cwd=project)
    report = json.loads(proc.stdout)
    assert proc.returncode == 0 and report["valid"], proc.stderr
    found = {(w["field"], w["rule"]) for w in report["warnings"] if w["domain"] == "pharmacy"}
    assert found == {
        ("products[1].access.consumers[1]", "grant-unknown-domain"),
        ("products[1].access.consumers[2]", "grant-to-owner"),
        ("products[1].access.pii_readers[1]", "grant-to-owner"),
    }
    text = run_mesh_cli("validate", env=mesh_env(project, tmp_path / "home"), cwd=project).stderr
    assert "warning: domains/pharmacy/domain.yaml:" in text and "'patient360' is no domain of this mesh" in text


def test_an_expectation_a_check_cannot_run_fails_validate_naming_product_and_type(
    project: Path, tmp_path: Path
) -> None:
    """`expect_query_results_to_match_comparison` runs its `base_query` as written (a second
    statement too, which wrote into the warehouse during the audit) against a GX data source no mesh
    check has; a LIKE expectation has no DuckDB implementation in GX. Each passed validate and could
    only fail at run time: now the domain does not load, and validate names product, expectation and
    field in one line."""
    hostile = "create table main.hostile as select 1 as x; select * from {batch}"

    def change(d):
        d["products"][0]["expectations"] += [
            {
                "type": "expect_query_results_to_match_comparison",
                "kwargs": {"base_query": hostile, "comparison_data_source_name": "w", "comparison_query": "select 1"},
            },
            {
                "type": "expect_column_values_to_match_like_pattern",
                "kwargs": {"column": "site_id", "like_pattern": "S%"},
            },
        ]

    _edit(project, "pharmacy", change)
    mesh = Mesh.load(MeshProject.discover(project))
    assert {p.domain for p in mesh.problems} == {"pharmacy"}
    problems = _validate_refuses(project, tmp_path, "expectation-unsupported")
    assert [(p["file"], p["field"]) for p in problems] == [
        ("domains/pharmacy/domain.yaml", "products[0].expectations[2].type"),
        ("domains/pharmacy/domain.yaml", "products[0].expectations[3].type"),
    ]
    assert all(p["message"].startswith("product 'sites': expectation expect_") for p in problems)
    assert "base_query" in problems[0]["message"] and "LIKE" in problems[1]["message"]
    assert all("\n" not in p["message"] for p in problems)


def test_a_row_condition_sql_cannot_run_fails_validate(project: Path) -> None:
    """A row condition as text without GX's own parser (GX takes it for pandas or Spark) or on a
    column the product does not declare passed validate and could only fail in the checks' SQL."""
    conditions = [
        {"row_condition": 'col("site_id") == "S1"'},
        {"row_condition": "site_id == 'S1'", "condition_parser": "pandas"},
        {"row_condition": 'col("site_code") == "S1"', "condition_parser": "great_expectations"},
        {"row_condition": {"type": "comparison", "column": {"name": "region"}, "operator": "==", "parameter": 1}},
        {"row_condition": 'col("site_id") == "S1"', "condition_parser": "great_expectations"},  # valid
    ]

    def change(d):
        d["products"][0]["expectations"] += [
            {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "site_id", **kwargs}}
            for kwargs in conditions
        ]

    _edit(project, "pharmacy", change)
    problems = sorted((p.field, p.rule, p.message) for p in _problems(project))
    assert [(field, rule) for field, rule, _ in problems] == [
        ("products[0].expectations[2].kwargs.condition_parser", "expectation-row-condition"),
        ("products[0].expectations[3].kwargs.condition_parser", "expectation-row-condition"),
        ("products[0].expectations[4].kwargs", "expectation-column"),
        ("products[0].expectations[5].kwargs", "expectation-column"),
    ]
    assert "not None" in problems[0][2] and "not 'pandas'" in problems[1][2]
    assert "'site_code'" in problems[2][2] and "'region'" in problems[3][2]
