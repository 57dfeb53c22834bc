"""The compiled SQL of a domain's dbt models, rendered by dbt itself, for column lineage.

dbt renders each model's Jinja (`ref`, `source`, macros such as `last_by` or `dbt.datediff`, with
the DuckDB target's dispatch) in `dbt compile`, run in a child process without the environment's
secrets (`mesh_platform.defs.dbt_apart`) against an
in-memory DuckDB (nothing is read or written in any warehouse; `--no-introspect`). This is platform
code reading the project's files at validate or load time, not a domain step, so it runs outside
the step sandbox. The result is kept in the project's `target/mesh_lineage/models.json`, keyed by a
hash of the project's files and the dbt version: compiling costs seconds (a parse of the project),
reading the kept result milliseconds, and it is compiled again only when a file changes.
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LINEAGE_TARGET = Path("target") / "mesh_lineage"
CACHE_FILE = "models.json"
FORMAT = 1


@dataclass(frozen=True)
class DbtModel:
    name: str
    sql: str | None  # None: dbt did not compile it (a Python model, or an error)
    file: str  # relative to the dbt project
    depends_on: tuple[str, ...]  # mesh refs of what it reads: `<domain>.<model>` or `<source>.<table>`
    columns: tuple[str, ...]  # columns its yml declares


@dataclass(frozen=True)
class DbtProjectSql:
    models: dict[str, DbtModel]
    relations: dict[tuple[str, str], str]  # (schema, identifier) -> mesh ref
    error: str | None = None  # why the project did not compile


def project_fingerprint(project_dir: Path, profiles_dir: Path) -> str:
    """A hash of every file dbt reads to compile the project (not what dbt writes), and dbt's version:
    the fingerprint definitions loading keeps beside the project's manifest."""
    from mesh_platform.defs.dbt_project import fingerprint

    return f"{FORMAT}:{fingerprint(project_dir, profiles_dir)}"


def _relation_key(relation_name: str | None) -> tuple[str, str] | None:
    if not relation_name:
        return None
    parts = [p.strip().strip('"').lower() for p in relation_name.split(".")]
    return (parts[-2] if len(parts) > 1 else "", parts[-1])


def _from_manifest(manifest: dict[str, Any], domain: str) -> DbtProjectSql:
    relations: dict[tuple[str, str], str] = {}
    refs: dict[str, str] = {}
    for uid, source in manifest.get("sources", {}).items():
        ref = f"{source['source_name']}.{source['name']}"
        refs[uid] = ref
        if (key := _relation_key(source.get("relation_name"))) is not None:
            relations[key] = ref
    nodes = {uid: n for uid, n in manifest.get("nodes", {}).items() if n["resource_type"] == "model"}
    for uid, node in nodes.items():
        refs[uid] = f"{domain}.{node['name']}"
        if (key := _relation_key(node.get("relation_name"))) is not None:
            relations[key] = refs[uid]
    models = {
        node["name"]: DbtModel(
            node["name"],
            node.get("compiled_code") if node.get("language", "sql") == "sql" else None,
            node["original_file_path"],
            tuple(refs[p] for p in node["depends_on"]["nodes"] if p in refs),
            tuple(node.get("columns", {})),
        )
        for node in nodes.values()
    }
    return DbtProjectSql(models, relations)


def _to_json(project: DbtProjectSql) -> dict[str, Any]:
    return {
        "models": {
            n: {**m.__dict__, "depends_on": list(m.depends_on), "columns": list(m.columns)}
            for n, m in project.models.items()
        },
        "relations": [[s, i, ref] for (s, i), ref in sorted(project.relations.items())],
        "error": project.error,
    }


def _from_json(data: dict[str, Any]) -> DbtProjectSql:
    models = {
        n: DbtModel(m["name"], m["sql"], m["file"], tuple(m["depends_on"]), tuple(m["columns"]))
        for n, m in data["models"].items()
    }
    return DbtProjectSql(models, {(s, i): ref for s, i, ref in data["relations"]}, data.get("error"))


def _compile(project_dir: Path, profiles_dir: Path, domain: str, target_path: Path) -> DbtProjectSql:
    from mesh_platform.defs.dbt_apart import invoke_apart

    with tempfile.TemporaryDirectory(prefix="mesh-lineage-") as scratch:
        args = ["compile", "--project-dir", str(project_dir), "--profiles-dir", str(profiles_dir)]
        args += ["--target", "duckdb", "--target-path", str(target_path), "--log-path", scratch]
        args += ["--quiet", "--no-introspect", "--select", "resource_type:model"]
        # an in-memory database of the domain's name: no warehouse is opened, no sandbox applies;
        # a child process without the environment's secrets (`env_var()` cannot render them)
        env = {"MESH_DUCKDB_PATH": ":memory:", "MESH_SANDBOX": ""}
        result = invoke_apart(args, env)
    if not result.success:
        reason = (result.error or "dbt compile failed").splitlines()[0][:500]
        return DbtProjectSql({}, {}, f"dbt compile failed: {reason}")
    manifest = json.loads((target_path / "manifest.json").read_text())
    return _from_manifest(manifest, domain)


def compiled_project(project_dir: Path, profiles_dir: Path, domain: str) -> DbtProjectSql:
    """The project's models with their compiled SQL: kept from the last compile while no file of the
    project changed, else compiled now (one process at a time per project)."""
    target_path = project_dir / LINEAGE_TARGET
    cache = target_path / CACHE_FILE
    key = project_fingerprint(project_dir, profiles_dir)
    cached = _read_cache(cache, key)
    if cached is not None:
        return cached
    target_path.mkdir(parents=True, exist_ok=True)
    with open(target_path / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        cached = _read_cache(cache, key)  # compiled by another process while this one waited
        if cached is not None:
            return cached
        project = _compile(project_dir, profiles_dir, domain, target_path)
        tmp = cache.with_name(f".{CACHE_FILE}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"key": key, **_to_json(project)}))
        os.replace(tmp, cache)
    return project


def _read_cache(cache: Path, key: str) -> DbtProjectSql | None:
    try:
        data = json.loads(cache.read_text())
    except (OSError, ValueError):
        return None
    return _from_json(data) if data.get("key") == key else None
