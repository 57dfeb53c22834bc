"""How `mesh run` shows its results: the summary table, the reason and check table of each product
whose checks did not all pass, and each failed domain's error (its stack trace stays in the log)."""

from __future__ import annotations

from collections.abc import Iterator

from rich.console import RenderableType
from rich.text import Text

from mesh_platform.cli.tables import Column, Fitted
from mesh_platform.orchestration.run_report import FAILED, NOT_RUN, STATE_STYLE, WARNING, DomainResult, ProductResult


def _count_cell(n: int, style: str) -> Text:
    return Text(str(n), style=style if n else "dim")


def summary_table(results: list[DomainResult]) -> Fitted:
    """One line per product (a domain that built none: one line for the domain), fitted to the width
    it is printed in without cutting a name."""
    rows: list[list[Text]] = []
    for result in results:
        for p in result.products:
            rows.append(
                [
                    Text(f"{p.domain}.{p.product}"),
                    Text(p.status),
                    Text(f"{p.rows:,}" if p.rows is not None else "-"),
                    Text(f"{p.seconds:.1f}" if p.seconds is not None else "-"),
                    Text(str(p.checks_passed)),
                    _count_cell(p.checks_failed, "bold red"),
                    _count_cell(p.count(WARNING), "yellow"),
                    _count_cell(p.count(NOT_RUN), "yellow"),
                ]
            )
        if not result.products:
            rows.append(
                [Text(result.domain), Text(result.status), Text("-"), Text(f"{result.seconds:.1f}")] + [Text("-")] * 4
            )
    headers = ("product", "status", "rows", "time", "passed", "failed", "warned", "not run")
    columns = [
        Column(h, [r[i] for r in rows], drop=1 if h == "time" else 0, justify="left" if i < 2 else "right")
        for i, h in enumerate(headers)
    ]
    caption = Text(
        "time in seconds · checks: failed: blocking, so not published · warned: published anyway · "
        "not run: after a blocking failure",
        style="dim",
    )
    return Fitted(columns, Text("mesh run", style="bold"), caption=caption)


def product_reason(p: ProductResult) -> Text:
    """Why a product's checks did not all pass, and what consumers read now, in one line."""
    ref = f"{p.domain}.{p.product}"
    kept = f"consumers keep version {p.current_version}" if p.current_version else "nothing is published yet"
    if p.status == "failed_checks":
        failed = p.checks_failed + len(p.other_blockers)
        return Text.assemble((f"{ref} was not published", "bold red"), f": {failed} blocking check(s) failed; {kept}")
    if p.status == "error":
        return Text.assemble((f"{ref} failed", "bold red"), f": {p.error.splitlines()[0] if p.error else 'error'}")
    warnings = p.count(WARNING)
    return Text.assemble((ref, "bold"), f": {p.status}; {warnings} warning(s) did not block")


def check_table(p: ProductResult) -> Fitted:
    """The product's result table: every check with its severity, state and what was observed."""
    rows: list[tuple[Text, Text, Text, Text]] = []
    for c in p.checks:
        state = c.state + (", blocks" if c.state == FAILED else ", did not block" if c.state == WARNING else "")
        detail = c.detail.removeprefix(f"{NOT_RUN}: ") if c.state == NOT_RUN else c.detail
        rows.append((Text(c.name), Text(c.severity), Text(state, style=STATE_STYLE[c.state]), Text(detail)))
    for blocker in p.other_blockers:
        name, _, detail = blocker.partition(": ")
        rows.append((Text(name), Text("error"), Text("failed, blocks", style=STATE_STYLE[FAILED]), Text(detail)))
    headers = ("check", "severity", "result", "observed")
    columns = [Column(h, [r[i] for r in rows], prose=i == 3, wrap=i == 3) for i, h in enumerate(headers)]
    return Fitted(columns)


def product_reports(results: list[DomainResult]) -> Iterator[RenderableType]:
    """For each product whose checks did not all pass: its reason and result table."""
    for result in results:
        for p in result.products:
            if p.needs_report and p.status != "not run":
                yield product_reason(p)
                if p.checks or p.other_blockers:
                    yield check_table(p)


def domain_lines(result: DomainResult) -> Iterator[Text]:
    """A domain that did not succeed: its status, its error (without a stack trace) and its log."""
    if result.status == "success":
        return
    blocked = [p for p in result.products if p.status == "failed_checks"]
    summary = f"{result.domain}: {result.status}"
    if blocked and not result.error:
        summary += f" ({len(blocked)} product(s) not published: blocking checks failed)"
    yield Text(summary, style="bold red")
    if result.error:
        yield Text(result.error)
    if result.log:
        yield Text(f"(tool output and stack traces: {result.log})", style="dim")
