"""Where a mesh lives: the project folder (code) and MESH_HOME (data).

The project folder is `MESH_PROJECT_DIR` or the working directory (where `mesh`, `make` and
`dagster dev` run). MESH_HOME defaults to `<project>/.mesh`. Nothing here is read at import.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from mesh_platform.project.dagster_instance import prepare_instance

# a landing folder is one name directly under MESH_HOME/landing: never a path (`..`, `/`, `a/b`)
LANDING_NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")


class LandingNameError(ValueError):
    """A landing folder named by a path instead of one lowercase name."""


class NotAMeshProject(Exception):
    pass


@dataclass(frozen=True)
class MeshHome:
    """The data side: warehouse files, published products, landing zone, Dagster instance."""

    path: Path

    def warehouse(self, domain: str) -> Path:
        """Each domain's private DuckDB file: its only writer is that domain's run."""
        return self.path / "warehouse" / f"{domain}.duckdb"

    @property
    def products(self) -> Path:
        return self.path / "products"

    def product_dir(self, domain: str, product: str) -> Path:
        return self.products / domain / product

    @property
    def sources(self) -> Path:
        return self.path / "sources"

    @property
    def landing(self) -> Path:
        return self.path / "landing"

    def landing_folder(self, name: str) -> Path:
        """`landing/<name>`; a name that is not one lowercase name (letters, digits, `_`) would reach
        beyond the landing zone (`..`, an absolute path, `a/b`) and raises LandingNameError."""
        if not isinstance(name, str) or not LANDING_NAME.fullmatch(name):
            raise LandingNameError(
                f"landing folder {name!r} is not a folder name: use one lowercase name (letters, digits, _), "
                "a folder directly under MESH_HOME/landing"
            )
        return self.landing / name

    @property
    def dagster_home(self) -> Path:
        return self.path / "dagster"

    @property
    def audit_dir(self) -> Path:
        return self.path / "audit"

    def secret(self, name: str) -> str:
        """A secret of this MESH_HOME (`<name>.key`, mode 0600): made once, never printed. Domain SQL
        cannot read it (the sandbox); domain Python runs with the OS rights of its process."""
        path = self.path / f"{name}.key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
            tmp.write_text(secrets.token_hex(32))
            tmp.chmod(0o600)
            with contextlib.suppress(FileExistsError):
                os.link(tmp, path)  # first writer wins, concurrent runs agree on one key
            tmp.unlink()
        return path.read_text().strip()

    def masking_key(self) -> str:
        """The secret that keys pii tokens."""
        return self.secret("masking")

    @property
    def governed(self) -> Path:
        """Governed projections, made by the platform for each consumer (`governance.projection`)."""
        return self.path / "governed"

    def ensure(self) -> None:
        for folder in (self.path / "warehouse", self.products, self.sources, self.landing, self.dagster_home):
            folder.mkdir(parents=True, exist_ok=True)
        prepare_instance(self.dagster_home)  # dagster.yaml for MESH_ENV (dev: SQLite, prod: PostgreSQL)


def check_home(home: Path) -> None:
    """MESH_HOME must be a folder, or one that can be made: not a file, nor under one. Dagster finds
    the instance's dagster.yaml with a glob pattern, so `[`, `]`, `*` and `?` in the path would make
    it read no settings at all (and run nothing as configured)."""
    if glob_chars := sorted(set("[]*?") & set(str(home))):
        raise NotAMeshProject(
            f"MESH_HOME={home} contains {' '.join(glob_chars)}: Dagster reads the instance's settings through a "
            "glob pattern, so choose a folder whose path has none of [ ] * ?"
        )
    for folder in (home, *home.parents):
        if folder.exists():
            if not folder.is_dir():
                raise NotAMeshProject(f"MESH_HOME={home}: {folder} is a file, not a folder")
            return


@dataclass(frozen=True)
class MeshProject:
    root: Path
    home: MeshHome

    @classmethod
    def discover(cls, root: Path | None = None) -> MeshProject:
        root = Path(root or os.environ.get("MESH_PROJECT_DIR") or Path.cwd()).resolve()
        if not (root / "domains").is_dir():
            raise NotAMeshProject(
                f"{root} has no domains/ folder: run from the mesh project root or set MESH_PROJECT_DIR"
            )
        home = Path(os.environ.get("MESH_HOME") or root / ".mesh").resolve()
        check_home(home)
        return cls(root=root, home=MeshHome(home))

    @property
    def domains_dir(self) -> Path:
        return self.root / "domains"

    @property
    def dbt_dir(self) -> Path:
        return self.root / "dbt_projects"

    def domain_dir(self, domain: str) -> Path:
        return self.domains_dir / domain

    def dbt_project_dir(self, domain: str) -> Path | None:
        path = self.dbt_dir / domain
        return path if (path / "dbt_project.yml").exists() else None

    def domain_names(self) -> list[str]:
        return sorted(p.name for p in self.domains_dir.iterdir() if p.is_dir() and (p / "domain.yaml").exists())

    def rel(self, path: Path) -> str:
        try:
            return path.resolve().relative_to(self.root).as_posix()
        except ValueError:
            return str(path)
