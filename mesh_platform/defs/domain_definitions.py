"""Turn one domain (descriptor + Python code + dbt project) into Dagster definitions.

Every problem found is collected and raised together as a `MeshDefinitionError` naming file,
field and rule; a domain's failure is its own: other domains build their definitions apart.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import re
import sys
import threading
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import ModuleType
from typing import Any

import dagster as dg

from mesh_platform.contracts.load_gate import version_gate
from mesh_platform.defs.dbt_project import PACKAGE_NAME
from mesh_platform.defs.mesh_resource import RESOURCE_KEY, MeshResource
from mesh_platform.defs.publish import alert
from mesh_platform.defs.python_assets import build_python_asset
from mesh_platform.descriptor.model import Descriptor
from mesh_platform.descriptor.problems import MeshDefinitionError, Problem
from mesh_platform.governance.bypass import dbt_bypasses, python_bypasses
from mesh_platform.governance.code_scan import landing_claims, scan_domain
from mesh_platform.lineage.dagster_metadata import with_column_lineage
from mesh_platform.orchestration.automation import EVERY_DAEMON_LOOP_S
from mesh_platform.orchestration.freshness import freshness_sensor
from mesh_platform.orchestration.landing import landing_sensor
from mesh_platform.project.environment_secrets import rendered_secrets, secret_names
from mesh_platform.project.locations import LandingNameError
from mesh_platform.project.mesh import Mesh
from mesh_platform.sdk import AssetFn, SuiteFn
from mesh_platform.sdk.landing import landing_signatures
from mesh_platform.text import one_line

DOMAIN_PACKAGE = "mesh_domains"
_IMPORT_LOCK = threading.Lock()


@dataclass
class DomainParts:
    domain: str
    assets: list[dg.AssetsDefinition] = field(default_factory=list)
    jobs: list[dg.UnresolvedAssetJobDefinition] = field(default_factory=list)
    schedules: list[dg.ScheduleDefinition] = field(default_factory=list)
    sensors: list[dg.SensorDefinition] = field(default_factory=list)
    resources: dict[str, object] = field(default_factory=dict)
    warnings: list[Problem] = field(default_factory=list)  # reported by `mesh validate`, not blocking


def _import_domain_code(mesh: Mesh, domain: str) -> ModuleType | None:
    """The domain's code as on disk now. One domain at a time (`mesh run` loads the next domains'
    jobs in a background thread), and `sys.modules` is read from a copy: other threads' imports
    change it meanwhile."""
    folder = mesh.project.domain_dir(domain)
    if not (folder / "assets.py").exists():
        return None
    with _IMPORT_LOCK:
        if DOMAIN_PACKAGE not in sys.modules:
            package = ModuleType(DOMAIN_PACKAGE)
            package.__path__ = []
            sys.modules[DOMAIN_PACKAGE] = package
        name = f"{DOMAIN_PACKAGE}.{domain}"
        for loaded in [m for m in sys.modules.copy() if m == name or m.startswith(f"{name}.")]:
            del sys.modules[loaded]  # always the code on disk now, not an earlier import
        init = folder / "__init__.py"
        spec = importlib.util.spec_from_file_location(
            name, init if init.exists() else folder / "assets.py", submodule_search_locations=[str(folder)]
        )
        assert spec and spec.loader
        package = importlib.util.module_from_spec(spec)
        sys.modules[name] = package
        spec.loader.exec_module(package)
        return importlib.import_module(f"{name}.assets")


def _asset_fns(module: ModuleType | None, descriptor: Descriptor | None = None) -> list[AssetFn]:
    """The module's asset functions, each named as the asset it builds (with `descriptor`: an older
    major's `<product>_v<major>`)."""
    if module is None:
        return []
    fns = [v for v in vars(module).values() if isinstance(v, AssetFn)]
    if descriptor is None:
        return fns
    return [replace(fn, name=descriptor.built_name(fn.name, fn.major)) for fn in fns]


def _suites(module: ModuleType | None) -> dict[str, list[SuiteFn]]:
    suites: dict[str, list[SuiteFn]] = {}
    for value in vars(module).values() if module is not None else ():
        if isinstance(value, SuiteFn):
            suites.setdefault(value.product, []).append(value)
    return suites


def service_account(domain: str) -> str:
    """The Kubernetes service account a domain's runs use (deploy/domain-accounts.yaml): what a
    deployment grants that domain's storage and secrets to. Kubernetes names allow no `_`."""
    return "mesh-" + domain.replace("_", "-")


