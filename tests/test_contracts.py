"""Contracts as checks: write-audit-publish, warn vs error, schema drift, no pii in samples."""

from __future__ import annotations

import json
import re
from pathlib import Path

import duckdb
import pytest
import yaml

from tests.conftest import copy_project, mesh_env, run_mesh_cli

pytestmark = pytest.mark.slow


def _row(text: str, key: str) -> list[str]:
    """The cells of a printed table's row from `key` on: `key` is its first cell (a check in a
    product's result table) or its second (a product in the summary table). A table too wide for the
    output is printed as records (`header  value` lines under a `row i of n` rule): read alike."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.split()[:2] == ["check", key]:
            record = [key]
            for following in lines[i + 1 :]:
                if following.startswith(("row ", "─")) or "  " not in following.rstrip():
                    break  # the next record, or the lines after the table
                header, _, value = following.partition("  ")
                if header.strip():  # not the continuation of a wrapped value
                    record.append(value.strip())
            return record
    for line in lines:
        cells = re.split(r"\s{2,}|\s*│\s*", line.strip().strip("│").strip())
        if len(cells) > 1 and key in cells[:2]:
            return cells[cells.index(key) :]
    raise AssertionError(f"no row for {key!r} in:\n{text}")


def _edit(root: Path, domain: str, change) -> None:
    path = root / "domains" / domain / "domain.yaml"
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def _mesh(tmp_path: Path) -> tuple[Path, Path, dict[str, str]]:
    root, home = copy_project(tmp_path / "project"), tmp_path / "home"
    env = mesh_env(root, home)
    run_mesh_cli("seed", "--scale", "0.01", env=env, cwd=root, check=True)
    return root, home, env


def _current(home: Path, ref: str) -> dict:
    domain, product = ref.split(".")
    return json.loads((home / "products" / domain / product / "current.json").read_text())


def _status(home: Path, ref: str) -> dict:
    domain, product = ref.split(".")
    return json.loads((home / "products" / domain / product / "status.json").read_text())


def test_failed_blocking_check_keeps_published_version_and_stops_downstream(tmp_path: Path) -> None:
    root, home, env = _mesh(tmp_path)
    run_mesh_cli("run", "--domain", "pharmacy", env=env, cwd=root, check=True)
    before = _current(home, "pharmacy.sites")
    stock_before = _current(home, "pharmacy.vaccine_stock")

    def change(d):
        d["products"][0]["expectations"][1]["kwargs"]["max_value"] = 50  # daily capacity goes to 400
        d["products"][1]["expectations"].append(
            {
                "type": "expect_column_values_to_be_in_set",
                "kwargs": {"column": "manufacturer", "value_set": ["Moderna"]},
                "severity": "warn",
            }
        )

    _edit(root, "pharmacy", change)
    proc = run_mesh_cli("run", "--domain", "pharmacy", "--domain", "site_operations", env=env, cwd=root)
    assert proc.returncode == 1
    assert "pharmacy.sites was not published" in proc.stderr
    assert "column_values_to_be_between__daily_capacity" in proc.stderr
    assert "unexpected" in proc.stderr  # the observed failure, not just a name
    assert "site_operations: skipped" in proc.stderr
    # the expected failure is a result table and a reason, its stack trace only in the run's log
    assert "Traceback" not in proc.stderr and "Stack Trace" not in proc.stderr and "STEP_FAILURE" not in proc.stderr
    assert _row(proc.stderr, "column_values_to_be_between__daily_capacity")[2] == "failed, blocks"
    log = re.search(r"stack traces: (\S+\.log)", proc.stderr)
    assert log and "Stack Trace" in Path(log.group(1)).read_text()
    # the warning is told apart from a failure: it did not block
    assert _row(proc.stderr, "column_values_to_be_in_set__manufacturer")[2] == "warning, did not block"
    assert "pharmacy.vaccine_stock: published; 1 warning(s) did not block" in proc.stderr
    passed, blocking, warnings, not_run = _row(proc.stdout, "pharmacy.vaccine_stock")[-4:]
    assert (blocking, warnings, not_run) == ("0", "1", "0") and int(passed) > 0

    # consumers keep reading the last good version; the failed one stays inspectable
    assert _current(home, "pharmacy.sites") == before
    status = _status(home, "pharmacy.sites")
    assert status["status"] == "failed_checks"
    assert Path(status["rejected_path"]).exists()
    # the domain's warehouse shows the rejected build: its view reads the kept file
    with duckdb.connect(str(home / "warehouse" / "pharmacy.duckdb"), read_only=True) as con:
        view = con.execute("select sql from duckdb_views() where view_name = 'sites'").fetchone()[0]
        assert status["rejected_path"] in view
        assert con.execute("select max(daily_capacity) from main.sites").fetchone()[0] > 50
    assert not list((home / "staging").glob("*/*"))
    rows = json.loads(
        run_mesh_cli(
            "read", "pharmacy.sites", "--as", "site_operations", "--limit", "0", "--json", env=env, cwd=root, check=True
        ).stdout
    )
    assert len(rows) == before["rows"]

    # a warn expectation reports but does not block
    stock = _status(home, "pharmacy.vaccine_stock")
    assert stock["status"] == "published"
    assert _current(home, "pharmacy.vaccine_stock")["version"] != stock_before["version"]
    warn = [c for c in stock["checks"] if c["name"] == "column_values_to_be_in_set__manufacturer"]
    assert warn and warn[0]["passed"] is False and warn[0]["blocking"] is False


def test_schema_drift_fails_with_a_diff_naming_each_column(tmp_path: Path) -> None:
    root, home, env = _mesh(tmp_path)

    def change(d):
        columns = d["products"][0]["columns"]
        d["products"][0]["columns"] = [c for c in columns if c["name"] != "opened_on"]
        next(c for c in columns if c["name"] == "daily_capacity")["type"] = "bigint"
        d["products"][0]["columns"].append(
            {"name": "region", "type": "string", "description": "Sales region", "classification": "public"}
        )

    _edit(root, "pharmacy", change)
    proc = run_mesh_cli("run", "--domain", "pharmacy", env=env, cwd=root)
    assert proc.returncode == 1
    status = _status(home, "pharmacy.sites")
    (blocker,) = status["blockers"]  # the schema contract only: the expectations did not run
    blockers = blocker
    expectations = [c for c in status["checks"] if c["name"] != "schema_contract"]
    assert expectations and all(not c["ran"] and not c["passed"] for c in expectations)
    for check in expectations:  # each named once, as not run
        assert proc.stderr.count(check["name"]) == 1 and _row(proc.stderr, check["name"])[2] == "not run"
    assert _row(proc.stdout, "pharmacy.sites")[-4:] == ["0", "1", "0", str(len(expectations))]
    assert "- region (VARCHAR) missing" in blockers
    assert "+ opened_on (DATE) not declared" in blockers
    assert "~ daily_capacity: declared BIGINT, built INTEGER" in blockers
    assert not (home / "products" / "pharmacy" / "sites" / "current.json").exists()


def test_a_dbt_model_that_breaks_its_contract_is_not_published(tmp_path: Path) -> None:
    """dbt's enforced contract still holds for products built straight into their Parquet file."""
    root, home, env = _mesh(tmp_path)
    run_mesh_cli("run", "--domain", "patients", env=env, cwd=root, check=True)
    before = _current(home, "patients.patient_accounts")
    yml = root / "dbt_projects" / "patients" / "models" / "marts" / "patient_accounts.yml"
    yml.write_text(
        yml.read_text().replace("{name: date_of_birth, data_type: date}", "{name: date_of_birth, data_type: timestamp}")
    )
    run_mesh_cli("prepare", env=env, cwd=root, check=True)
    proc = run_mesh_cli("run", "--domain", "patients", env=env, cwd=root)
    assert proc.returncode == 1
    status = _status(home, "patients.patient_accounts")
    assert status["status"] == "error"
    assert "contract" in status["error"] and "date_of_birth" in status["error"], status["error"]
    assert _current(home, "patients.patient_accounts") == before
    assert _status(home, "patients.patient_consent")["status"] == "published"  # not built from it
    assert not list((home / "staging").glob("*/*"))


