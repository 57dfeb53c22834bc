"""A domain's dbt project as dbt itself parses it: never stale, and re-parsed only where it changed.

dbt parses with its own partial parsing (`target/partial_parse.msgpack`, which keys every file by
its content): an edited model, macro, yml or `dbt_project.yml` is parsed again, the rest is not.
Two callers:

- definitions loading (`definitions_manifest`): a fingerprint of the project's files (their paths
  and contents, the platform's dbt package, `profiles.yml`, dbt's version) is kept beside
  `target/manifest.json`. When it differs, `dbt parse` runs (in a child process whose environment
  holds none of the platform's secrets: `dbt_apart`) and writes both, so
  `mesh validate`, `mesh run` and the UI after "Reload" see the edit with no other command. An
  unchanged project costs a hash of its files and does not import dbt.
- every dbt step (`parse_for_step`): `dbt parse` again (nothing to parse when nothing changed), and
  the step's `dbt build` gets the Manifest this parse returned (`dbtRunner(manifest=...)`), so it
  runs exactly the files on disk.

Every parse renders the profile the same way (the target's output with the warehouse named after
the domain and no sandbox), because dbt parses everything again when the profile's connection
settings change; the step's own settings (its warehouse file, its sandbox) apply to its build
alone. `mesh prepare` (run by `make install`) parses every project ahead of time, for speed only.
Parses of one project take turns (a lock file in its `target/`), across processes.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

from mesh_platform.project.environment_secrets import without_secrets

TARGETS = ("duckdb", "postgres")  # the outputs of dbt_projects/profiles.yml
# the platform's dbt package (its `mesh_product` materialization), installed into every project
PACKAGE = Path(__file__).resolve().parent.parent / "dbt_package"
PACKAGE_NAME = "mesh_platform"
MANIFEST = Path("target") / "manifest.json"
FINGERPRINT = Path("target") / "mesh_fingerprint"
LOCK = Path("target") / ".mesh_parse.lock"
# folders of a project that dbt writes, not reads
GENERATED = {"target", "logs", "dbt_packages"}
# bumped when what a parse is given changes, so that manifests made the old way are parsed again
PARSE_SCHEME = "3"


class DbtParseError(Exception):
    """dbt could not parse a project (its message names the file and the problem)."""


def target_path(target: str) -> Path:
    """Where a target's parse lives: `target/` for DuckDB (its manifest.json is what the Dagster
    definitions read), `target/<name>/` for the others (their adapter's macros differ)."""
    return Path("target") if target == "duckdb" else Path("target") / target


def parse_env(domain: str, target: str) -> dict[str, str]:
    """The values the profile is rendered with for a parse: the same for every parse of a project,
    wherever the project and MESH_HOME are, so dbt's partial parsing holds. Relations are named by
    catalog, which is the domain's name on both warehouses (its `<domain>.duckdb` file, its
    database); a parse opens no connection, so the file named here is never opened."""
    if target == "duckdb":
        return {"MESH_DUCKDB_PATH": f"{domain}.duckdb", "MESH_SANDBOX": ""}
    return {"MESH_PG_HOST": "127.0.0.1", "MESH_PG_PORT": "5432", "MESH_PG_USER": "mesh", "MESH_PG_DBNAME": domain}


@contextmanager
def environment(values: Mapping[str, str]) -> Iterator[None]:
    """`values` in the process environment while dbt runs (dbt renders its profile from it)."""
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


def _files(root: Path, skip: set[str]) -> Iterator[Path]:
    """Every file under `root`, in a stable order, without hidden folders or the top-level `skip`."""
    for folder, dirs, names in os.walk(root):
        top = Path(folder) == root
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "__pycache__" and not (top and d in skip))
        for name in sorted(names):
            if not name.startswith("."):
                yield Path(folder) / name


def install_package(project_dir: Path) -> None:
    """Put the platform's dbt package in the project's `dbt_packages/`, where dbt loads every
    package: each file written only when it differs, atomically, and files it no longer has removed."""
    installed = project_dir / "dbt_packages" / PACKAGE_NAME
    wanted = {path.relative_to(PACKAGE): path.read_bytes() for path in _files(PACKAGE, set())}
    for rel, content in wanted.items():
        path = installed / rel
        if path.is_file() and path.read_bytes() == content:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(content)
        os.replace(tmp, path)
    for path in list(_files(installed, set())) if installed.is_dir() else []:
        if path.relative_to(installed) not in wanted:
            path.unlink()


def fingerprint(project_dir: Path, profiles_dir: Path) -> str:
    """What a parse of the project depends on, by content."""
    digest = hashlib.sha256(f"{PARSE_SCHEME}\0{version('dbt-core')}\0".encode())
    for root, skip in ((project_dir, GENERATED), (PACKAGE, set())):
        for path in _files(root, skip):
            digest.update(f"{path.relative_to(root).as_posix()}\0".encode())
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    profiles = profiles_dir / "profiles.yml"
    digest.update(profiles.read_bytes() if profiles.exists() else b"")
    return digest.hexdigest()


