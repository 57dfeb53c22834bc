"""What a domain's own tests (`domains/<domain>/test_<domain>.py`) use.

- `DomainWorkbench`: the domain's real code on a small real warehouse, in seconds. Source files and
  landing files are written into a temporary `MESH_HOME`; the products it consumes are published
  there as their producers would publish them and reach it through the governed read (masked as
  granted); its `@internal` / `@product` functions run in the same DuckDB sandbox as in a run, and
  its dbt project is built by dbt against the same warehouse file. Tests then read what it built.
- `build_definitions`: the domain's Dagster definitions, as its code location builds them.
- `materialize`: the whole thing for real through `mesh seed` and `mesh run` (minutes, not seconds).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from types import ModuleType
from typing import Any
from unittest import mock

import duckdb

from mesh_platform.descriptor.model import Product
from mesh_platform.governance.projection import project
from mesh_platform.governance.read import authorize, create_projection_view
from mesh_platform.governance.sandbox import SANDBOX_ENV, Sandbox, open_sandboxed
from mesh_platform.project.locations import MeshHome, MeshProject
from mesh_platform.project.mesh import Mesh
from mesh_platform.sdk import AssetContext, AssetFn, Ingested
from mesh_platform.sql.syntax import SQL_TYPES, quote
from mesh_platform.storage.product_store import Build, ProductStore, build_into, staged_file, staging

SEED_SCALE = "0.01"
RUN_ID = "domain-test"


@dataclass(frozen=True)
class Step:
    sandbox: Sandbox
    folder: Path  # the step's staging folder
    governed: dict[str, str]  # consumed product ref -> the view the domain reads it through


def load_domain_code(root: Path, domain: str) -> ModuleType | None:
    """`domains/<domain>/assets.py` of the project at `root`, imported from that file (a project
    copied elsewhere tests its own code, not the installed one)."""
    path = root / "domains" / domain / "assets.py"
    if not path.exists():
        return None
    name = f"mesh_domain_tests_{domain}_{uuid.uuid4().hex[:8]}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _in_dependency_order(functions: Sequence[AssetFn]) -> list[AssetFn]:
    by_name = {f.name: f for f in functions}
    ordered: list[AssetFn] = []

    def visit(fn: AssetFn) -> None:
        if fn in ordered:
            return
        for ref in fn.reads:
            if ref in by_name:
                visit(by_name[ref])
        ordered.append(fn)

    for fn in functions:
        visit(fn)
    return ordered


class DomainWorkbench:
    """One domain's code against a small warehouse of its own in `workdir` (see the module docstring).

    wb = DomainWorkbench(ROOT, "pharmacy", tmp_path)
    wb.source("sites.csv", "site_id,site_name,...\\nS1,Main St,...\\n")
    wb.build()
    assert wb.rows("sites") == [...]
    """

    def __init__(self, root: Path, domain: str, workdir: Path) -> None:
        self.root = Path(root).resolve()
        self.home = MeshHome(Path(workdir).resolve() / "mesh_home")
        self.mesh = Mesh.load(MeshProject(self.root, self.home))
        if domain not in self.mesh.descriptors:
            problems = "; ".join(str(p) for p in self.mesh.problems_for(domain)) or "no such domain"
            raise ValueError(f"domain {domain!r} cannot be tested: {problems}")
        self.domain = domain
        self.descriptor = self.mesh.descriptors[domain]
        self.code = load_domain_code(self.root, domain)
        self.functions = _in_dependency_order(
            [
                replace(v, name=self.descriptor.built_name(v.name, v.major))
                for v in vars(self.code).values()
                if isinstance(v, AssetFn)
            ]
            if self.code
            else []
        )
        self._runs = 0

    # --- inputs -----------------------------------------------------------------------------------

    def source(self, name: str, text: str) -> Path:
        """A file the domain's source systems deliver (`MESH_HOME/sources/<domain>/<name>`)."""
        path = self.home.sources / self.domain / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    def landing(self, folder: str, name: str, text: str) -> Path:
        """A file arriving in a landing folder (`MESH_HOME/landing/<folder>/<name>`)."""
        path = self.home.landing / folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    def publish(self, ref: str, rows: Sequence[Mapping[str, Any]]) -> None:
        """Publish `rows` as the current version of another domain's product `ref`, typed as its
        descriptor declares (a key it does not declare is an error; a missing one is NULL). The domain
        reads it through the governed read, as in a run."""
        producer, product = self.mesh.product(ref)
        names = [c.name for c in product.columns]
        for row in rows:
            unknown = sorted(set(row) - set(names))
            if unknown:
                raise KeyError(f"{ref} declares no column {', '.join(unknown)}; its columns: {', '.join(names)}")
        columns = ", ".join(f"{quote(c.name)} {SQL_TYPES[c.type]}" for c in product.columns)
        with staging(self.home, producer.domain, RUN_ID) as folder, duckdb.connect() as con:
            con.execute(f"create table rows ({columns})")
            if rows:
                marks = ", ".join("?" for _ in names)
                con.executemany(f"insert into rows values ({marks})", [[row.get(n) for n in names] for row in rows])
            path = staged_file(folder, product.name)
            build_into(con, "select * from rows", path)
            ProductStore(self.home).publish(
                con,
                producer.domain,
                product.name,
                Build("rows", path),
                RUN_ID,
                retention_seconds=product.retention_seconds,
            )

    # --- running the domain's code ----------------------------------------------------------------

    @contextmanager
    def _step(self, landing: Sequence[str]) -> Iterator[Step]:
        """What a step of the domain gets: its sandbox, with the consumed products exposed as views
        `"<producer>"."<product>"` over their governed projections (masked as granted)."""
        self._runs += 1
        key = self.home.masking_key()
        grants = [authorize(self.mesh, ref, self.domain) for ref in self.descriptor.consumes]
        projections = [(grant, project(self.home, grant, key)) for grant in grants]
        with staging(self.home, self.domain, f"{RUN_ID}-{self._runs}") as folder:
            sandbox = Sandbox.for_step(self.home, self.domain, folder, landing, [p for _, p in projections])
            with open_sandboxed(self.home, sandbox) as con:
                governed = {grant.read_as: create_projection_view(con, grant, path) for grant, path in projections}
            yield Step(sandbox, folder, governed)

    def run(self, name: str) -> Any:
        """Run one `@internal` or `@product` function; a SELECT it returns becomes `main.<name>`.
        Returns what the function returned (an `Ingested` summary for ingestions)."""
        fn = next((f for f in self.functions if f.name == name), None)
        if fn is None:
            known = ", ".join(f.name for f in self.functions) or "none"
            raise KeyError(f"{self.domain} has no @internal or @product function {name!r}; it has: {known}")
        landing = [fn.landing] if fn.landing else []
        with self._step(landing) as step, open_sandboxed(self.home, step.sandbox) as con:
            ctx = AssetContext(self.domain, fn.name, con, self.home.path, fn.reads, RUN_ID, None, fn.landing)
            ctx.governed.update(step.governed)
            result = fn(ctx)
            if result is None or isinstance(result, (Ingested, dict)):
                return result  # it wrote its tables itself
            if not isinstance(result, str):  # a pyarrow Table or a DuckDB relation
                con.register("_rows", result)
            query = result if isinstance(result, str) else "select * from _rows"
            con.execute(f"create or replace table main.{quote(fn.name)} as {query}")
        return result

    def dbt_build(self) -> None:
        """`dbt build` of the domain's dbt project into its warehouse (models and their dbt tests),
        in the step's sandbox; raises with dbt's messages if a model or a test fails."""
        from dbt.cli.main import dbtRunner

        from mesh_platform.governance.dbt_sandbox import release

        project_dir = self.mesh.project.dbt_project_dir(self.domain)
        if project_dir is None:
            raise FileNotFoundError(f"{self.domain} has no dbt project in {self.mesh.project.dbt_dir}")
        with self._step([]) as step:
            env = {"MESH_DUCKDB_PATH": str(self.home.warehouse(self.domain)), SANDBOX_ENV: step.sandbox.to_env()}
            args = ["build", "--project-dir", str(project_dir), "--profiles-dir", str(self.mesh.project.dbt_dir)]
            args += ["--target", "duckdb", "--target-path", str(step.folder / "target"), "--log-path", str(step.folder)]
            args += ["--quiet", "--no-partial-parse", "--no-write-json"]
            try:
                with mock.patch.dict(os.environ, env):
                    result = dbtRunner().invoke(args)
            finally:
                release()
        failures = [
            f"{r.node.name}: {r.status} {r.message or ''}".strip()
            for r in getattr(result.result, "results", None) or []
            if str(r.status) not in ("success", "pass")
        ]
        if not result.success or failures:
            raise AssertionError(f"dbt build of {self.domain} failed: {result.exception or ''} {'; '.join(failures)}")

    def build(self) -> None:
        """Everything the domain builds, as a run of it does: its functions in dependency order, then
        its dbt project (if it has one)."""
        for fn in self.functions:
            self.run(fn.name)
        if self.mesh.project.dbt_project_dir(self.domain) is not None:
            self.dbt_build()

    # --- reading what it built --------------------------------------------------------------------

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Rows of a query over the domain's warehouse, as dicts."""
        with duckdb.connect(str(self.home.warehouse(self.domain)), read_only=True) as con:
            cursor = con.execute(sql, list(params))
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def rows(self, name: str, order_by: str | None = None) -> list[dict[str, Any]]:
        """Every row of `main.<name>` (a product or an internal asset)."""
        order = f" order by {order_by}" if order_by else ""
        return self.query(f"select * from main.{quote(name)}{order}")

    def quarantined(self, asset: str | None = None) -> list[dict[str, Any]]:
        """Records ingestion held back: asset, source_file, source_line, reason and the record."""
        rows = self.query(
            "select asset, source_file, source_line, reason, cast(record as varchar) as record "
            "from quarantine.records where ? is null or asset = ? order by source_file, source_line",
            [asset, asset],
        )
        return [{**r, "record": json.loads(r["record"])} for r in rows]

    def product(self, name: str) -> Product:
        product = self.descriptor.product(name)
        if product is None:
            raise KeyError(f"{self.domain} declares no product {name!r}")
        return product

    def declared_schema(self, name: str) -> dict[str, str]:
        """The product's columns and warehouse types as its descriptor declares them."""
        return {c.name: SQL_TYPES[c.type] for c in self.product(name).columns}

    def schema(self, name: str) -> dict[str, str]:
        """The columns and types of what the domain built as `main.<name>`."""
        return {r["column_name"]: r["column_type"].upper() for r in self.query(f"describe main.{quote(name)}")}