def test_check_samples_never_show_raw_pii(tmp_path: Path) -> None:
    root, home, env = _mesh(tmp_path)

    def change(d):
        d["products"][0]["expectations"] += [
            {
                "type": "expect_column_values_to_match_regex",
                "kwargs": {"column": "email", "regex": "^nobody$"},
                "severity": "warn",
            },
            {
                "type": "expect_column_values_to_be_in_set",
                "kwargs": {"column": "last_name", "value_set": ["X"]},
                "severity": "warn",
            },
        ]

    _edit(root, "patients", change)
    proc = run_mesh_cli("run", "--domain", "patients", env=env, cwd=root, check=True)
    status = _status(home, "patients.patient_accounts")
    failed = {c["name"] for c in status["checks"] if not c["passed"]}
    assert {"column_values_to_match_regex__email__2", "column_values_to_be_in_set__last_name"} <= failed

    from dagster import DagsterInstance

    instance = DagsterInstance.from_config(str(home / "dagster"))
    run_ids = [r.run_id for r in instance.get_runs()]
    events = "".join(str(r.event_log_entry) for run_id in run_ids for r in instance.get_records_for_run(run_id).records)
    emails = {line.split('","')[3] for line in (home / "sources/patients/patients.csv").read_text().splitlines()[1:]}
    last_names = {
        line.split('","')[2] for line in (home / "sources/patients/patients.csv").read_text().splitlines()[1:]
    }
    assert "<pii masked" in events
    for haystack in (events, json.dumps(status), proc.stdout, proc.stderr):
        assert not any(e in haystack for e in emails)
        assert not any(f"'{n}'" in haystack or f'"{n}"' in haystack for n in last_names)
