"""Dagster assets from a domain's `@product` / `@internal` functions."""

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
from dagster import AssetExecutionContext

from mesh_platform.checks.specs import check_specs
from mesh_platform.defs.publish import (
    TRANSIENT_RETRIES,
    as_failure,
    audit_and_publish,
    materialization_metadata,
    record_error,
    will_retry,
)
from mesh_platform.defs.specs import internal_attributes, product_attributes
from mesh_platform.defs.warehouse_io import land_table
from mesh_platform.descriptor.model import Descriptor
from mesh_platform.governance.policies import quote
from mesh_platform.mesh import Mesh
from mesh_platform.openlineage import AssetLineage
from mesh_platform.orchestration.automation import automation_attributes
from mesh_platform.project import MeshProject
from mesh_platform.sdk import AssetContext, AssetFn, Ingested, SuiteFn
from mesh_platform.store import Build, build_into, point_view, staged_file, staging
from mesh_platform.warehouse import open_warehouse, pool_for


def dep_key(domain: str, ref: str) -> dg.AssetKey:
    return dg.AssetKey(ref.split(".", 1)) if "." in ref else dg.AssetKey([domain, ref])


def _write_result(con: duckdb.DuckDBPyConnection, name: str, result: Any) -> str:
    relation = f"main.{quote(name)}"
    if isinstance(result, str):
        con.execute(f"create or replace table {relation} as {result}")
    elif result is not None and not isinstance(result, (Ingested, dict)):
        con.register("_mesh_result", result)
        con.execute(f"create or replace table {relation} as select * from _mesh_result")
        con.unregister("_mesh_result")
    return relation


def _build_product(con: duckdb.DuckDBPyConnection, name: str, result: Any, folder: Path) -> Build:
    """A product's rows go straight into the Parquet file that is audited and published (see
    `mesh_platform.store`), with `main.<name>` a view over it. A function that returned no rows
    made its table itself, which is published by copy."""
    path = staged_file(folder, name)
    if isinstance(result, str):
        build_into(con, result, path)
    elif result is not None and not isinstance(result, (Ingested, dict)):
        con.register("_mesh_result", result)
        try:
            build_into(con, "select * from _mesh_result", path)
        finally:
            con.unregister("_mesh_result")
    else:
        return Build(f"main.{quote(name)}")
    return Build(point_view(con, name, path), path)


def _ingested_metadata(result: Ingested) -> dict[str, Any]:
    return {
        "mesh/records_in": result.records_in,
        "dagster/row_count": result.loaded,
        "mesh/quarantined": result.quarantined_total,
        "mesh/quarantined_by_reason": dg.MetadataValue.json(result.quarantined),
        "mesh/source_files": ", ".join(result.files[:200]),
    }


def build_python_asset(
    asset_fn: AssetFn, descriptor: Descriptor, project: MeshProject, suites: Sequence[SuiteFn] = ()
) -> dg.AssetsDefinition:
    domain = descriptor.domain
    product = descriptor.product(asset_fn.name) if asset_fn.role == "product" else None
    if product is not None:
        attributes = product_attributes(descriptor, product, "python")
        checks = check_specs(descriptor, product, suites)
    else:
        attributes = internal_attributes(descriptor, asset_fn.name, asset_fn.description, "python")
        checks = []
    spec = dg.AssetSpec(
        deps=[dep_key(domain, r) for r in asset_fn.reads], **attributes, **automation_attributes(descriptor, product)
    )

    @dg.multi_asset(
        name=f"{domain}__{asset_fn.name}",
        specs=[spec],
        check_specs=checks,
        pool=pool_for(domain),
        retry_policy=TRANSIENT_RETRIES,
    )
    def _compute(context: AssetExecutionContext) -> Iterator[Any]:
        mesh = Mesh.load(MeshProject.discover(project.root))
        run_id = context.run.run_id
        lineage = AssetLineage(
            mesh.project.home.path,
            descriptor,
            asset_fn.name,
            asset_fn.reads,
            run_id,
            context.job_name,
            product,
            context.retry_number,
        )
        lineage.start()
        home = mesh.project.home
        with open_warehouse(home, domain) as con, staging(home, domain, run_id) as folder:
            ctx = AssetContext(
                domain, asset_fn.name, con, mesh, asset_fn.reads, run_id, context.log, landing=asset_fn.landing
            )
            try:
                result = asset_fn(ctx)
                if product is not None:
                    build = _build_product(con, asset_fn.name, result, folder)
                else:
                    _write_result(con, asset_fn.name, result)
                land_table(con, home, domain, asset_fn.name)
            except Exception as exc:
                lineage.fail(f"{type(exc).__name__}: {exc}")
                record_error(mesh, domain, asset_fn.name, run_id, exc, will_retry(exc, context.retry_number))
                failure = as_failure(exc)
                if failure is exc:
                    raise
                raise failure from exc
            if product is None:
                metadata = _ingested_metadata(result) if isinstance(result, Ingested) else {}
                if ctx.governed_reads:
                    metadata["mesh/governed_reads"] = dg.MetadataValue.json(ctx.governed_reads)
                lineage.complete(rows=metadata.get("dagster/row_count"))
                yield dg.MaterializeResult(asset_key=spec.key, metadata=metadata)
                return
            audit = audit_and_publish(con, mesh, descriptor, product, build, run_id, suites=suites)
        if audit.published is None:
            lineage.fail("; ".join(audit.blockers), audit.outcomes)
            yield from audit.check_results(spec.key)
            raise audit.failure()
        lineage.complete(audit.outcomes, audit.published.rows)
        yield dg.MaterializeResult(
            asset_key=spec.key,
            metadata=materialization_metadata(audit, ctx.governed_reads),
            check_results=audit.check_results(spec.key),
        )

    return _compute
