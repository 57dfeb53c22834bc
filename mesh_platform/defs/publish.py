"""Write-audit-publish for one product: audit the build, publish only if nothing blocks."""

from __future__ import annotations

import errno
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import dagster as dg
import duckdb

from mesh_platform.checks.evaluate import CheckOutcome, contract_not_run, run_contract
from mesh_platform.contracts.majors import pinned_majors_outcome
from mesh_platform.contracts.snapshot import contract_snapshot
from mesh_platform.descriptor.model import Descriptor, Product
from mesh_platform.governance.refusals import report_refusals
from mesh_platform.orchestration.alerts import Alert, AlertKind, send_alert
from mesh_platform.project.mesh import Mesh
from mesh_platform.sdk import SuiteFn
from mesh_platform.storage.product_store import Build, ProductStore, Published

# Dagster retries a step only for transient trouble (a DuckDB lock, an I/O error): bad data and
# failed checks raise `Failure(allow_retries=False)` and are not retried.
TRANSIENT_RETRIES = dg.RetryPolicy(max_retries=3, delay=2, backoff=dg.Backoff.EXPONENTIAL)


# what trying again cannot fix: a path that is missing, forbidden or not what it should be (a
# directory where a file is expected, a link loop, a name too long)
PERMANENT_OS_ERRORS = (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError, FileExistsError)
PERMANENT_ERRNOS = {errno.ELOOP, errno.ENAMETOOLONG, errno.ENXIO, errno.ENODEV}


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, duckdb.IOException | duckdb.TransactionException):
        return True
    return isinstance(exc, OSError) and not isinstance(exc, PERMANENT_OS_ERRORS) and exc.errno not in PERMANENT_ERRNOS


def as_failure(exc: BaseException) -> BaseException:
    """Transient errors pass through (and are retried); anything else fails the step for good."""
    if is_transient(exc) or isinstance(exc, dg.Failure):
        return exc
    return dg.Failure(description=f"{type(exc).__name__}: {exc}", allow_retries=False)


def step_failure(mesh: Mesh, domain: str, exc: BaseException, run_id: str | None, via: str) -> BaseException:
    """The error a step of `domain` fails with: what its sandbox refused (each refusal audited,
    named with the agreement it would need, never retried), else `as_failure`."""
    refusals = report_refusals(mesh, domain, str(exc), run_id, via)
    if not refusals:
        return as_failure(exc)
    return dg.Failure(
        description="\n".join(r.message for r in refusals),
        metadata={"sandbox_refusals": dg.MetadataValue.json([r.__dict__ for r in refusals])},
        allow_retries=False,
    )


@dataclass
class Audit:
    ref: str
    outcomes: list[CheckOutcome]
    published: Published | None = None
    extra_blockers: list[str] = field(default_factory=list)
    view_path: str | None = None  # where `main.<product>` should read now (a build kept as a file)

    @property
    def blockers(self) -> list[str]:
        failed = [f"{o.name}: {o.summary}" for o in self.outcomes if o.blocks]
        return failed + self.extra_blockers

    @property
    def evaluated(self) -> list[CheckOutcome]:
        """The checks that ran (those not run have no result to report)."""
        return [o for o in self.outcomes if o.ran]

    def check_results(self, key: dg.AssetKey) -> list[dg.AssetCheckResult]:
        """A Dagster result for each check that ran; a check not run gets none, so Dagster shows it
        as not executed rather than as failed."""
        return [
            dg.AssetCheckResult(
                asset_key=key,
                check_name=o.name,
                passed=o.passed,
                severity=dg.AssetCheckSeverity.ERROR if o.severity == "error" else dg.AssetCheckSeverity.WARN,
                metadata={**o.metadata, "summary": o.summary},
            )
            for o in self.evaluated
        ]

    def failure(self) -> dg.Failure:
        return dg.Failure(
            description=f"{self.ref} was not published; blocking checks failed:\n- " + "\n- ".join(self.blockers),
            metadata={"product": self.ref, "blocking_failures": "\n".join(self.blockers)},
            allow_retries=False,
        )


