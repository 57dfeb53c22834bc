"""A domain's dbt project as one Dagster multi-asset: one `dbt build` per domain run.

The translator gives dbt models the mesh's keys and policy; a dbt source named after another
domain maps to that domain's product key, so lineage crosses domains. Before dbt runs, the
platform creates the governed views those sources read; after it, each product is audited
(dbt tests + schema contract + GX expectations) and published only if nothing blocks.
"""

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import dagster as dg
from dagster import AssetExecutionContext
from dagster_dbt import (
    DagsterDbtTranslator,
    DagsterDbtTranslatorSettings,
)
from dagster_dbt.asset_utils import build_dbt_specs

from mesh_platform.checks.specs import check_specs
from mesh_platform.defs.dbt_runner import PICKLE, DbtEvents, run_build
from mesh_platform.defs.publish import (
    TRANSIENT_RETRIES,
    audit_and_publish,
    materialization_metadata,
    record_error,
    step_failure,
    will_retry,
)
from mesh_platform.defs.specs import internal_attributes, product_attributes
from mesh_platform.defs.warehouse_io import (
    built_products,
    dbt_target,
    governed_sources,
    prepare_inputs,
    record_inputs,
    repoint_views,
    step_sandbox,
)
from mesh_platform.descriptor.model import Descriptor
from mesh_platform.descriptor.problems import Problem
from mesh_platform.mesh import Mesh
from mesh_platform.openlineage import AssetLineage
from mesh_platform.orchestration.automation import automation_attributes
from mesh_platform.project import MeshProject
from mesh_platform.sdk import SuiteFn
from mesh_platform.store import staging
from mesh_platform.warehouse import pool_for

MANIFEST = Path("target") / "manifest.json"


class MeshDbtTranslator(DagsterDbtTranslator):
    def __init__(self, descriptor: Descriptor):
        super().__init__(DagsterDbtTranslatorSettings(enable_code_references=False))
        self.descriptor = descriptor

    def get_asset_spec(self, manifest: Mapping[str, Any], unique_id: str, project: Any) -> dg.AssetSpec:
        spec = super().get_asset_spec(manifest, unique_id, project)
        props = self.get_resource_props(manifest, unique_id)
        if props["resource_type"] == "source":
            return spec.replace_attributes(key=dg.AssetKey([props["source_name"], props["name"]]))
        if props["resource_type"] not in ("model", "seed", "snapshot"):
            return spec
        name = props["name"]
        product = self.descriptor.product(name)
        if product is not None:
            attributes = product_attributes(self.descriptor, product, "dbt")
        else:
            attributes = internal_attributes(self.descriptor, name, props.get("description") or None, "dbt")
        metadata = {**spec.metadata, **attributes.pop("metadata")}
        return spec.replace_attributes(
            **attributes, **automation_attributes(self.descriptor, product), metadata=metadata
        )


def load_manifest(project: MeshProject, domain: str) -> dict[str, Any]:
    dbt_dir = project.dbt_project_dir(domain)
    assert dbt_dir is not None
    path = dbt_dir / MANIFEST
    if not path.exists() or not (dbt_dir / PICKLE).exists():
        raise FileNotFoundError(
            f"{project.rel(path)} is missing: the dbt manifest is prepared at install time; run `mesh prepare`"
        )
    return json.loads(path.read_text())


def dbt_problems(manifest: Mapping[str, Any], descriptor: Descriptor, file: str) -> list[Problem]:
    """Cross-domain dbt sources must be consumed products."""
    problems = []
    for source in manifest.get("sources", {}).values():
        producer, table = source["source_name"], source["name"]
        if producer == descriptor.domain:
            continue
        ref = f"{producer}.{table}"
        if ref not in descriptor.consumes:
            problems.append(
                Problem(
                    file,
                    "consumes",
                    "read-through-consumes",
                    f"dbt source {ref} (in {source['original_file_path']}) reads another domain's product "
                    f"that {descriptor.domain} does not list in consumes",
                    domain=descriptor.domain,
                )
            )
    return problems


# what Dagster accepts in the names it derives from an asset key (op inputs, outputs)
ASSET_KEY_PART = re.compile(r"^[A-Za-z0-9_]+$")


