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
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg

PICKLE = Path("target") / "mesh_manifest.pickle"


def parse_project(project_dir: Path, profiles_dir: Path, domain: str) -> None:
    """Parse once, at install time: writes target/manifest.json and the runner's manifest."""
    from dbt.cli.main import dbtRunner

    previous = os.environ.get("MESH_DUCKDB_PATH")
    # the manifest names relations by catalog; the warehouse file of a domain is <domain>.duckdb
    os.environ["MESH_DUCKDB_PATH"] = str(project_dir / "target" / f"{domain}.duckdb")
    try:
        result = dbtRunner().invoke(
            ["parse", "--project-dir", str(project_dir), "--profiles-dir", str(profiles_dir), "--quiet"]
        )
    finally:
        if previous is None:
            os.environ.pop("MESH_DUCKDB_PATH", None)
        else:
            os.environ["MESH_DUCKDB_PATH"] = previous
    if not result.success:
        raise RuntimeError(f"dbt parse failed in {project_dir}: {result.exception}")
    (project_dir / PICKLE).write_bytes(pickle.dumps(_manifest_state(result.result)))


def _manifest_state(manifest: Any) -> dict[str, Any]:
    # Manifest.__reduce_ex__ of dbt 1.11 passes its lookups in the wrong positions (it omits
    # `fixtures`), so an unpickled Manifest resolves no ref(); keep the public fields instead.
    return {f.name: getattr(manifest, f.name) for f in dataclasses.fields(manifest) if not f.name.startswith("_")}


def load_manifest_object(project_dir: Path) -> Any:
    from dbt.contracts.graph.manifest import Manifest

    state = pickle.loads((project_dir / PICKLE).read_bytes())
    return Manifest(**state)


@dataclass
class DbtEvents:
    success: bool
    errors: list[str]


def run_build(
    project_dir: Path,
    profiles_dir: Path,
    warehouse: Path,
    run_dir: Path,
    select: list[str] | None,
    model_outputs: Mapping[str, tuple[dg.AssetKey, str]],
    test_checks: Mapping[str, dg.AssetCheckKey],
    events: DbtEvents,
) -> Iterator[Any]:
    from dbt.cli.main import dbtRunner

    manifest = load_manifest_object(project_dir)
    os.environ["MESH_DUCKDB_PATH"] = str(warehouse)
    args = [
        "build",
        "--project-dir",
        str(project_dir),
        "--profiles-dir",
        str(profiles_dir),
        "--quiet",
        "--target-path",
        str(run_dir / "target"),
        "--log-path",
        str(run_dir / "logs"),
    ]
    if select:
        args += ["--select", *select]
    result = dbtRunner(manifest=manifest).invoke(args)
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
