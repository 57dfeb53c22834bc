"""The consumer-aware breaking-change gate: each change class classified, `mesh check-change` against
a git base refusing a breaking change a consumer uses (naming it) and passing it when no consumer
uses it or the major was bumped, bad bases refused in one line, and the same gate when definitions
load against the contract recorded with the last published version."""

from __future__ import annotations

import copy
import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pytest

from mesh_platform.contracts.changes import contract_changes
from mesh_platform.contracts.snapshot import contract_snapshot
from mesh_platform.defs.domain_definitions import build_domain
from mesh_platform.descriptor.problems import MeshDefinitionError
from mesh_platform.project.locations import MeshProject
from mesh_platform.project.mesh import Mesh
from mesh_platform.storage.product_store import Build, ProductStore
from tests.conftest import ROOT, copy_project, mesh_env, run_mesh_cli

Snapshot = dict[str, Any]


def snapshot(ref: str) -> Snapshot:
    descriptor, product = Mesh.load(MeshProject.discover(ROOT)).product(ref)
    return contract_snapshot(descriptor, product)


def column(s: Snapshot, name: str) -> dict[str, Any]:
    return next(c for c in s["columns"] if c["name"] == name)


def expectation(s: Snapshot, type_: str, col: str) -> dict[str, Any]:
    return next(e for e in s["expectations"] if e["type"] == type_ and e["kwargs"].get("column") == col)


def _rename(s: Snapshot) -> None:
    column(s, "email")["name"] = "email_address"


CASES: list[tuple[str, Callable[[Snapshot], Any], str, bool, str | None]] = [
    ("patients.patient_accounts", lambda s: s["columns"].remove(column(s, "phone")), "column_removed", True, "phone"),
    ("patients.patient_accounts", _rename, "column_renamed", True, "email"),
    (
        "patients.patient_accounts",
        lambda s: s["columns"].append({**column(s, "state"), "name": "county"}),
        "column_added",
        False,
        "county",
    ),
    (
        "patient_360.patient_journey",
        lambda s: column(s, "appointments_booked").update(type="integer"),
        "type_narrowed",
        True,
        "appointments_booked",
    ),
    (
        "patient_360.patient_journey",
        lambda s: column(s, "birth_year").update(type="bigint"),
        "type_widened",
        False,
        "birth_year",
    ),
    (
        "patients.patient_accounts",
        lambda s: column(s, "date_of_birth").update(type="string"),
        "type_changed",
        True,
        "date_of_birth",
    ),
    (
        "patients.patient_accounts",
        lambda s: s["expectations"].remove(expectation(s, "expect_column_values_to_not_be_null", "patient_id")),
        "nullable",
        True,
        "patient_id",
    ),
    (
        "immunizations.administered_doses",
        lambda s: expectation(s, "expect_column_values_to_not_be_null", "manufacturer").update(severity="error"),
        "not_null",
        False,
        "manufacturer",
    ),
    (
        "immunizations.test_results",
        lambda s: expectation(s, "expect_column_values_to_be_in_set", "result")["kwargs"]["value_set"].append("void"),
        "expectation_loosened",
        True,
        "result",
    ),
    (
        "immunizations.test_results",
        lambda s: expectation(s, "expect_column_values_to_be_in_set", "result")["kwargs"]["value_set"].remove(
            "pending"
        ),
        "expectation_tightened",
        False,
        "result",
    ),
    (
        "immunizations.administered_doses",
        lambda s: expectation(s, "expect_column_values_to_be_between", "dose_number")["kwargs"].update(max_value=6),
        "expectation_loosened",
        True,
        "dose_number",
    ),
    (
        "immunizations.administered_doses",
        lambda s: expectation(s, "expect_column_values_to_be_between", "dose_number").update(severity="warn"),
        "expectation_loosened",
        True,
        "dose_number",
    ),
    (
        "pharmacy.sites",
        lambda s: s["expectations"].append(
            {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "zip"}, "severity": "error"}
        ),
        "not_null",
        False,
        "zip",
    ),
    (
        "patients.patient_accounts",
        lambda s: column(s, "state").update(classification="pii", mask="redact"),
        "masking_tightened",
        True,
        "state",
    ),
    ("patients.patient_accounts", lambda s: column(s, "phone").update(mask="null"), "masking_tightened", True, "phone"),
    ("patients.patient_accounts", lambda s: s["pii_readers"].append("patient_360"), "masking_loosened", True, "email"),
    ("patients.patient_accounts", lambda s: s["consumers"].remove("patient_360"), "access_revoked", True, None),
    ("pharmacy.vaccine_stock", lambda s: s["consumers"].append("patient_360"), "access_granted", False, None),
    ("patients.patient_accounts", lambda s: s.update(freshness="48h"), "freshness_loosened", True, None),
    ("patients.patient_accounts", lambda s: s.update(freshness=None), "freshness_loosened", True, None),
    ("patients.patient_accounts", lambda s: s.update(freshness="12h"), "freshness_tightened", False, None),
]