def run_tags(domain: str) -> dict[str, str]:
    """Tags of every run of a domain: its concurrency key, and for Dagster's K8sRunLauncher the
    domain's own service account for the run's pod (other launchers ignore it)."""
    pod = {"pod_spec_config": {"service_account_name": service_account(domain)}}
    return {"mesh/domain": domain, "dagster-k8s/config": json.dumps(pod)}


def code_access_problems(mesh: Mesh, descriptor: Descriptor) -> list[Problem]:
    """Direct access the domain's Python code has outside ctx, unless its descriptor declares it."""
    folder = mesh.project.domain_dir(descriptor.domain)
    declared = {(e.file, e.uses) for e in descriptor.code_exceptions}
    file = mesh.files[descriptor.domain]
    return [
        Problem(
            mesh.project.rel(folder / f.file),
            f"line {f.line}",
            "python-direct-access",
            f"`{f.uses}` gives {descriptor.domain}'s Python code {f.reaches} outside ctx; read and write through "
            f"ctx (ctx.con, ctx.read, ctx.source_dir), or declare it for review in {file}: "
            f"code_exceptions: [{{file: {f.file}, uses: {f.uses}, reason: ...}}]",
            line=f.line,
            domain=descriptor.domain,
        )
        for f in scan_domain(folder)
        if (f.file, f.uses) not in declared
    ]


def streamed_names(fns: list[AssetFn], models: Mapping[str, Sequence[str]]) -> set[str]:
    """The domain's assets refreshed by its micro-batches: the Python assets that ingest a landing
    folder and, within the domain, what reads them, Python or dbt (the batch job's selection).
    `models`: each dbt model's name -> the names of the domain's own assets it reads."""
    reads = {fn.name: set(fn.reads) for fn in fns} | {name: set(inputs) for name, inputs in models.items()}
    streamed = {fn.name for fn in fns if fn.landing}
    while grown := {name for name, read in reads.items() if name not in streamed and streamed & read}:
        streamed |= grown
    return streamed


def landing_problems(mesh: Mesh, domain: str, landing: list[str], code_file: str) -> list[Problem]:
    """A landing folder is one name under MESH_HOME/landing (a path there would open other folders to
    the domain's sandbox), and belongs to one domain: its sandbox may read it, no other's may."""
    problems = []
    claims: dict[str, int] | None = None
    for name in landing:
        try:
            mesh.project.home.landing_folder(name)
        except LandingNameError as exc:
            claims = landing_claims(mesh.project.domain_dir(domain)) if claims is None else claims
            problems.append(
                Problem(code_file, f"landing={name!r}", "landing-name", str(exc), line=claims.get(name), domain=domain)
            )
    for other in mesh.project.domain_names():
        if other == domain:
            continue
        for name, line in landing_claims(mesh.project.domain_dir(other)).items():
            if name in landing:
                problems.append(
                    Problem(
                        code_file,
                        f"landing={name!r}",
                        "landing-owned",
                        f"landing folder {name!r} is also declared by domain {other} "
                        f"({mesh.project.rel(mesh.project.domain_dir(other))}, line {line}); each landing folder "
                        "belongs to one domain",
                        domain=domain,
                    )
                )
    return problems


# where dbt names the file it could not parse: "(models/marts/x.sql)" or "reading patients: marts/x.yml"
_DBT_FILE = re.compile(r"\(([^()\s]+\.(?:sql|ya?ml|py|csv))\)|: ([^\s:]+\.(?:sql|ya?ml|py|csv))\b")


def parse_problem(mesh: Mesh, dbt_dir: Path, domain: str, message: str) -> Problem:
    """dbt could not parse the project: a problem in the file dbt names, when it names one."""
    file = mesh.project.rel(dbt_dir)
    for match in _DBT_FILE.finditer(message):
        named = match.group(1) or match.group(2)
        found = [p for p in (dbt_dir / named, dbt_dir / "models" / named) if p.is_file()]
        if found:
            file = mesh.project.rel(found[0])
            break
    return Problem(file, "", "dbt-parse", one_line(message)[:1500], domain=domain)


