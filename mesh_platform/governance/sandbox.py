"""The sandbox every domain step's SQL runs in: a DuckDB connection locked to what the domain owns.

DuckDB enforces it, not a scanner. The platform opens the step's connection on the domain's own
warehouse file, then sets (in this order, because DuckDB refuses the allow-lists before the
database has started):

- `allowed_directories`: the domain's source extracts (`sources/<domain>/`), the landing folders
  its assets declare (`landing/<folder>/`) and the step's staging folder
  (`staging/<domain>/<run>/`), read and write;
- `allowed_paths`: exact files: the current published version of each of the domain's own
  products (its warehouse views read them) and the governed projections the platform made for
  the products this step may consume (`mesh_platform.governance.projection`);
- `enable_external_access = false`: every other file, glob, `ATTACH`, `COPY`, URL, extension
  install or load and secret store fails at execution, whatever the SQL looks like (a literal, a
  concatenation, a Jinja variable, a macro: DuckDB checks the path it is asked to open);
- `lock_configuration = true`: the step cannot `SET` or `RESET` any of it back.

DuckDB adds the warehouse file, its write-ahead log and its spill folder to the lists itself. dbt
connections get the same sandbox through the dbt-duckdb plugin `mesh_platform.governance.dbt_sandbox`,
which reads the spec from `SANDBOX_ENV`. A refusal is turned into an error that names the domain,
what it tried to reach and the access agreement it would need (`explain`).
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb

from mesh_platform.project.locations import MeshHome
from mesh_platform.sql.syntax import literal
from mesh_platform.storage.duckdb_warehouse import connect_warehouse, memory_limit

SANDBOX_ENV = "MESH_SANDBOX"


def _directory(path: Path) -> str:
    """A directory as DuckDB matches it: by prefix, so it must end with a separator
    (`sources/patients` alone would also allow `sources/patients_archive`)."""
    return str(path).rstrip("/") + "/"


class SandboxPathError(ValueError):
    """A folder the sandbox would allow that leads elsewhere (a link)."""


def _not_a_link(home: MeshHome, folder: Path) -> None:
    """DuckDB follows links in `allowed_directories`: a folder that is a link (or is under one)
    inside MESH_HOME would allow its target, which could be another domain's data or MESH_HOME's
    keys. A folder must be where it says, relative to MESH_HOME as resolved."""
    if folder.is_relative_to(home.path):
        real = home.path.resolve() / folder.relative_to(home.path)
    else:  # a folder outside MESH_HOME (tests): at least not a link itself
        real = folder.parent.resolve() / folder.name
    if os.path.lexists(folder) and folder.resolve() != real:
        raise SandboxPathError(
            f"{folder} leads to {folder.resolve()} (a link): the folders a domain's SQL may reach must be real "
            "folders under MESH_HOME; replace the link with a folder"
        )


@dataclass(frozen=True)
class Sandbox:
    """What one domain step may reach besides its warehouse file."""

    domain: str
    directories: tuple[str, ...]
    paths: tuple[str, ...]
    memory_limit: str
    temp_directory: str | None = None

    @classmethod
    def for_step(
        cls,
        home: MeshHome,
        domain: str,
        staging: Path,
        landing: Iterable[str] = (),
        files: Iterable[str | Path] = (),
    ) -> Sandbox:
        folders = [home.sources / domain, staging, *(home.landing_folder(name) for name in sorted(set(landing)))]
        for folder in folders:
            _not_a_link(home, folder)
        return cls(
            domain,
            tuple(_directory(f) for f in folders),
            tuple(sorted({str(f) for f in files})),
            memory_limit(),
            str(staging / ".spill"),
        )

    def statements(self) -> list[str]:
        """The SQL that locks a connection into this sandbox, in the order DuckDB accepts it."""
        statements = [f"set memory_limit = {literal(self.memory_limit)}"]
        if self.temp_directory:
            statements.append(f"set temp_directory = {literal(self.temp_directory)}")
        statements += [
            f"set allowed_directories = [{', '.join(literal(d) for d in self.directories)}]",
            f"set allowed_paths = [{', '.join(literal(p) for p in self.paths)}]",
            "set autoinstall_known_extensions = false",
            "set autoload_known_extensions = false",
            "set enable_external_access = false",
            "set lock_configuration = true",
        ]
        return statements

    def apply(self, con: duckdb.DuckDBPyConnection) -> None:
        for statement in self.statements():
            con.execute(statement)

    def to_env(self) -> str:
        return json.dumps(
            {
                "nonce": uuid.uuid4().hex,  # one dbt connection per invocation (`dbt_sandbox`)
                "domain": self.domain,
                "directories": list(self.directories),
                "paths": list(self.paths),
                "memory_limit": self.memory_limit,
                "temp_directory": self.temp_directory,
            }
        )

    @classmethod
    def from_env(cls, value: str) -> Sandbox:
        data = json.loads(value)
        return cls(
            data["domain"],
            tuple(data["directories"]),
            tuple(data["paths"]),
            data["memory_limit"],
            data.get("temp_directory"),
        )


@contextmanager
def open_sandboxed(home: MeshHome, sandbox: Sandbox) -> Iterator[duckdb.DuckDBPyConnection]:
    """The step's connection on its domain's warehouse file, locked into `sandbox`."""
    with connect_warehouse(home, sandbox.domain) as con:
        sandbox.apply(con)
        yield con


@contextmanager
def open_sandboxed_memory(sandbox: Sandbox) -> Iterator[duckdb.DuckDBPyConnection]:
    """An in-memory connection locked into `sandbox` (checks of a product built elsewhere)."""
    con = duckdb.connect()
    try:
        sandbox.apply(con)
        yield con
    finally:
        con.close()


# --- refusals --------------------------------------------------------------------------------------

_REFUSED_PATH = re.compile(r'Permission Error: Cannot access (?:file|directory) "([^"]*)"')
_REFUSED_OTHER = re.compile(
    r"Permission Error: ([^\n]*)|Cannot change configuration option \"(\w+)\" - the configuration has been locked"
)


@dataclass(frozen=True)
class Refusal:
    """What the sandbox refused: the target (a path, or a setting or extension) and why."""

    domain: str
    target: str
    owner: str  # who the target belongs to, in words
    agreement: str  # what the domain would need instead

    @property
    def message(self) -> str:
        return (
            f"sandbox: domain {self.domain} tried to reach {self.target} ({self.owner}), which it may not; "
            f"{self.agreement}"
        )


def refusals_in(message: str) -> list[tuple[str, bool]]:
    """The targets a DuckDB error message says were refused: (path or setting, is_path)."""
    found = [(m.group(1), True) for m in _REFUSED_PATH.finditer(message)]
    if found:
        return found
    other = _REFUSED_OTHER.search(message)
    if other is None:
        return []
    target = f"the setting {other.group(2)}" if other.group(2) else other.group(1).strip()
    return [(target, False)]


def explain(home: MeshHome, domain: str, target: str, is_path: bool, agreements: Mapping[str, str]) -> Refusal:
    """Who owns what a step tried to reach and the access agreement it would need. `agreements`
    maps each product ref of the mesh to the agreement a consumer needs for it (written by the
    caller, which knows the descriptors)."""
    if not is_path:
        return Refusal(
            domain,
            target,
            "the sandbox's own configuration",
            "a domain step cannot change its sandbox, load extensions or reach files outside it",
        )
    path = Path(target)
    try:
        parts = path.resolve().relative_to(home.path.resolve()).parts
    except (ValueError, OSError):
        parts = ()
    if not parts:
        return Refusal(
            domain,
            target,
            "outside the mesh",
            "a domain's SQL reaches only its own warehouse, sources, landing folders and staging",
        )
    area = parts[0]
    if area == "products" and len(parts) >= 3 and any(c in "".join(parts[1:3]) for c in "*?["):
        return Refusal(
            domain,
            target,
            "published files of products matching a pattern",
            "read other domains' products one by one through the governed read: source('<domain>', '<product>') "
            "or ctx.read('<domain>.<product>'), each listed in consumes and granted",
        )
    if area == "products" and len(parts) >= 3:
        ref = f"{parts[1]}.{parts[2]}"
        return Refusal(domain, target, f"a published file of {ref}", agreements.get(ref, _unknown(ref)))
    if area == "warehouse":
        owner = parts[1].removesuffix(".duckdb").split(".")[0] if len(parts) > 1 else "?"
        return Refusal(
            domain,
            target,
            f"the private warehouse of domain {owner}",
            f"no domain opens another's warehouse: consume {owner}'s products through the governed read",
        )
    if area in ("sources", "landing", "staging", "governed") and len(parts) > 1:
        words = {
            "sources": "the source extracts of domain",
            "landing": "the landing folder",
            "staging": "the staging of domain",
            "governed": "the governed projections made for domain",
        }
        return Refusal(
            domain,
            target,
            f"{words[area]} {parts[1]}",
            "consume another domain's data only through its products, listed in consumes and granted",
        )
    return Refusal(
        domain,
        target,
        "the platform's own files",
        "a domain's SQL reaches only its own warehouse, sources, landing folders and staging",
    )


def _unknown(ref: str) -> str:
    return f"{ref} is not a product of this mesh"