@dataclass(frozen=True)
class BuiltDomain:
    products: dict[str, list[str]]  # product -> its asset check names


def build_definitions(root: Path, domain: str) -> BuiltDomain:
    """The domain's Dagster definitions, built as its code location builds them (raises naming file and rule)."""
    import dagster as dg

    from mesh_platform.defs.domain_definitions import build_domain, definitions_from

    mesh = Mesh.load(MeshProject.discover(root))
    graph = definitions_from([build_domain(mesh, domain)]).resolve_asset_graph()
    products = {}
    for product in mesh.descriptors[domain].products:
        key = dg.AssetKey([domain, product.name])
        assert graph.has(key), f"{domain}.{product.name} is declared but no asset builds it"
        products[product.name] = sorted(c.name for c in graph.asset_check_keys if c.asset_key == key)
    return BuiltDomain(products)


def upstream_domains(mesh: Mesh, domain: str) -> list[str]:
    """Every domain `domain` reads from, directly or through others."""
    seen: set[str] = set()
    stack = list(mesh.descriptors[domain].consumed_domains)
    while stack:
        current = stack.pop()
        if current not in seen and current in mesh.descriptors:
            seen.add(current)
            stack.extend(mesh.descriptors[current].consumed_domains)
    return sorted(seen)


def materialize(root: Path, domain: str, workdir: Path) -> dict[str, dict[str, Any]]:
    """Run `domain` (after the domains it reads from, seeded small) in a temporary MESH_HOME under
    `workdir`, through the `mesh` command line; return each of its products' recorded status."""
    home = workdir / "mesh_home"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MESH_", "DAGSTER_"))}
    env |= {"MESH_PROJECT_DIR": str(root), "MESH_HOME": str(home)}
    mesh_cli = str(Path(sys.executable).with_name("mesh"))
    project = MeshProject.discover(root)
    mesh = Mesh.load(project)
    upstream = upstream_domains(mesh, domain)
    commands = [["seed", "--scale", SEED_SCALE]] if upstream else []
    commands.append(["run", *(a for d in [*upstream, domain] for a in ("--domain", d))])
    for args in commands:
        proc = subprocess.run([mesh_cli, *args], env=env, cwd=root, capture_output=True, text=True, timeout=1800)
        assert proc.returncode == 0, f"mesh {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    store = ProductStore(MeshHome(home))
    return {p.name: store.status(domain, p.name) or {} for p in mesh.descriptors[domain].products}
