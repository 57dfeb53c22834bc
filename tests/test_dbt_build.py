"""dbt as a step runs it: dbt parses what is on disk (partially: only what changed), the step's build
runs that parse, and product models are built into the file the platform publishes, the dbt way
(the `mesh_product` materialization a project declares, falling back to `table`)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from mesh_platform.defs.dbt_build import DbtBuild, DbtEvents, run_build
from mesh_platform.defs.dbt_project import (
    MANIFEST,
    PACKAGE_NAME,
    DbtParseError,
    definitions_manifest,
    install_package,
    parse_for_step,
)
from mesh_platform.governance.sandbox import SANDBOX_ENV, Sandbox
from mesh_platform.project.locations import MeshHome
from mesh_platform.storage.product_store import PARQUET

ROOT = Path(__file__).resolve().parent.parent
PROFILES = ROOT / "dbt_projects"  # the mesh's own profiles.yml, with the sandbox plugin
DOMAIN = "tiny"

PROJECT = {
    "dbt_project.yml": """
name: tiny
version: "1.0.0"
config-version: 2
profile: mesh
model-paths: ["models"]
macro-paths: ["macros"]
flags: {send_anonymous_usage_stats: false, partial_parse: true}
models:
  tiny:
    staging: {+materialized: view}
    marts: {+materialized: mesh_product}
""",
    "macros/greeting.sql": "{% macro greeting() %}'hello'{% endmacro %}",
    "models/staging/stg_people.sql": "select range as id, 'p' || range as name from range(5)",
    "models/marts/accounts.sql": "select id, name, {{ greeting() }} as greeting from {{ ref('stg_people') }}",
    "models/marts/constrained.sql": "select id from {{ ref('stg_people') }}",
    "models/marts/constrained.yml": """
version: 2
models:
  - name: constrained
    config: {contract: {enforced: true}}
    columns:
      - {name: id, data_type: bigint, constraints: [{type: not_null}]}
""",
    "models/marts/helper.sql": "select count(*) as people from {{ ref('stg_people') }}",
}
PRODUCTS = ["accounts", "constrained"]  # helper is a mart but not a product of the domain


@dataclass
class Step:
    project: Path
    home: MeshHome

    @property
    def warehouse(self) -> Path:
        return self.home.warehouse(DOMAIN)

    def run(self, name: str, products: list[str] = PRODUCTS) -> tuple[str, Path]:
        """One dbt step as the platform makes it: parse, then build with the step's profile values.
        Returns how dbt parsed and the step's staging folder."""
        staging = self.home.path / "staging" / DOMAIN / name
        staging.mkdir(parents=True)
        env = {"MESH_DUCKDB_PATH": str(self.warehouse), "MESH_PARQUET_OPTIONS": PARQUET}
        env[SANDBOX_ENV] = Sandbox.for_step(self.home, DOMAIN, staging).to_env()
        env |= {"MESH_PRODUCT_MODELS": ",".join(products), "MESH_PRODUCT_STAGING": str(staging)}
        run_dir = self.home.path / "dbt-runs" / name
        parsed = parse_for_step(self.project, PROFILES, DOMAIN, "duckdb", run_dir / "logs")
        events = DbtEvents()
        outputs = {f"model.tiny.{m}": (dg.AssetKey([DOMAIN, m]), m) for m in ("accounts", "constrained", "helper")}
        build = DbtBuild(self.project, PROFILES, "duckdb", env, run_dir)
        results = list(run_build(build, parsed.manifest, [], outputs, {}, events, {"dbt/parse": parsed.mode}))
        assert events.success, events.errors
        assert {r.output_name for r in results} == {name for _, name in outputs.values()}
        assert all(r.metadata["dbt/parse"].value == parsed.mode for r in results)
        return parsed.mode, staging

    def relations(self) -> dict[str, str]:
        with duckdb.connect(str(self.warehouse), read_only=True) as con:
            rows = con.execute("select table_name, table_type from information_schema.tables").fetchall()
        return dict(rows)

    def rows(self, sql: str) -> list[tuple]:
        with duckdb.connect(str(self.warehouse), read_only=True) as con:
            return con.execute(sql).fetchall()


@pytest.fixture
def step(tmp_path: Path) -> Iterator[Step]:
    project = tmp_path / DOMAIN
    for name, text in PROJECT.items():
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_text(text)
    home = MeshHome(tmp_path / "home")
    home.warehouse(DOMAIN).parent.mkdir(parents=True)
    (home.sources / DOMAIN).mkdir(parents=True)
    yield Step(project, home)


def test_products_are_built_into_their_file_and_other_models_keep_dbt_s_materializations(step: Step) -> None:
    _, staging = step.run("first")
    assert step.relations() == {
        "stg_people": "VIEW",
        "accounts": "VIEW",  # over the staged Parquet file the platform audits and publishes
        "constrained": "BASE TABLE",  # its table enforces the constraint
        "helper": "BASE TABLE",  # declared mesh_product, but not a product: dbt's table
    }
    assert sorted(p.name for p in staging.glob("*.parquet")) == ["accounts.parquet"]
    with duckdb.connect() as con:
        assert con.execute(f"select count(*) from read_parquet('{staging / 'accounts.parquet'}')").fetchone() == (5,)


