"""Dagster assets from a domain's `@product` / `@internal` functions."""

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
from dagster import AssetExecutionContext

from mesh_platform.defs.asset_spec import mesh_spec
from mesh_platform.defs.mesh_resource import MeshResource
from mesh_platform.defs.publish import (
    TRANSIENT_RETRIES,
    audit_and_publish,
    materialization_metadata,
    record_error,
    step_failure,
    will_retry,
)
from mesh_platform.defs.warehouse_io import (
    expose_inputs,
    land_table,
    prepare_inputs,
    record_inputs,
    repoint_views,
    step_sandbox,
)
from mesh_platform.descriptor.model import Descriptor
from mesh_platform.governance.sandbox import open_sandboxed
from mesh_platform.lineage.openlineage_events import AssetLineage
from mesh_platform.project.mesh import Mesh
from mesh_platform.sdk import AssetContext, AssetFn, Ingested, SuiteFn
from mesh_platform.sql.syntax import quote
from mesh_platform.storage.duckdb_warehouse import pool_for
from mesh_platform.storage.product_store import Build, build_into, point_view, staged_file, staging


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
    `mesh_platform.storage.product_store`), with `main.<name>` a view over it. A function that returned no rows
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
        return Build(f"main.{quote(name)}", staging=folder)
    return Build(point_view(con, name, path), path, folder)


def _ingested_metadata(result: Ingested) -> dict[str, Any]:
    return {
        "mesh/records_in": result.records_in,
        "dagster/row_count": result.loaded,
        "mesh/quarantined": result.quarantined_total,
        "mesh/quarantined_by_reason": dg.MetadataValue.json(result.quarantined),
        "mesh/source_files": ", ".join(result.files[:200]),
    }


def build_python_asset(
    asset_fn: AssetFn,
    descriptor: Descriptor,
    suites: Sequence[SuiteFn] = (),
    landing: Sequence[str] = (),
    resolve: Callable[[str], str] = str,
    streamed: bool = False,
) -> dg.AssetsDefinition:
    """`landing`: the landing folders the domain's assets declare (its sandbox may read them);
    `resolve`: another domain's product as named in `reads` -> the product (major) the domain reads;
    `streamed`: the asset is refreshed by the domain's micro-batches of landing files."""
    domain = descriptor.domain
    product = descriptor.product(asset_fn.name) if asset_fn.role == "product" else None
    planned = mesh_spec(descriptor, asset_fn.name, "python", product, asset_fn.description, suites, streamed)
    spec = planned.spec(deps=[dep_key(domain, resolve(r) if "." in r else r) for r in asset_fn.reads])
    consumed = [r for r in asset_fn.reads if "." in r]
    via = f"{domain}.{asset_fn.name}"

    def materialize(context: AssetExecutionContext, mesh: Mesh) -> Iterator[Any]:
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
            context.assets_def.metadata_by_key.get(spec.key),
        )
        lineage.start()
        home = mesh.project.home

        def failed(exc: Exception) -> BaseException:
            lineage.fail(f"{type(exc).__name__}: {exc}")
            failure = step_failure(mesh, domain, exc, run_id, via)
            record_error(mesh, domain, asset_fn.name, run_id, failure, will_retry(failure, context.retry_number))
            return failure

        audit = None
        with staging(home, domain, run_id) as folder:
            try:
                inputs = prepare_inputs(mesh, domain, consumed, run_id, via, in_duckdb=True)
            except Exception as exc:
                raise failed(exc) from exc
            lineage.inputs_read([i.grant for i in inputs])
            sandbox = step_sandbox(mesh, domain, folder, inputs, landing)
            with open_sandboxed(home, sandbox) as con:
                ctx = AssetContext(
                    domain,
                    asset_fn.name,
                    con,
                    home.path,
                    asset_fn.reads,
                    run_id,
                    context.log,
                    landing=asset_fn.landing,
                    governed=expose_inputs(con, inputs),
                )
                governed_reads = record_inputs(mesh, inputs, run_id, via)
                try:
                    result = asset_fn(ctx)
                    if product is not None:
                        build = _build_product(con, asset_fn.name, result, folder)
                    else:
                        _write_result(con, asset_fn.name, result)
                    land_table(con, home, domain, asset_fn.name)
                except Exception as exc:
                    raise failed(exc) from exc
                if product is None:
                    metadata = _ingested_metadata(result) if isinstance(result, Ingested) else {}
                    if governed_reads:
                        metadata["mesh/governed_reads"] = dg.MetadataValue.json(governed_reads)
                    lineage.complete(rows=metadata.get("dagster/row_count"))
                    yield dg.MaterializeResult(asset_key=spec.key, metadata=metadata)
                    return
                audit = audit_and_publish(con, mesh, descriptor, product, build, run_id, suites=suites)
            if audit.view_path:
                repoint_views(mesh, domain, {product.name: audit.view_path})
        if audit.published is None:
            lineage.fail("; ".join(audit.blockers), audit.evaluated)
            yield from audit.check_results(spec.key)
            raise audit.failure()
        lineage.complete(audit.evaluated, audit.published.rows)
        yield dg.MaterializeResult(
            asset_key=spec.key,
            metadata=materialization_metadata(audit, governed_reads),
            check_results=audit.check_results(spec.key),
        )

    @dg.multi_asset(
        name=f"{domain}__{asset_fn.name}",
        specs=[spec],
        check_specs=planned.checks,
        pool=pool_for(domain),
        retry_policy=TRANSIENT_RETRIES,
    )
    def _compute(context: AssetExecutionContext, mesh: MeshResource) -> Iterator[Any]:
        yield from materialize(context, mesh.mesh)

    return _compute