def dbt_manifest(mesh: Mesh, domain: str, dbt_dir: Path, file: str) -> dict[str, Any]:
    """The domain's dbt manifest, parsed again by dbt when a file of the project changed since it
    was made; a parse error is the domain's problem, in the file dbt names."""
    from mesh_platform.defs.dbt_project import DbtParseError, definitions_manifest

    try:
        return definitions_manifest(dbt_dir, mesh.project.dbt_dir, domain)
    except DbtParseError as exc:
        raise MeshDefinitionError([parse_problem(mesh, dbt_dir, domain, str(exc))]) from exc
    except (OSError, ValueError) as exc:
        raise MeshDefinitionError([Problem(file, "", "dbt-manifest", str(exc), domain=domain)]) from exc


# where the materializations dbt may run come from: dbt itself, dbt-duckdb, the platform's package
TRUSTED_DBT_PACKAGES = {"dbt", "dbt_duckdb", PACKAGE_NAME}
OWN_MATERIALIZATION = (
    "a materialization defined in a dbt project or package can run Python in the step's process "
    "(`statement(..., language='python')`), outside the sandbox, and replaces dbt's own of the same name; "
    "use dbt's materializations (table, view, incremental, ...) or the platform's mesh_product"
)

MATERIALIZATION_NAMED = (
    "dbt lets a macro whose package or name contains the word 'materialization' submit Python "
    "(`statement(..., language='python')`), which runs in the step's process, outside the sandbox; "
    "rename the macro (or the package) without that word"
)


RENDERED_SECRET = (
    "the project's parse rendered the value of the environment variable {name} (dbt's `env_var()`) into "
    "its manifest, a secret of the platform's environment; read settings with `var()`, or from an "
    "environment variable that holds no secret"
)


def _rendered_secrets(manifest: Mapping[str, Any]) -> list[str]:
    """The secret variables of this process's environment whose value the manifest holds."""
    if not secret_names(os.environ):
        return []
    return rendered_secrets(json.dumps(manifest, ensure_ascii=False))


def _macro_refusal(macro: Mapping[str, Any]) -> str | None:
    """Why the platform refuses a macro of the domain's project or of a package it installed, if it
    does. dbt submits Python (`statement(..., language='python')`) only from a macro it takes for a
    materialization, and it takes for one any macro whose id (`macro.<package>.<name>`) contains the
    word "materialization": a helper so named, called from a model, would run Python too."""
    name, package = str(macro.get("name", "")), str(macro.get("package_name", ""))
    if package in TRUSTED_DBT_PACKAGES:
        return None
    if name.startswith("materialization_"):
        return OWN_MATERIALIZATION
    if "materialization" in f"{package}.{name}".lower():
        return MATERIALIZATION_NAMED
    return None


def dbt_node_problems(mesh: Mesh, domain: str, dbt_dir: Path, manifest: Mapping[str, Any]) -> list[Problem]:
    """What the platform does not build from a dbt project: Python models, seeds and materializations
    of its own. dbt runs them in the step's process, where the sandbox does not see what they read
    (a Python model's `pandas.read_csv`, a seed's CSV file, which may be a link to anything, the
    Python a materialization submits)."""
    refused = {
        "python": (
            "dbt-python-model",
            "a dbt Python model runs in the step's process with its operating-system rights, outside the "
            f"sandbox; write it in SQL, or as a Python asset in domains/{domain}/assets.py, which the code scan reads",
        ),
        "seed": (
            "dbt-seed",
            "dbt reads a seed's CSV in the step's process, outside the sandbox, so the mesh does not build seeds; "
            f"put the file in the domain's sources (MESH_HOME/sources/{domain}/) and read it as a dbt source, "
            "or keep code lists in Python (mesh_platform.sdk.reference_data)",
        ),
    }
    problems = []
    for node in manifest.get("nodes", {}).values():
        kind = "seed" if node.get("resource_type") == "seed" else node.get("language")
        if kind in refused:
            rule, message = refused[kind]
            path = mesh.project.rel(dbt_dir / str(node.get("original_file_path", "")))
            problems.append(Problem(path, str(node.get("name", "")), rule, message, domain=domain))
    for name in _rendered_secrets(manifest):
        problems.append(
            Problem(mesh.project.rel(dbt_dir), name, "dbt-secret", RENDERED_SECRET.format(name=name), domain=domain)
        )
    for macro in manifest.get("macros", {}).values():
        if (refusal := _macro_refusal(macro)) is not None:
            path = mesh.project.rel(dbt_dir / str(macro.get("original_file_path", "")))
            problems.append(Problem(path, str(macro.get("name", "")), "dbt-materialization", refusal, domain=domain))
    return sorted(problems, key=lambda p: p.file)