def _line_in(path: Path, name: str) -> int | None:
    """The first line of a dbt project file that mentions `name`."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return None
    return next((i for i, line in enumerate(lines, 1) if name in line), None)


def asset_key_problems(manifest: Mapping[str, Any], dbt_dir: Path, project: MeshProject, domain: str) -> list[Problem]:
    """dbt names that become parts of Dagster asset keys (sources, models, seeds, snapshots) and that
    Dagster would refuse, as problems instead of an error while definitions load."""
    problems = []
    named = [(s, "source", (s["source_name"], s["name"])) for s in manifest.get("sources", {}).values()]
    named += [
        (n, n["resource_type"], (n["name"],))
        for n in manifest.get("nodes", {}).values()
        if n["resource_type"] in ("model", "seed", "snapshot")
    ]
    for node, kind, parts in named:
        bad = [p for p in parts if not ASSET_KEY_PART.match(p)]
        if not bad:
            continue
        path = dbt_dir / node["original_file_path"]
        problems.append(
            Problem(
                project.rel(path),
                ".".join(parts),
                "asset-key-name",
                f"dbt {kind} {'.'.join(parts)!r}: {bad[0]!r} cannot be part of a Dagster asset key (use letters, "
                "digits and underscores"
                + ("; the table's own name can go in `identifier:`)" if kind == "source" else ")"),
                _line_in(path, bad[0]),
                domain,
            )
        )
    return problems


def _blocking_failure(event: object) -> bool:
    """A dbt test of error severity that failed: it blocks publication like any error check."""
    return isinstance(event, dg.AssetCheckResult) and not event.passed and event.severity == dg.AssetCheckSeverity.ERROR


def model_inputs(manifest: Mapping[str, Any], uid: str, domain: str) -> list[str]:
    """What a model reads, as mesh refs: consumed products (dbt sources) and own models."""
    refs = []
    for parent in manifest["nodes"][uid]["depends_on"]["nodes"]:
        if parent in manifest.get("sources", {}):
            source = manifest["sources"][parent]
            refs.append(f"{source['source_name']}.{source['name']}")
        elif parent in manifest["nodes"]:
            refs.append(f"{domain}.{manifest['nodes'][parent]['name']}")
    return refs


def product_upstreams(manifest: Mapping[str, Any], products: set[str]) -> dict[str, set[str]]:
    """For each product model, the other product models of this project it is built from."""
    nodes = manifest.get("nodes", {})
    by_id = {uid: n["name"] for uid, n in nodes.items() if n["resource_type"] == "model"}
    result = {}
    for uid, name in by_id.items():
        if name not in products:
            continue
        seen, stack = set(), list(nodes[uid]["depends_on"]["nodes"])
        while stack:
            parent = stack.pop()
            if parent in seen or parent not in by_id:
                continue
            seen.add(parent)
            stack.extend(nodes[parent]["depends_on"]["nodes"])
        result[name] = {by_id[p] for p in seen} & products
    return result


def build_dbt_assets(
    descriptor: Descriptor,
    project: MeshProject,
    manifest: dict[str, Any],
    suites: Mapping[str, Sequence[SuiteFn]] | None = None,
) -> dg.AssetsDefinition:
    suites = suites or {}
    domain = descriptor.domain
    translator = MeshDbtTranslator(descriptor)
    specs, dbt_check_specs = build_dbt_specs(
        translator=translator,
        manifest=manifest,
        select="fqn:*",
        exclude="",
        selector="",
        io_manager_key=None,
        project=None,
    )
    product_keys = {
        dg.AssetKey([domain, p.name]): p
        for p in descriptor.products
        if any(s.key.path == [domain, p.name] for s in specs)
    }
    mesh_checks = [c for p in product_keys.values() for c in check_specs(descriptor, p, suites.get(p.name, ()))]
    upstream_products = product_upstreams(manifest, {p.name for p in product_keys.values()})
    consumed = [s for s in manifest.get("sources", {}).values() if s["source_name"] != domain]
    model_keys = {s.metadata["dagster_dbt/unique_id"]: s.key for s in specs}
    test_checks = {c.metadata["dagster_dbt/unique_id"]: c.key for c in dbt_check_specs}
    names = {s.key: manifest["nodes"][s.metadata["dagster_dbt/unique_id"]]["name"] for s in specs}
    dbt_dir = project.dbt_project_dir(domain)
    assert dbt_dir is not None
    via = f"{domain} (dbt)"

    @dg.multi_asset(
        name=f"{domain}__dbt",
        specs=specs,
        check_specs=[*dbt_check_specs, *mesh_checks],
        can_subset=True,
        pool=pool_for(domain),
        allow_arbitrary_check_specs=True,
        retry_policy=TRANSIENT_RETRIES,
    )
    def _dbt(context: AssetExecutionContext) -> Iterator[Any]:
        mesh = Mesh.load(MeshProject.discover(project.root))
        try:
            with staging(mesh.project.home, domain, context.run.run_id) as folder:
                yield from _build(context, mesh, folder)
        except Exception as exc:
            failure = step_failure(mesh, domain, exc, context.run.run_id, via)
            if failure is exc:
                raise
            raise failure from exc

    def _build(context: AssetExecutionContext, mesh: Mesh, folder: Path) -> Iterator[Any]:
        run_id = context.run.run_id
        home = mesh.project.home
        refs = [f"{source['source_name']}.{source['name']}" for source in consumed]
        inputs = prepare_inputs(mesh, domain, refs, run_id, via)
        sandbox = step_sandbox(mesh, domain, folder, inputs)
        governed_sources(mesh, domain, inputs, sandbox)
        reads = record_inputs(mesh, inputs, run_id, via)
        target, target_env = dbt_target(mesh, domain, folder, sandbox)
        selected = context.selected_asset_keys
        outputs = {
            uid: (key, context.assets_def.get_output_name_for_asset_key(key))
            for uid, key in model_keys.items()
            if key in selected
        }
        select = None if len(outputs) == len(model_keys) else sorted(names[k] for k, _ in outputs.values())
        lineage = {
            key: AssetLineage(
                home.path,
                descriptor,
                names[key],
                model_inputs(manifest, uid, domain),
                run_id,
                context.job_name,
                descriptor.product(names[key]),
                context.retry_number,
                context.assets_def.metadata_by_key.get(key),
            )
            for uid, (key, _) in outputs.items()
        }
        for run in lineage.values():
            run.inputs_read([i.grant for i in inputs])
            run.start()
        dbt_run = DbtEvents(success=False, errors=[])
        held: dict[dg.AssetKey, dg.Output] = {}
        dbt_blockers: dict[dg.AssetKey, list[str]] = {}
        stream = run_build(
            dbt_dir,
            mesh.project.dbt_dir,
            target,
            target_env,
            home.path / "dbt-runs" / run_id,
            select,
            outputs,
            {uid: key for uid, key in test_checks.items() if key in context.selected_asset_check_keys},
            dbt_run,
            [uid for uid, key in model_keys.items() if key in product_keys] if target == "duckdb" else (),
        )
        for event in stream:
            key = getattr(event, "asset_key", None)
            if isinstance(event, dg.Output):
                key = context.asset_key_for_output(event.output_name)
                if key in product_keys:
                    held[key] = event
                    continue
                lineage[key].complete()
            if key in product_keys and _blocking_failure(event):
                dbt_blockers.setdefault(key, []).append(f"dbt test {event.check_name} failed")
            yield event
        failures, failed_names = [], set()
        order = sorted(held, key=lambda k: len(upstream_products.get(product_keys[k].name, ())))
        views: dict[str, str] = {}
        with built_products(mesh, domain, folder, sandbox) as (con, built):
            for key in order:
                output, product = held[key], product_keys[key]
                blockers = list(dbt_blockers.get(key, []))
                blockers += [
                    f"built from {domain}.{up}, which failed its blocking checks"
                    for up in sorted(upstream_products.get(product.name, set()) & failed_names)
                ]
                try:
                    result = audit_and_publish(
                        con,
                        mesh,
                        descriptor,
                        product,
                        built(product.name),
                        run_id,
                        blockers,
                        suites.get(product.name, ()),
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
                    failures.append(result)
                    failed_names.add(product.name)
                    continue
                yield dg.Output(
                    value=output.value,
                    output_name=output.output_name,
                    metadata={**output.metadata, **materialization_metadata(result, [r for r in reads])},
                )
                lineage[key].complete(result.evaluated, result.published.rows)
                yield from result.check_results(key)
        repoint_views(mesh, domain, views)
        for key in sorted((k for k in lineage if not lineage[k].done), key=str):
            reason = "; ".join(dbt_run.errors) or "not built by dbt"
            lineage[key].fail(reason)
            if key not in product_keys:  # products not built are recorded below
                record_error(mesh, domain, names[key], run_id, RuntimeError(reason))
        for key, product in product_keys.items():
            if key in selected and key not in held:
                record_error(mesh, domain, product.name, run_id, RuntimeError("; ".join(dbt_run.errors) or "not built"))
        if failures:
            raise failures[0].failure()
        if not dbt_run.success:
            refused = step_failure(mesh, domain, RuntimeError("\n".join(dbt_run.errors)), run_id, via)
            if isinstance(refused, dg.Failure) and refused.metadata.get("sandbox_refusals"):
                raise refused
            raise dg.Failure(
                description=f"dbt build failed for domain {domain}: " + "; ".join(dbt_run.errors)[:2000],
                allow_retries=False,
            )

    return _dbt