@contextmanager
def parse_lock(project_dir: Path) -> Iterator[None]:
    path = project_dir / LOCK
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class _ParseMode:
    """How dbt parsed, from its events: `full`, `partial` (changed files only) or `skipped`."""

    def __init__(self) -> None:
        self.value = "full"

    def observe(self, event: Any) -> None:
        name = event.info.name
        if name == "PartialParsingEnabled" and self.value == "full":
            self.value = "partial"
        elif name == "PartialParsingSkipParsing":
            self.value = "skipped"
        elif name == "UnableToPartialParse":
            self.value = "full"


@dataclass(frozen=True)
class Parsed:
    manifest: Any  # dbt's Manifest, as its parse returned it
    mode: str  # how dbt parsed: full, partial or skipped


def parse(
    project_dir: Path,
    profiles_dir: Path,
    domain: str,
    target: str = "duckdb",
    write_json: bool = True,
    log_dir: Path | None = None,
) -> Parsed:
    """`dbt parse` in this process, with partial parsing. Call it holding `parse_lock`, in a step
    (`parse_for_step`: the secrets out of the environment); elsewhere `parse_apart`."""
    from dbt.cli.main import dbtRunner

    install_package(project_dir)
    args = parse_args(project_dir, profiles_dir, target, write_json, log_dir)
    mode = _ParseMode()
    with environment(parse_env(domain, target)):
        result = dbtRunner(callbacks=[mode.observe]).invoke(args)
    if not result.success:
        detail = str(result.exception or "dbt parse failed").strip()
        raise DbtParseError(f"dbt cannot parse {project_dir.name} ({target}): {detail}")
    return Parsed(result.result, mode.value)


def parse_args(
    project_dir: Path, profiles_dir: Path, target: str, write_json: bool = True, log_dir: Path | None = None
) -> list[str]:
    args = ["parse", "--project-dir", str(project_dir), "--profiles-dir", str(profiles_dir), "--quiet"]
    args += ["--target", target, "--target-path", str(project_dir / target_path(target))]
    if not write_json:
        args.append("--no-write-json")
    if log_dir is not None:
        args += ["--log-path", str(log_dir)]
    return args


def parse_apart(
    project_dir: Path, profiles_dir: Path, domain: str, target: str = "duckdb", write_json: bool = True
) -> None:
    """`dbt parse` writing the target's manifest, in a child process without the environment's
    secrets (`dbt_apart`): what the project renders (its manifest, a parse error's message) never
    holds one. Call it holding `parse_lock`."""
    from mesh_platform.defs.dbt_apart import invoke_apart

    install_package(project_dir)
    result = invoke_apart(parse_args(project_dir, profiles_dir, target, write_json), parse_env(domain, target))
    if not result.success:
        detail = (result.error or "dbt parse failed").strip()
        raise DbtParseError(f"dbt cannot parse {project_dir.name} ({target}): {detail}")


def _stamp(project_dir: Path, value: str) -> None:
    path = project_dir / FINGERPRINT
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(value)
    os.replace(tmp, path)


def _fresh(project_dir: Path, current: str) -> bool:
    try:
        return (project_dir / MANIFEST).exists() and (project_dir / FINGERPRINT).read_text() == current
    except OSError:
        return False


def definitions_manifest(project_dir: Path, profiles_dir: Path, domain: str) -> dict[str, Any]:
    """`target/manifest.json` as of the files on disk: parsed again first if any changed."""
    with parse_lock(project_dir):
        current = fingerprint(project_dir, profiles_dir)
        if not _fresh(project_dir, current):
            parse_apart(project_dir, profiles_dir, domain)
            _stamp(project_dir, current)
        return json.loads((project_dir / MANIFEST).read_text())


def parse_for_step(project_dir: Path, profiles_dir: Path, domain: str, target: str, log_dir: Path) -> Parsed:
    """The project as a step builds it. On DuckDB, a parse that found changes also refreshes the
    manifest the definitions read."""
    with parse_lock(project_dir), without_secrets():  # the run worker's main thread: see the module
        current = fingerprint(project_dir, profiles_dir)
        refresh = target == "duckdb" and not _fresh(project_dir, current)
        parsed = parse(project_dir, profiles_dir, domain, target, write_json=refresh, log_dir=log_dir)
        if refresh:
            _stamp(project_dir, current)
        return parsed


def prepare_project(project_dir: Path, profiles_dir: Path, domain: str) -> None:
    """Parse for every warehouse target ahead of time (`mesh prepare`), so that the first definitions
    load and the first step of each target find dbt's parse done (its partial-parsing state too)."""
    with parse_lock(project_dir):
        current = fingerprint(project_dir, profiles_dir)
        for target in TARGETS:
            parse_apart(project_dir, profiles_dir, domain, target, write_json=target == "duckdb")
        _stamp(project_dir, current)