def own_model_inputs(manifest: Mapping[str, Any], domain: str) -> dict[str, list[str]]:
    """Each dbt model's name -> the names of the domain's own assets (sources and models) it reads."""
    from mesh_platform.defs.dbt_assets import model_inputs

    nodes = manifest.get("nodes", {})
    own = f"{domain}."
    return {
        node["name"]: [ref.removeprefix(own) for ref in model_inputs(manifest, uid, domain) if ref.startswith(own)]
        for uid, node in nodes.items()
        if node["resource_type"] == "model"
    }


def build_domain(mesh: Mesh, domain: str) -> DomainParts:
    problems = list(mesh.problems_for(domain))
    descriptor = mesh.descriptors.get(domain)
    if descriptor is None or problems:
        raise MeshDefinitionError(problems)
    file = mesh.files[domain]
    code_file = mesh.project.rel(mesh.project.domain_dir(domain) / "assets.py")
    parts = DomainParts(domain, resources={RESOURCE_KEY: MeshResource.of(mesh.project)})
    # read before it is imported: importing runs the module's top level, which could already reach out
    if access := code_access_problems(mesh, descriptor):
        raise MeshDefinitionError(access)
    try:
        module = _import_domain_code(mesh, domain)
        fns, suites = _asset_fns(module, descriptor), _suites(module)
    except Exception as exc:
        detail = "".join(traceback.format_exception_only(exc)).strip()
        raise MeshDefinitionError([Problem(code_file, "", "domain-code-imports", detail, domain=domain)]) from exc

    others = set(mesh.project.domain_names()) - {domain}
    # SQL that names another domain's tables or files: DuckDB refuses it when it runs (the sandbox);
    # the scan says so earlier, as a warning
    parts.warnings += python_bypasses(mesh.project.domain_dir(domain) / "assets.py", code_file, domain, others)
    landing = sorted({fn.landing for fn in fns if fn.landing})
    problems += landing_problems(mesh, domain, landing, code_file)
    built: set[str] = set()
    dbt_dir = mesh.project.dbt_project_dir(domain)
    manifest = dbt_manifest(mesh, domain, dbt_dir, file) if dbt_dir is not None else None
    if dbt_dir is not None and manifest is not None and (refused := dbt_node_problems(mesh, domain, dbt_dir, manifest)):
        raise MeshDefinitionError(problems + refused)
    streamed = streamed_names(fns, own_model_inputs(manifest, domain) if manifest else {})
    resolve = functools.partial(mesh.resolve, domain)
    sunset = {p.name for p in descriptor.products if p.sunset_passed()}  # older majors no longer built
    for fn in fns:
        for ref in fn.reads:
            if "." in ref and ref not in descriptor.consumed_refs:
                problems.append(
                    Problem(
                        code_file,
                        fn.name,
                        "read-through-consumes",
                        f"{domain}.{fn.name} reads {ref}, which {file} does not list in consumes",
                        domain=domain,
                    )
                )
        if fn.role == "product" and descriptor.product(fn.name) is None:
            problems.append(
                Problem(
                    code_file,
                    fn.name,
                    "product-declared",
                    f"@product({fn.name!r}) is not a product declared in {file}",
                    domain=domain,
                )
            )
            continue
        built.add(fn.name)
        if fn.name in sunset:
            continue
        parts.assets.append(
            build_python_asset(fn, descriptor, suites.get(fn.name, ()), landing, resolve, fn.name in streamed)
        )

    if dbt_dir is not None and manifest is not None:
        # imported here: dagster_dbt is slow to import, a cost paid only by domains that have a dbt project
        from mesh_platform.defs.dbt_assets import asset_key_problems, build_dbt_assets, dbt_problems

        problems += dbt_problems(manifest, descriptor, file)
        parts.warnings += [
            replace(p, file=mesh.project.rel(dbt_dir / p.file)) for p in dbt_bypasses(manifest, domain, others, file)
        ]
        key_problems = asset_key_problems(manifest, dbt_dir, mesh.project, domain)
        problems += key_problems
        if not key_problems:  # Dagster refuses the specs of a name it cannot use
            models = {n["name"] for n in manifest.get("nodes", {}).values() if n["resource_type"] == "model"}
            excluded = sorted(sunset & models)
            parts.assets.append(
                build_dbt_assets(descriptor, mesh.project, manifest, suites, resolve, excluded, streamed)
            )
        built |= {n["name"] for n in manifest.get("nodes", {}).values() if n["resource_type"] == "model"}

    for name in sorted(set(suites) - {p.name for p in descriptor.products}):
        problems.append(
            Problem(
                code_file,
                name,
                "suite-product",
                f"@suite for {name!r}, which is not a product declared in {file}",
                domain=domain,
            )
        )
    for i, product in enumerate(descriptor.products):
        if product.name not in built:
            problems.append(
                Problem(
                    file,
                    f"products[{i}]",
                    "product-built",
                    f"product {product.pinned_ref!r} is declared but no @product function or dbt model builds it"
                    + (
                        f" (an older major: @product({product.family!r}, major={product.major}) or a dbt model "
                        f"named {product.name!r})"
                        if product.is_older_major
                        else ""
                    ),
                    domain=domain,
                )
            )
    if not problems:  # column lineage on the specs, and the version gate (mesh_platform.lineage, .contracts)
        problems += with_column_lineage(mesh, descriptor, fns, parts) + version_gate(mesh, descriptor)
    if problems:
        raise MeshDefinitionError(problems)

    job = dg.define_asset_job(
        domain,
        selection=dg.AssetSelection.groups(domain),
        description=f"Materialize every asset of the {domain} domain and run its checks.",
        executor_def=dg.in_process_executor,
        tags=run_tags(domain),
    )
    parts.jobs.append(job)
    _add_sensors(mesh, descriptor, fns, parts)
    if descriptor.schedule:
        try:
            schedule = dg.ScheduleDefinition(
                name=f"{domain}_schedule",
                job=job,
                cron_schedule=descriptor.schedule,
                default_status=dg.DefaultScheduleStatus.STOPPED,
            )
        except dg.DagsterInvalidDefinitionError as exc:
            message = f"Dagster cannot schedule {descriptor.schedule!r}: {one_line(str(exc))}"
            raise MeshDefinitionError([Problem(file, "schedule", "schedule-cron", message, domain=domain)]) from exc
        parts.schedules.append(schedule)
    return parts