@pytest.mark.parametrize(
    ("ref", "edit", "kind", "breaking", "col"), CASES, ids=[f"{c[2]}-{i}" for i, c in enumerate(CASES)]
)
def test_each_change_is_classified(
    ref: str, edit: Callable[[Snapshot], Any], kind: str, breaking: bool, col: str | None
) -> None:
    base = snapshot(ref)
    head = copy.deepcopy(base)
    edit(head)
    consumers = ["patient_360", "scheduling", "site_operations", "immunizations"]
    changes = [c for c in contract_changes(base, head, consumers) if c.kind == kind]
    assert changes, contract_changes(base, head, consumers)
    assert all(c.breaking is breaking for c in changes)
    assert col in {c.column for c in changes}


def test_masking_and_access_changes_concern_only_the_consumers_whose_view_changed() -> None:
    base = snapshot("patients.patient_accounts")
    head = copy.deepcopy(base)
    head["pii_readers"] = ["scheduling"]
    (email,) = [c for c in contract_changes(base, head, ["patient_360", "scheduling"]) if c.column == "email"]
    assert email.kind == "masking_loosened" and email.consumers == ("scheduling",)
    assert [c.kind for c in contract_changes(base, None)] == ["product_removed"]
    assert [c.kind for c in contract_changes(None, base)] == ["product_added"]
    assert contract_changes(base, copy.deepcopy(base), ["patient_360"]) == []


