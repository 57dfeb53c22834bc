"""A domain's dbt project as one Dagster multi-asset: one `dbt build` per domain run.

The asset specs and the dbt tests' asset checks come from dagster-dbt's `@dbt_assets`, with the
mesh's translator: dbt models get the mesh's keys and policy (`asset_spec.mesh_spec`, the same as Python
assets), and a dbt source named after another domain maps to that domain's product key, so lineage
crosses domains. Each product also carries the mesh's checks (schema contract, expectations,
suites). What a step does with them is in `dbt_step`.
"""

import re
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
from dagster import AssetExecutionContext
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, dbt_assets

from mesh_platform.defs.asset_spec import MeshSpec, mesh_spec
from mesh_platform.defs.mesh_resource import MeshResource
from mesh_platform.defs.publish import TRANSIENT_RETRIES
from mesh_platform.descriptor.model import Descriptor, Product
from mesh_platform.descriptor.problems import Problem
from mesh_platform.project.locations import MeshProject
from mesh_platform.sdk import SuiteFn
from mesh_platform.storage.duckdb_warehouse import pool_for

UNIQUE_ID = "dagster_dbt/unique_id"  # the metadata key dagster-dbt gives each spec and check


class MeshDbtTranslator(DagsterDbtTranslator):
    """dbt resources as the mesh's assets; the mesh's spec of each model is kept in `mesh_specs`."""

    def __init__(
        self,
        descriptor: Descriptor,
        suites: Mapping[str, Sequence[SuiteFn]],
        resolve: Callable[[str], str] = str,
        streamed: Collection[str] = (),
    ):
        super().__init__(DagsterDbtTranslatorSettings(enable_code_references=False))
        self.descriptor, self.suites, self.resolve, self.streamed = descriptor, suites, resolve, streamed
        self.mesh_specs: dict[dg.AssetKey, MeshSpec] = {}

    def get_asset_spec(self, manifest: Mapping[str, Any], unique_id: str, project: Any) -> dg.AssetSpec:
        spec = super().get_asset_spec(manifest, unique_id, project)
        props = self.get_resource_props(manifest, unique_id)
        if props["resource_type"] == "source":
            # the major of the product the domain pins in its consumes, else the latest
            ref = self.resolve(f"{props['source_name']}.{props['name']}")
            return spec.replace_attributes(key=dg.AssetKey(ref.split(".")))
        if props["resource_type"] not in ("model", "seed", "snapshot"):
            return spec
        name = props["name"]
        product = self.descriptor.product(name)
        description, suites = props.get("description") or None, self.suites.get(name, ())
        planned = mesh_spec(self.descriptor, name, "dbt", product, description, suites, name in self.streamed)
        self.mesh_specs[planned.key] = planned
        return planned.applied_to(spec)


def dbt_problems(manifest: Mapping[str, Any], descriptor: Descriptor, file: str) -> list[Problem]:
    """Cross-domain dbt sources must be consumed products."""
    problems = []
    for source in manifest.get("sources", {}).values():
        producer, table = source["source_name"], source["name"]
        if producer == descriptor.domain:
            continue
        ref = f"{producer}.{table}"
        if ref not in descriptor.consumed_refs:
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


@dataclass(frozen=True)
class DbtPlan:
    """What a step of the domain's dbt asset needs to know of its project, from the manifest."""

    descriptor: Descriptor
    project_dir: Path
    profiles_dir: Path
    model_keys: dict[str, dg.AssetKey]  # unique id -> asset key (models, seeds, snapshots)
    names: dict[dg.AssetKey, str]  # asset key -> dbt name
    test_checks: dict[str, dg.AssetCheckKey]  # unique id of a dbt test -> its asset check
    products: dict[dg.AssetKey, Product]  # the product models
    upstream_products: dict[str, set[str]]
    consumed: list[str]  # the other domains' products the project reads (dbt sources)
    inputs: dict[dg.AssetKey, list[str]]  # what each model reads, as mesh refs
    suites: Mapping[str, Sequence[SuiteFn]]

    @property
    def domain(self) -> str:
        return self.descriptor.domain