def _add_sensors(mesh: Mesh, descriptor: Descriptor, fns: list[AssetFn], parts: DomainParts) -> None:
    """Event-driven updates: landing sensors, cross-domain automation, freshness alerts."""
    domain = descriptor.domain
    for fn in fns:
        if fn.landing is None:
            continue
        key = dg.AssetKey([domain, fn.name])
        batch_job = dg.define_asset_job(
            f"{domain}__{fn.name}_batch",
            selection=dg.AssetSelection.assets(key).downstream() & dg.AssetSelection.groups(domain),
            description=f"A micro-batch: {domain}.{fn.name} from new landing files, and what is built from it.",
            executor_def=dg.in_process_executor,
            tags=run_tags(domain),
        )
        parts.jobs.append(batch_job)
        folder = mesh.project.home.landing_folder(fn.landing)
        signatures = functools.partial(landing_signatures, folder)
        parts.sensors.append(landing_sensor(f"{domain}__{fn.name}_landing", folder, signatures, key, batch_job, domain))
    if descriptor.consumes:
        parts.sensors.append(
            dg.AutomationConditionSensorDefinition(
                f"{domain}_automation",
                target=dg.AssetSelection.groups(domain),
                default_status=dg.DefaultSensorStatus.RUNNING,
                minimum_interval_seconds=EVERY_DAEMON_LOOP_S,
                run_tags=run_tags(domain),
                description=f"Updates {domain} when the products it consumes are published and pass their "
                "blocking checks.",
            )
        )
    if any(p.freshness for p in descriptor.products):

        def notify(product: str, message: str) -> None:
            alert(mesh, domain, product, "freshness_breach", message, None)

        parts.sensors.append(freshness_sensor(descriptor, notify))


def definitions_from(parts: list[DomainParts]) -> dg.Definitions:
    return dg.Definitions(
        assets=[a for p in parts for a in p.assets],
        jobs=[j for p in parts for j in p.jobs],
        schedules=[s for p in parts for s in p.schedules],
        sensors=[s for p in parts for s in p.sensors],
        resources={k: v for p in parts for k, v in p.resources.items()},
        executor=dg.in_process_executor,
    )


def domain_definitions(domain: str, mesh: Mesh | None = None) -> dg.Definitions:
    """The code location of one domain (`domains/<domain>/definitions.py`)."""
    return definitions_from([build_domain(mesh or Mesh.load(), domain)])
