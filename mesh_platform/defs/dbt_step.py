"""What one step of a domain's dbt asset does.

Before dbt runs, the platform authorizes and prepares the governed views its sources read and locks
the step's sandbox; dbt parses what is on disk and builds the selected models; then each product
is audited (dbt tests + schema contract + GX expectations) and published only if nothing blocks,
producers before the products of this project built from them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg
from dagster import AssetExecutionContext

from mesh_platform.defs.dbt_assets import DbtPlan
from mesh_platform.defs.dbt_build import DbtBuild, DbtEvents, run_build
from mesh_platform.defs.dbt_project import parse_for_step
from mesh_platform.defs.publish import (
    Audit,
    audit_and_publish,
    materialization_metadata,
    record_error,
    step_failure,
    will_retry,
)
from mesh_platform.defs.warehouse_io import (
    Input,
    built_products,
    dbt_target,
    governed_sources,
    prepare_inputs,
    record_inputs,
    repoint_views,
    step_sandbox,
)
from mesh_platform.governance.sandbox import Sandbox
from mesh_platform.lineage.openlineage_events import AssetLineage
from mesh_platform.project.mesh import Mesh
from mesh_platform.storage.product_store import staging


def _blocking_failure(event: object) -> bool:
    """A dbt test of error severity that failed: it blocks publication like any error check."""
    return isinstance(event, dg.AssetCheckResult) and not event.passed and event.severity == dg.AssetCheckSeverity.ERROR


@dataclass
class StepState:
    """What the step learnt from dbt: the products' outputs it holds back until their audit, the
    dbt tests that block them, and dbt's own outcome."""

    held: dict[dg.AssetKey, dg.Output] = field(default_factory=dict)
    blockers: dict[dg.AssetKey, list[str]] = field(default_factory=dict)
    dbt: DbtEvents = field(default_factory=DbtEvents)
    failures: list[Audit] = field(default_factory=list)


def run_dbt_step(context: AssetExecutionContext, mesh: Mesh, plan: DbtPlan) -> Iterator[Any]:
    via = f"{plan.domain} (dbt)"
    try:
        with staging(mesh.project.home, plan.domain, context.run.run_id) as folder:
            yield from _build(context, mesh, plan, folder, via)
    except Exception as exc:
        failure = step_failure(mesh, plan.domain, exc, context.run.run_id, via)
        if failure is exc:
            raise
        raise failure from exc


def _selection(context: AssetExecutionContext, plan: DbtPlan) -> tuple[dict[str, tuple[dg.AssetKey, str]], list[str]]:
    """The selected models (unique id -> key and output name) and the `--select` for dbt (none: all)."""
    selected = context.selected_asset_keys
    outputs = {
        uid: (key, context.assets_def.get_output_name_for_asset_key(key))
        for uid, key in plan.model_keys.items()
        if key in selected
    }
    if len(outputs) == len(plan.model_keys):
        return outputs, []
    return outputs, sorted(plan.names[key] for key, _ in outputs.values())


def _lineage(
    context: AssetExecutionContext, mesh: Mesh, plan: DbtPlan, keys: list[dg.AssetKey], inputs: list[Input]
) -> dict[dg.AssetKey, AssetLineage]:
    """An OpenLineage run per selected model, started (with the versions of the products it read)."""
    lineage = {
        key: AssetLineage(
            mesh.project.home.path,
            plan.descriptor,
            plan.names[key],
            plan.inputs[key],
            context.run.run_id,
            context.job_name,
            plan.descriptor.product(plan.names[key]),
            context.retry_number,
            context.assets_def.metadata_by_key.get(key),
        )
        for key in keys
    }
    for run in lineage.values():
        run.inputs_read([i.grant for i in inputs])
        run.start()
    return lineage


