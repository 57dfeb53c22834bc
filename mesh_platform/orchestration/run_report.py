"""What a run recorded, per domain and product, apart from how it executes and how it is shown.

A product's result comes from its `status.json` (written by write-audit-publish: its status, rows,
the outcome of each check and what blocked it); a domain's from its Dagster run.
`cli.run_summary` shows them:

- the summary table, one row per product, with its checks counted apart: passed, blocking
  failures (an `error` check that failed: the product is not published), warnings (a `warn`
  check that failed: reported, published anyway) and not run (skipped because an earlier blocking
  check, such as the schema contract, failed);
- for each product whose checks did not all pass, the reason in one line and its result table;
- for each domain that failed for another reason, its error without the stack trace, which is in
  the run's log file, whose path is printed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

PASSED, FAILED, WARNING, NOT_RUN = "passed", "failed", "warning", "not run"
STATE_STYLE = {PASSED: "green", FAILED: "bold red", WARNING: "yellow", NOT_RUN: "dim"}


@dataclass
class CheckLine:
    name: str
    severity: str
    state: str  # passed | failed (blocking) | warning (did not block) | not run
    detail: str

    @classmethod
    def from_status(cls, check: dict[str, Any]) -> CheckLine:
        if not check.get("ran", True):
            state = NOT_RUN
        elif check["passed"]:
            state = PASSED
        else:
            state = FAILED if check.get("blocking", True) else WARNING
        return cls(check["name"], check.get("severity", "error"), state, check.get("summary") or "")


@dataclass
class ProductResult:
    domain: str
    product: str
    status: str  # published | failed_checks | error | not run
    rows: int | None = None
    seconds: float | None = None
    checks: list[CheckLine] = field(default_factory=list)
    blockers: list[str] = field(default_factory=list)
    error: str = ""
    current_version: str | None = None  # the published version consumers read after this run

    def count(self, state: str) -> int:
        return sum(1 for c in self.checks if c.state == state)

    @property
    def checks_passed(self) -> int:
        return self.count(PASSED)

    @property
    def checks_failed(self) -> int:
        """Blocking checks that failed."""
        return self.count(FAILED)

    @property
    def detail(self) -> str:
        return "; ".join(self.blockers) or self.error

    @property
    def other_blockers(self) -> list[str]:
        """What blocked publication besides the checks listed (a dbt test, a failed upstream product)."""
        listed = {f"{c.name}: {c.detail}" for c in self.checks if c.state == FAILED}
        return [b for b in self.blockers if b not in listed]

    @property
    def needs_report(self) -> bool:
        return self.status in ("failed_checks", "error") or any(c.state != PASSED for c in self.checks)


@dataclass
class DomainResult:
    domain: str
    status: str  # success | failure | skipped | invalid
    run_id: str | None = None
    seconds: float = 0.0
    error: str = ""  # what failed other than a product's checks (those are in its ProductResult)
    products: list[ProductResult] = field(default_factory=list)
    log: str | None = None  # the run's log file: tool output and stack traces


def product_result(
    domain: str, product: str, status: dict[str, Any], seconds: float | None, current_version: str | None
) -> ProductResult:
    """A product's result from its status.json."""
    return ProductResult(
        domain,
        product,
        status["status"],
        status.get("rows"),
        seconds,
        [CheckLine.from_status(c) for c in status.get("checks", [])],
        list(status.get("blockers") or []),
        status.get("error") or "",
        current_version,
    )