def test_dbt_run_by_hand_gets_tables(step: Step) -> None:
    install_package(step.project)
    dbt = str(Path(sys.executable).with_name("dbt"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("MESH_")} | {"MESH_DUCKDB_PATH": str(step.warehouse)}
    args = ["build", "--project-dir", str(step.project), "--profiles-dir", str(PROFILES)]
    proc = subprocess.run([dbt, *args], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert step.relations()["accounts"] == "BASE TABLE"


def test_a_step_parses_only_what_changed_and_builds_what_is_on_disk(step: Step) -> None:
    assert step.run("first")[0] == "full"
    # the build's own profile values (warehouse file, sandbox with its nonce and staging) did not
    # invalidate dbt's partial parsing: the next step parses nothing
    assert step.run("second")[0] == "skipped"
    model = step.project / "models" / "marts" / "accounts.sql"
    model.write_text(model.read_text().replace("as greeting", "as greeting, id * 10 as score"))
    assert step.run("model_edit")[0] == "partial"
    assert step.rows("select max(score) from accounts") == [(40,)]
    macro = step.project / "macros" / "greeting.sql"
    macro.write_text("{% macro greeting() %}'bonjour'{% endmacro %}")
    assert step.run("macro_edit")[0] == "partial"
    assert step.rows("select distinct greeting from accounts") == [("bonjour",)]
    assert step.run("unchanged")[0] == "skipped"
    # nor does a project moved elsewhere (a copy, an image built in another folder)
    moved = step.project.parent / "moved" / DOMAIN
    shutil.copytree(step.project, moved)
    assert parse_for_step(moved, PROFILES, DOMAIN, "duckdb", step.home.path / "moved-logs").mode == "skipped"


def test_definitions_read_a_manifest_parsed_again_only_when_a_file_changed(step: Step) -> None:
    manifest = definitions_manifest(step.project, PROFILES, DOMAIN)
    assert "model.tiny.accounts" in manifest["nodes"]
    stamp = (step.project / MANIFEST).stat().st_mtime_ns
    definitions_manifest(step.project, PROFILES, DOMAIN)
    assert (step.project / MANIFEST).stat().st_mtime_ns == stamp  # unchanged files: dbt not run
    (step.project / "models" / "marts" / "accounts.yml").write_text(
        "version: 2\nmodels:\n  - name: accounts\n    description: Every person, greeted.\n"
    )
    manifest = definitions_manifest(step.project, PROFILES, DOMAIN)
    assert manifest["nodes"]["model.tiny.accounts"]["description"] == "Every person, greeted."
    step.run("after")  # the step's parse found nothing more to do than definitions did
    assert definitions_manifest(step.project, PROFILES, DOMAIN)["nodes"]["model.tiny.accounts"]["description"]


def test_a_step_refreshes_the_manifest_definitions_read(step: Step) -> None:
    definitions_manifest(step.project, PROFILES, DOMAIN)
    (step.project / "models" / "marts" / "extra.sql").write_text("select 1 as one")
    step.run("added")
    stamp = (step.project / MANIFEST).stat().st_mtime_ns
    assert "model.tiny.extra" in definitions_manifest(step.project, PROFILES, DOMAIN)["nodes"]
    assert (step.project / MANIFEST).stat().st_mtime_ns == stamp  # the step's parse wrote it


def test_a_project_dbt_cannot_parse_is_an_error_naming_the_file(step: Step) -> None:
    (step.project / "models" / "marts" / "accounts.sql").write_text("select {{ greeting( }}")
    with pytest.raises(DbtParseError, match=r"accounts\.sql"):
        definitions_manifest(step.project, PROFILES, DOMAIN)


def test_the_platform_package_is_installed_as_the_platform_ships_it(step: Step) -> None:
    install_package(step.project)
    installed = step.project / "dbt_packages" / PACKAGE_NAME
    macro = installed / "macros" / "mesh_product.sql"
    shipped = macro.read_text()
    macro.write_text("{# edited by hand #}")
    (installed / "macros" / "stray.sql").write_text("{% macro stray() %}{% endmacro %}")
    install_package(step.project)
    assert macro.read_text() == shipped and not (installed / "macros" / "stray.sql").exists()


@pytest.mark.parametrize(
    ("file", "broken"),
    [
        ("models/marts/patient_accounts.sql", "select {{ ref('patients' }}"),
        ("models/marts/patient_accounts.yml", "version: 2\nmodels:\n  - name: patient_accounts\n    columns: {\n"),
    ],
)
def test_a_dbt_file_that_does_not_parse_is_a_problem_in_that_file(project: Path, file: str, broken: str) -> None:
    from mesh_platform.defs.domain_definitions import build_domain
    from mesh_platform.descriptor.problems import MeshDefinitionError
    from mesh_platform.project.locations import MeshProject
    from mesh_platform.project.mesh import Mesh

    (project / "dbt_projects" / "patients" / file).write_text(broken)
    with pytest.raises(MeshDefinitionError) as raised:
        build_domain(Mesh.load(MeshProject.discover(project)), "patients")
    [problem] = raised.value.problems
    assert (problem.rule, problem.file) == ("dbt-parse", f"dbt_projects/patients/{file}"), problem
    assert "\n" not in problem.message and "patient_accounts" in problem.message
