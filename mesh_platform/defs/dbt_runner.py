"""Run dbt in the step's own process, from the manifest prepared at install time.

`mesh prepare` parses each project once (in-process, with the warehouse catalog named after the
domain) and keeps the parsed manifest next to `manifest.json`. A run hands it to `dbtRunner`, so
no dbt process starts and nothing is parsed: a domain's `dbt build` costs its SQL plus well under
a second, where a `dbt` CLI process per step cost 15-25 s here (start-up, imports, a full re-parse).
Results become Dagster events: an `Output` per built model, an `AssetCheckResult` per dbt test.
"""

from __future__ import annotations

import dataclasses
import os
import pickle
import shutil
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg

PICKLE = Path("target") / "mesh_manifest.pickle"
TARGETS = ("duckdb", "postgres")  # the outputs of dbt_projects/profiles.yml
# the platform's dbt package (its `mesh_product` materialization), installed into every project
PACKAGE = Path(__file__).resolve().parent.parent / "dbt_package"
PACKAGE_NAME = "mesh_platform"
PRODUCT_MATERIALIZATION = f"macro.{PACKAGE_NAME}.materialization_mesh_product_duckdb"


def target_path(target: str) -> Path:
    """Where a target's parse lives: `target/` for DuckDB (its manifest.json is what the Dagster
    definitions read), `target/<name>/` for the others (their adapter's macros differ)."""
    return Path("target") if target == "duckdb" else Path("target") / target


def pickle_path(target: str) -> Path:
    return target_path(target) / PICKLE.name


@contextmanager
def environment(values: Mapping[str, str]) -> Iterator[None]:
    previous = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def install_package(project_dir: Path) -> None:
    """Put the platform's dbt package in the project's `dbt_packages/`, where dbt loads every package."""
    installed = project_dir / "dbt_packages" / PACKAGE_NAME
    shutil.rmtree(installed, ignore_errors=True)
    shutil.copytree(PACKAGE, installed)


def parse_project(project_dir: Path, profiles_dir: Path, domain: str, target: str = "duckdb") -> None:
    """Parse once, at install time: writes the target's manifest.json and the runner's manifest."""
    from dbt.cli.main import dbtRunner

    install_package(project_dir)

    # the manifest names relations by catalog: the domain's <domain>.duckdb file, or its database
    env = {"MESH_DUCKDB_PATH": str(project_dir / "target" / f"{domain}.duckdb"), "MESH_PG_DBNAME": domain}
    args = ["parse", "--project-dir", str(project_dir), "--profiles-dir", str(profiles_dir), "--quiet"]
    args += ["--target", target, "--target-path", str(project_dir / target_path(target))]
    with environment(env):
        result = dbtRunner().invoke(args)
    if not result.success:
        raise RuntimeError(f"dbt parse ({target}) failed in {project_dir}: {result.exception}")
    (project_dir / pickle_path(target)).write_bytes(pickle.dumps(_manifest_state(result.result)))


def prepare_project(project_dir: Path, profiles_dir: Path, domain: str) -> None:
    """Parse for every warehouse target, so `MESH_WAREHOUSE` can change without a re-install."""
    for target in TARGETS:
        parse_project(project_dir, profiles_dir, domain, target)


def _manifest_state(manifest: Any) -> dict[str, Any]:
    # Manifest.__reduce_ex__ of dbt 1.11 passes its lookups in the wrong positions (it omits
    # `fixtures`), so an unpickled Manifest resolves no ref(); keep the public fields instead.
    return {f.name: getattr(manifest, f.name) for f in dataclasses.fields(manifest) if not f.name.startswith("_")}


def load_manifest_object(project_dir: Path, target: str = "duckdb") -> Any:
    from dbt.contracts.graph.manifest import Manifest

    path = project_dir / pickle_path(target)
    if not path.exists():
        raise FileNotFoundError(
            f"{path} is missing: the dbt manifests are prepared at install time; run `mesh prepare`"
        )
    state = pickle.loads(path.read_bytes())
    return Manifest(**state)


def build_products_into_files(manifest: Any, products: Iterable[str]) -> None:
    """Product models (unique ids) that dbt would build as tables are built instead with the
    platform's `mesh_product` materialization, straight into the Parquet file that is audited and
    published. Models with constraints keep their table, which enforces them; others (views,
    incrementals) are published by copy as before."""
    if PRODUCT_MATERIALIZATION not in manifest.macros:
        raise FileNotFoundError(
            "the dbt manifests were prepared without the platform's dbt package; run `mesh prepare`"
        )
    for uid in products:
        node = manifest.nodes.get(uid)
        if node is None or node.config.materialized != "table" or node.language != "sql":
            continue
        if node.constraints or any(column.constraints for column in node.columns.values()):
            continue
        node.config.materialized = "mesh_product"


@dataclass
class DbtEvents:
    success: bool
    errors: list[str]


def run_build(
    project_dir: Path,
    profiles_dir: Path,
    target: str,
    env: Mapping[str, str],
    run_dir: Path,
    select: list[str] | None,
    model_outputs: Mapping[str, tuple[dg.AssetKey, str]],
    test_checks: Mapping[str, dg.AssetCheckKey],
    events: DbtEvents,
    file_products: Iterable[str] = (),
) -> Iterator[Any]:
    """`file_products` (unique ids): product models to build into files (DuckDB target,
    with `MESH_PRODUCT_STAGING` and `MESH_PARQUET_OPTIONS` in `env`); see `build_products_into_files`."""
    from dbt.cli.main import dbtRunner

    manifest = load_manifest_object(project_dir, target)
    if file_products:
        build_products_into_files(manifest, file_products)
    args = [
        "build",
        "--target",
        target,
        "--project-dir",
        str(project_dir),
        "--profiles-dir",
        str(profiles_dir),
        "--quiet",
        # results come back as objects; manifest.json and run_results.json again per run cost
        # 0.2-0.3 s each time (the parsed manifest is the one prepared at install time)
        "--no-write-json",
        "--target-path",
        str(run_dir / "target"),
        "--log-path",
        str(run_dir / "logs"),
    ]
    if select:
        args += ["--select", *select]
    from mesh_platform.governance.dbt_sandbox import release

    try:
        with environment(env):
            result = dbtRunner(manifest=manifest).invoke(args)
    finally:
        release()
    events.success = bool(result.success)
    if result.exception is not None:
        events.errors.append(str(result.exception))
    for node_result in getattr(result.result, "results", None) or []:
        node, status = node_result.node, str(node_result.status)
        if node.unique_id in model_outputs:
            _, output_name = model_outputs[node.unique_id]
            if status == "success":
                yield dg.Output(
                    None,
                    output_name=output_name,
                    metadata={
                        "dbt/unique_id": node.unique_id,
                        "dbt/execution_time_s": round(node_result.execution_time or 0.0, 3),
                    },
                )
            else:
                events.errors.append(f"dbt model {node.name}: {status} {node_result.message or ''}".strip())
        elif node.unique_id in test_checks:
            check = test_checks[node.unique_id]
            severity = str(node.config.severity).upper()
            yield dg.AssetCheckResult(
                asset_key=check.asset_key,
                check_name=check.name,
                passed=status == "pass",
                severity=dg.AssetCheckSeverity.WARN if severity == "WARN" else dg.AssetCheckSeverity.ERROR,
                metadata={"dbt/status": status, "dbt/failures": node_result.failures or 0},
            )