def audit_and_publish(
    con: duckdb.DuckDBPyConnection,
    mesh: Mesh,
    descriptor: Descriptor,
    product: Product,
    build: Build,
    run_id: str | None,
    extra_blockers: list[str] | None = None,
    suites: Sequence[SuiteFn] = (),
) -> Audit:
    """Audit the build, then publish it or keep it as rejected. A build's file becomes the version;
    `view_path` says where it went, for the platform to point the product's view there once the
    step's sandbox is closed (`warehouse_io.repoint_views`)."""
    ref = f"{descriptor.domain}.{product.name}"
    if extra_blockers:
        outcomes = contract_not_run(product, suites, extra_blockers[0])
    else:
        outcomes = run_contract(con, product, suites)
    if any("@" in ref for ref in descriptor.consumes):
        outcomes.append(pinned_majors_outcome(mesh, descriptor.domain))
    audit = Audit(ref, outcomes, extra_blockers=list(extra_blockers or []))
    store = ProductStore(mesh.project.home)
    rejected = None
    if audit.blockers:
        rejected = store.reject(con, descriptor.domain, product.name, build, run_id)
        if build.file is not None and rejected is not None:
            audit.view_path = rejected
        failed = [o for o in outcomes if o.blocks]
        alert(
            mesh,
            descriptor.domain,
            product.name,
            "check_failure",
            f"{ref} was not published: " + "; ".join(audit.blockers),
            run_id,
            {"failed_checks": [{**o.as_dict(), "observed": o.metadata.get("observed_value")} for o in failed]},
        )
    else:
        contract = contract_snapshot(descriptor, product)  # recorded with the version, for the version gate
        audit.published = store.publish(
            con,
            descriptor.domain,
            product.name,
            build,
            run_id,
            contract,
            checks=[o.as_dict() for o in audit.outcomes],
            retention_seconds=product.retention_seconds,
        )
        if build.file is not None:
            audit.view_path = audit.published.path
    store.record_status(
        descriptor.domain,
        product.name,
        {
            "status": "published" if audit.published else "failed_checks",
            "run_id": run_id,
            "rows": audit.published.rows if audit.published else _count(con, build.relation),
            "version": audit.published.version if audit.published else None,
            "checks": [o.as_dict() for o in audit.outcomes],
            "blockers": audit.blockers,
            "rejected_path": rejected,
        },
    )
    return audit


def _count(con: duckdb.DuckDBPyConnection, relation: str) -> int | None:
    try:
        return con.execute(f"select count(*) from {relation}").fetchone()[0]  # type: ignore[index]
    except duckdb.Error:
        return None


def materialization_metadata(audit: Audit, governed_reads: list[dict[str, Any]]) -> dict[str, Any]:
    assert audit.published is not None
    published = audit.published
    metadata: dict[str, Any] = {
        "dagster/row_count": published.rows,
        "mesh/version": published.version,
        "mesh/published_path": dg.MetadataValue.path(published.path),
    }
    if governed_reads:
        metadata["mesh/governed_reads"] = dg.MetadataValue.json(governed_reads)
    return metadata


def will_retry(error: BaseException, retry_number: int) -> bool:
    """Dagster retries this step: the owner hears of the error only if the last attempt fails too."""
    return is_transient(error) and retry_number < TRANSIENT_RETRIES.max_retries


def record_error(
    mesh: Mesh, domain: str, asset: str, run_id: str | None, error: BaseException, retrying: bool = False
) -> None:
    """An asset failed: a product's status records the error, and the owner is alerted unless Dagster
    is about to retry the step."""
    if mesh.descriptors[domain].product(asset) is not None:
        ProductStore(mesh.project.home).record_status(
            domain, asset, {"status": "error", "run_id": run_id, "error": str(error)[:2000], "checks": []}
        )
    if not retrying:
        alert(mesh, domain, asset, "run_failure", f"{domain}.{asset} failed: {error}"[:2000], run_id)


def alert(
    mesh: Mesh,
    domain: str,
    asset: str,
    kind: AlertKind,
    message: str,
    run_id: str | None,
    details: dict[str, Any] | None = None,
) -> None:
    """Tell the owner of `domain.asset` (the product's owner, or the domain's for internal assets)."""
    descriptor = mesh.descriptors[domain]
    product = descriptor.product(asset)
    owner = descriptor.owner_of(product) if product else descriptor.owner
    send_alert(mesh.project.home.path, Alert(kind, domain, asset, owner, message, run_id, details or {}))