def dbt_specs(
    translator: MeshDbtTranslator, manifest: Mapping[str, Any], name: str, exclude: Sequence[str] = ()
) -> tuple[list[dg.AssetSpec], list[dg.AssetCheckSpec]]:
    """The specs of every dbt model, seed and snapshot and the asset check of every dbt test, as
    dagster-dbt's `@dbt_assets` makes them with `translator` (its definition is only read), without
    the models named in `exclude` (older majors past their sunset: no longer built)."""

    @dbt_assets(manifest=manifest, dagster_dbt_translator=translator, name=name, exclude=" ".join(exclude) or None)
    def parsed(context: AssetExecutionContext):  # type: ignore[no-untyped-def]  # never executed
        raise NotImplementedError("the mesh's own multi-asset (build_dbt_assets) runs a dbt step")

    specs = [parsed.get_asset_spec(key) for key in sorted(parsed.keys, key=lambda k: k.to_user_string())]
    return specs, list(parsed.check_specs)


def dbt_plan(
    descriptor: Descriptor,
    project: MeshProject,
    manifest: Mapping[str, Any],
    specs: Sequence[dg.AssetSpec],
    checks: Sequence[dg.AssetCheckSpec],
    suites: Mapping[str, Sequence[SuiteFn]],
) -> DbtPlan:
    domain = descriptor.domain
    dbt_dir = project.dbt_project_dir(domain)
    assert dbt_dir is not None
    model_keys = {s.metadata[UNIQUE_ID]: s.key for s in specs}
    names = {key: manifest["nodes"][uid]["name"] for uid, key in model_keys.items()}
    products = {key: p for key, name in names.items() if (p := descriptor.product(name)) is not None}
    return DbtPlan(
        descriptor,
        dbt_dir,
        project.dbt_dir,
        model_keys,
        names,
        {c.metadata[UNIQUE_ID]: c.key for c in checks},
        products,
        product_upstreams(manifest, {p.name for p in products.values()}),
        [f"{s['source_name']}.{s['name']}" for s in manifest.get("sources", {}).values() if s["source_name"] != domain],
        {key: model_inputs(manifest, uid, domain) for uid, key in model_keys.items()},
        suites,
    )


def build_dbt_assets(
    descriptor: Descriptor,
    project: MeshProject,
    manifest: dict[str, Any],
    suites: Mapping[str, Sequence[SuiteFn]] | None = None,
    resolve: Callable[[str], str] = str,
    exclude: Sequence[str] = (),
    streamed: Collection[str] = (),
) -> dg.AssetsDefinition:
    """`resolve`: a consumed product (a dbt source) -> the major the domain reads; `exclude`: models
    not built (older majors past their sunset); `streamed`: models refreshed by the domain's
    micro-batches of landing files."""
    from mesh_platform.defs.dbt_step import run_dbt_step

    suites = suites or {}
    domain = descriptor.domain
    translator = MeshDbtTranslator(descriptor, suites, resolve, streamed)
    specs, dbt_checks = dbt_specs(translator, manifest, f"{domain}__dbt_parsed", exclude)
    plan = dbt_plan(descriptor, project, manifest, specs, dbt_checks, suites)
    mesh_checks = [check for key in plan.products for check in translator.mesh_specs[key].checks]

    @dg.multi_asset(
        name=f"{domain}__dbt",
        specs=specs,
        check_specs=[*dbt_checks, *mesh_checks],
        can_subset=True,
        pool=pool_for(domain),
        allow_arbitrary_check_specs=True,
        retry_policy=TRANSIENT_RETRIES,
    )
    def _dbt(context: AssetExecutionContext, mesh: MeshResource) -> Iterator[Any]:
        yield from run_dbt_step(context, mesh.mesh, plan)

    return _dbt