# -- mesh check-change against a git base ---------------------------------------------------------


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A git checkout of the project, committed on `main`, then on a branch of its own."""
    root = copy_project(tmp_path / "project")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "base")
    git(root, "checkout", "-qb", "change")
    return root, mesh_env(root, tmp_path / "home")


def edit(path: Path, old: str, new: str) -> int:
    """Replace `old` (once) and return the 1-based line it was on."""
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))
    return text[: text.index(old)].count("\n") + 1


def check_change(root: Path, env: dict[str, str], *args: str) -> tuple[int, dict[str, Any], str]:
    proc = run_mesh_cli("check-change", "--json", *args, env=env, cwd=root)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, json.loads(proc.stdout) if proc.stdout.strip() else {}, proc.stderr


def test_a_breaking_change_a_consumer_uses_is_refused_naming_it(repo: tuple[Path, dict[str, str]]) -> None:
    root, env = repo
    descriptor = root / "domains/patients/domain.yaml"
    line = edit(descriptor, "- {name: email, type: string", "- {name: email, type: date")
    code, report, _ = check_change(root, env)
    assert code == 1 and report["passed"] is False
    (refused,) = [c for c in report["changes"] if c["decision"] == "refused"]
    assert refused["kind"] == "type_changed" and refused["column"] == "email"
    assert (refused["file"], refused["line"]) == ("domains/patients/domain.yaml", line)
    assert [(u["consumer"], u["asset"], u["column"]) for u in refused["uses"]] == [
        ("patient_360", "patient_360.patient_journey", "email")
    ]
    text = run_mesh_cli("check-change", env=env, cwd=root)
    assert text.returncode == 1
    assert f"domains/patients/domain.yaml:{line}" in text.stdout and "patient_360.patient_journey.email" in text.stdout


def test_the_same_change_passes_when_no_consumer_uses_the_column(repo: tuple[Path, dict[str, str]]) -> None:
    root, env = repo
    edit(root / "domains/patients/domain.yaml", "- {name: phone, type: string", "- {name: phone, type: date")
    code, report, _ = check_change(root, env)
    assert code == 0 and report["passed"] is True
    (change,) = [c for c in report["changes"] if c["column"] == "phone"]
    assert change["breaking"] and change["decision"] == "passed: no consumer uses it" and change["uses"] == []


def test_a_python_consumer_filtering_on_a_column_counts_as_a_use(repo: tuple[Path, dict[str, str]]) -> None:
    root, env = repo
    # scheduling.appointments.status: site_operations (Python) and patient_360 (dbt) filter on it
    descriptor = root / "domains/scheduling/domain.yaml"
    text = descriptor.read_text()
    old = next(line for line in text.splitlines() if "name: status" in line)
    edit(descriptor, old, old.replace("name: status", "name: state"))
    code, report, _ = check_change(root, env)
    assert code == 1
    (refused,) = [c for c in report["changes"] if c["decision"] == "refused"]
    assert refused["kind"] == "column_renamed" and refused["column"] == "status"
    users = {(u["asset"], u["column"], u["how"]) for u in refused["uses"]}
    assert ("site_operations.site_daily_capacity", "completed", "INDIRECT/FILTER") in users
    assert ("patient_360.patient_journey", "journey_stage", "INDIRECT/CONDITIONAL") in users


def test_a_new_major_lets_a_breaking_change_pass_with_a_note(repo: tuple[Path, dict[str, str]]) -> None:
    root, env = repo
    descriptor = root / "domains/patients/domain.yaml"
    edit(descriptor, "- {name: email, type: string", "- {name: email, type: date")
    edit(descriptor, "    freshness: 26h\n", '    freshness: 26h\n    version: "2.0"\n')
    code, report, _ = check_change(root, env)
    assert code == 0
    (change,) = [c for c in report["changes"] if c["column"] == "email"]
    assert change["decision"] == "passed: new major" and change["uses"]


def test_a_bad_base_is_one_line_and_exit_2(repo: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    root, env = repo
    proc = run_mesh_cli("check-change", "--base", "no-such-rev", env=env, cwd=root)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "not a known revision" in proc.stderr
    plain = copy_project(tmp_path / "plain")
    proc = run_mesh_cli("check-change", env=mesh_env(plain, tmp_path / "home2"), cwd=plain)
    assert proc.returncode == 2 and "not a git checkout" in proc.stderr and "Traceback" not in proc.stderr


# -- the same gate when definitions load ----------------------------------------------------------


def publish_with_contract(mesh: Mesh, ref: str) -> None:
    """Publish a version of `ref` as a run would: its rows, and its contract recorded with it."""
    descriptor, product = mesh.product(ref)
    columns = ", ".join(f"null::{'varchar' if c.type == 'string' else c.type} as {c.name}" for c in product.columns)
    with duckdb.connect() as con:
        con.execute(f"create table built as select {columns}")
        ProductStore(mesh.project.home).publish(
            con, descriptor.domain, product.name, Build("built"), "run1", contract_snapshot(descriptor, product)
        )


def test_definitions_refuse_a_breaking_change_that_keeps_the_major(project: Path) -> None:
    descriptor = project / "domains/patients/domain.yaml"
    edit(descriptor, "    freshness: 26h\n", '    freshness: 26h\n    version: "1.3"\n')
    publish_with_contract(Mesh.load(MeshProject.discover(project)), "patients.patient_accounts")
    line = edit(descriptor, "- {name: email, type: string", "- {name: email, type: date")
    edit(descriptor, '    version: "1.3"', '    version: "1.4"')
    with pytest.raises(MeshDefinitionError) as raised:
        build_domain(Mesh.load(MeshProject.discover(project)), "patients")
    (problem,) = raised.value.problems
    assert problem.rule == "breaking-change-same-major" and problem.file == "domains/patients/domain.yaml"
    assert problem.line == line and "patient_360.patient_journey.email" in problem.message
    edit(descriptor, '    version: "1.4"', '    version: "2.0"')  # a new major: loads
    build_domain(Mesh.load(MeshProject.discover(project)), "patients")


def test_definitions_load_a_breaking_change_no_consumer_uses(project: Path) -> None:
    descriptor = project / "domains/patients/domain.yaml"
    edit(descriptor, "    freshness: 26h\n", '    freshness: 26h\n    version: "1.0"\n')
    publish_with_contract(Mesh.load(MeshProject.discover(project)), "patients.patient_accounts")
    edit(descriptor, "- {name: phone, type: string", "- {name: phone, type: date")
    parts = build_domain(Mesh.load(MeshProject.discover(project)), "patients")
    assert parts.assets