def _build(context: AssetExecutionContext, mesh: Mesh, plan: DbtPlan, folder: Path, via: str) -> Iterator[Any]:
    run_id, domain = context.run.run_id, plan.domain
    run_dir = mesh.project.home.path / "dbt-runs" / run_id
    inputs = prepare_inputs(mesh, domain, plan.consumed, run_id, via)
    sandbox = step_sandbox(mesh, domain, folder, inputs)
    governed_sources(mesh, domain, inputs, sandbox)
    reads = record_inputs(mesh, inputs, run_id, via)
    target, env = dbt_target(mesh, domain, folder, sandbox, [p.name for p in plan.products.values()])
    parsed = parse_for_step(plan.project_dir, plan.profiles_dir, domain, target, run_dir / "logs")
    outputs, select = _selection(context, plan)
    lineage = _lineage(context, mesh, plan, [key for key, _ in outputs.values()], inputs)
    state = StepState()
    build = DbtBuild(plan.project_dir, plan.profiles_dir, target, env, run_dir)
    checks = {uid: key for uid, key in plan.test_checks.items() if key in context.selected_asset_check_keys}
    for event in run_build(build, parsed.manifest, select, outputs, checks, state.dbt, {"dbt/parse": parsed.mode}):
        key = getattr(event, "asset_key", None)
        if isinstance(event, dg.Output):
            key = context.asset_key_for_output(event.output_name)
            if key in plan.products:
                state.held[key] = event
                continue
            lineage[key].complete()
        if key in plan.products and _blocking_failure(event):
            state.blockers.setdefault(key, []).append(f"dbt test {event.check_name} failed")
        yield event
    yield from _audit_and_publish(context, mesh, plan, folder, sandbox, state, lineage, reads)
    _record_unbuilt(context, mesh, plan, state, lineage)
    _raise_failures(mesh, plan, state, run_id, via)


def _audit_and_publish(
    context: AssetExecutionContext,
    mesh: Mesh,
    plan: DbtPlan,
    folder: Path,
    sandbox: Sandbox,
    state: StepState,
    lineage: dict[dg.AssetKey, AssetLineage],
    reads: list[dict[str, Any]],
) -> Iterator[Any]:
    """Each product dbt built, producers first: audited, then published or kept as rejected."""
    domain, run_id = plan.domain, context.run.run_id
    order = sorted(state.held, key=lambda k: len(plan.upstream_products.get(plan.products[k].name, ())))
    failed: set[str] = set()
    views: dict[str, str] = {}
    with built_products(mesh, domain, folder, sandbox) as (con, built):
        for key in order:
            output, product = state.held[key], plan.products[key]
            blockers = list(state.blockers.get(key, []))
            blockers += [
                f"built from {domain}.{up}, which failed its blocking checks"
                for up in sorted(plan.upstream_products.get(product.name, set()) & failed)
            ]
            try:
                suites = plan.suites.get(product.name, ())
                result = audit_and_publish(
                    con, mesh, plan.descriptor, product, built(product.name), run_id, blockers, suites
                )
            except Exception as exc:
                lineage[key].fail(f"{type(exc).__name__}: {exc}")
                record_error(mesh, domain, product.name, run_id, exc, will_retry(exc, context.retry_number))
                raise
            if result.view_path:
                views[product.name] = result.view_path
            if result.published is None:
                lineage[key].fail("; ".join(result.blockers), result.evaluated)
                yield from result.check_results(key)
                state.failures.append(result)
                failed.add(product.name)
                continue
            yield dg.Output(
                value=output.value,
                output_name=output.output_name,
                metadata={**output.metadata, **materialization_metadata(result, reads)},
            )
            lineage[key].complete(result.evaluated, result.published.rows)
            yield from result.check_results(key)
    repoint_views(mesh, domain, views)


def _record_unbuilt(
    context: AssetExecutionContext,
    mesh: Mesh,
    plan: DbtPlan,
    state: StepState,
    lineage: dict[dg.AssetKey, AssetLineage],
) -> None:
    """Models dbt did not build: their lineage runs fail, and their owners hear of it."""
    run_id, reason = context.run.run_id, "; ".join(state.dbt.errors)
    for key in sorted((k for k in lineage if not lineage[k].done), key=str):
        lineage[key].fail(reason or "not built by dbt")
        if key not in plan.products:  # products not built are recorded below
            record_error(mesh, plan.domain, plan.names[key], run_id, RuntimeError(reason or "not built by dbt"))
    for key, product in plan.products.items():
        if key in context.selected_asset_keys and key not in state.held:
            record_error(mesh, plan.domain, product.name, run_id, RuntimeError(reason or "not built"))


def _raise_failures(mesh: Mesh, plan: DbtPlan, state: StepState, run_id: str, via: str) -> None:
    if state.failures:
        raise state.failures[0].failure()
    if not state.dbt.success:
        refused = step_failure(mesh, plan.domain, RuntimeError("\n".join(state.dbt.errors)), run_id, via)
        if isinstance(refused, dg.Failure) and refused.metadata.get("sandbox_refusals"):
            raise refused
        raise dg.Failure(
            description=f"dbt build failed for domain {plan.domain}: " + "; ".join(state.dbt.errors)[:2000],
            allow_retries=False,
        )
