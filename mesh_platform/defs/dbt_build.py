"""A dbt step's `dbt build`, in the step's own process, as Dagster events.

The step parses first (`dbt_project.parse_for_step`: dbt's partial parsing, nothing to do when no
file changed) and hands the Manifest that parse returned to `dbtRunner`, so no `dbt` process starts
and the build runs what is on disk. Results become Dagster events: an `Output` per built model, an
`AssetCheckResult` per dbt test.

Product models declare the platform's `mesh_product` materialization (in their project's
`dbt_project.yml`); the macro (`mesh_platform/dbt_package/`) builds a product straight into the
Parquet file the platform audits and publishes when the step names it in `MESH_PRODUCT_MODELS`
on DuckDB, and falls back to dbt's `table` otherwise (another warehouse, a model with constraints,
dbt run by hand).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg

from mesh_platform.defs.dbt_project import environment
from mesh_platform.project.environment_secrets import without_secrets


@dataclass
class DbtEvents:
    success: bool = False
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class DbtBuild:
    """One step's `dbt build`: the project, the target and the profile values of this step."""

    project_dir: Path
    profiles_dir: Path
    target: str
    env: Mapping[str, str]
    run_dir: Path  # the step's compiled SQL and dbt's log

    def args(self, select: list[str]) -> list[str]:
        args = ["build", "--target", self.target, "--project-dir", str(self.project_dir)]
        args += ["--profiles-dir", str(self.profiles_dir), "--quiet"]
        # results come back as objects: no manifest.json or run_results.json to write per run
        args += ["--no-write-json", "--target-path", str(self.run_dir / "target")]
        args += ["--log-path", str(self.run_dir / "logs")]
        return args + (["--select", *select] if select else [])


def run_build(
    build: DbtBuild,
    manifest: Any,
    select: list[str],
    model_outputs: Mapping[str, tuple[dg.AssetKey, str]],
    test_checks: Mapping[str, dg.AssetCheckKey],
    events: DbtEvents,
    metadata: Mapping[str, Any] | None = None,
) -> Iterator[Any]:
    """`manifest`: the Manifest the step's parse returned. `select`: model names (empty: all).
    `metadata`: added to every model's output."""
    from dbt.cli.main import dbtRunner

    from mesh_platform.governance.dbt_sandbox import release

    try:
        with environment(build.env), without_secrets():  # `env_var()` in a model cannot reach them
            result = dbtRunner(manifest=manifest).invoke(build.args(select))
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
                        **(metadata or {}),
                        "dbt/unique_id": node.unique_id,
                        "dbt/materialized": str(node.config.materialized),
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
