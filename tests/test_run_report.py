"""`mesh run`'s report, made from what a run records (status.json and check outcomes): blocking
failures, warnings and checks not run are told apart, and each check is named once."""

from __future__ import annotations

import io

from rich.console import Console

from mesh_platform.checks.evaluate import CheckOutcome, not_run
from mesh_platform.cli.run_summary import domain_lines, product_reports, summary_table
from mesh_platform.orchestration.run_report import DomainResult, product_result


def _render(*renderables: object) -> str:
    console = Console(record=True, width=200, file=io.StringIO())
    for renderable in renderables:
        console.print(renderable)
    return console.export_text()


def _status(status: str, outcomes: list[CheckOutcome], blockers: list[str]) -> dict:
    return {"status": status, "rows": 10, "checks": [o.as_dict() for o in outcomes], "blockers": blockers}


def test_a_schema_failure_shows_the_other_checks_as_not_run_each_named_once() -> None:
    schema = CheckOutcome("schema_contract", False, True, "error", summary="schema drift: - region (VARCHAR) missing")
    skipped = [not_run("values_unique__site_id", "error", "the schema contract failed"), not_run("w", "warn", "x")]
    status = _status("failed_checks", [schema, *skipped], [f"schema_contract: {schema.summary}"])
    result = product_result("pharmacy", "sites", status, 1.5, "v1")
    assert (result.checks_failed, result.count("not run"), result.other_blockers) == (1, 2, [])
    domain = DomainResult("pharmacy", "failure", products=[result], log="/tmp/run.log")
    text = _render(summary_table([domain]), *product_reports([domain]), *domain_lines(domain))
    assert text.count("values_unique__site_id") == 1 and "not run" in text
    assert "pharmacy.sites was not published: 1 blocking check(s) failed; consumers keep version v1" in text
    assert "pharmacy: failure (1 product(s) not published: blocking checks failed)" in text
    assert "Traceback" not in text and "/tmp/run.log" in text


def test_a_failed_warn_check_reads_as_a_warning_that_did_not_block() -> None:
    warn = CheckOutcome("in_set__manufacturer", False, False, "warn", summary="3 unexpected")
    ok = CheckOutcome("schema_contract", True, True, "error", summary="schema matches")
    result = product_result("pharmacy", "vaccine_stock", _status("published", [ok, warn], []), 1.0, "v2")
    domain = DomainResult("pharmacy", "success", products=[result])
    text = _render(summary_table([domain]), *product_reports([domain]))
    assert (result.checks_passed, result.checks_failed, result.count("warning")) == (1, 0, 1)
    assert "warning, did not block" in text and "1 warning(s) did not block" in text
    assert "failed, blocks" not in text and list(domain_lines(domain)) == []


def test_a_dbt_test_that_blocked_is_listed_with_the_checks_not_run() -> None:
    reason = "dbt test not_null_patient_id failed"
    checks = [not_run("schema_contract", "error", reason)]
    result = product_result("patients", "accounts", _status("failed_checks", checks, [reason]), None, None)
    text = _render(*product_reports([DomainResult("patients", "failure", products=[result])]))
    assert result.other_blockers == [reason] and "failed, blocks" in text
    assert "nothing is published yet" in text
