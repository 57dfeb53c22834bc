"""Column-level lineage derived from the code: through dbt models (compiled by dbt, macros included),
Python products (the SQL their functions build) and across domains; declared where the code cannot
be analysed; shown by `mesh lineage` and on the Dagster definitions (GraphQL of a real webserver)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mesh_platform.defs.domain_definitions import build_domain
from mesh_platform.descriptor.problems import MeshDefinitionError
from mesh_platform.lineage.columns import MeshColumns, mesh_columns
from mesh_platform.lineage.dbt_sql import compiled_project
from mesh_platform.lineage.sql_columns import QueryColumns, Use
from mesh_platform.project.locations import MeshProject
from mesh_platform.project.mesh import Mesh
from tests.conftest import ROOT, copy_project, mesh_env, run_mesh_cli


@pytest.fixture(scope="module")
def columns() -> MeshColumns:
    return mesh_columns(Mesh.load(MeshProject.discover(ROOT)))


def edges_into(columns: MeshColumns, column: str) -> set[tuple[str, str, str]]:
    return {(e.source, e.kind, e.subtype) for e in columns.upstream(column) if e.target == column}


def test_sql_columns_follow_ctes_stars_unions_and_say_how_a_column_is_used() -> None:
    sql = """
        with base as (select * from src),
        days as (select site_id, cast(at as date) as day from src union select site_id, day from other),
        agg as (
            select site_id, count(*) filter (where status = 'done') as done, arg_max(result, at) as last,
                   row_number() over (partition by site_id order by at) as n
            from base group by all
        )
        select days.site_id, days.day, agg.done, agg.last, agg.n,
               case when agg.done > 0 then 'busy' else 'idle' end as load, upper(base.name) as name
        from days join agg using (site_id) join base on base.site_id = days.site_id where base.open
    """
    q = QueryColumns(sql, lambda t: {"src": "d.src", "other": "d.other"}.get(t.name), {"d.src": ["site_id", "at"]})
    assert q.column("site_id") == [Use("d.other", "site_id"), Use("d.src", "site_id")]
    assert q.column("day") == [Use("d.other", "day"), Use("d.src", "at", "DIRECT", "TRANSFORMATION")]
    assert q.column("done") == [Use("d.src", "status", "INDIRECT", "FILTER")]
    assert q.column("last") == [Use("d.src", "at", "INDIRECT", "SORT"), Use("d.src", "result", "DIRECT", "AGGREGATION")]
    assert set(q.column("n") or []) == {
        Use("d.src", "site_id", "INDIRECT", "WINDOW"),
        Use("d.src", "at", "INDIRECT", "WINDOW"),
    }
    assert q.column("load") == [Use("d.src", "status", "INDIRECT", "CONDITIONAL")]
    assert q.column("name") == [Use("d.src", "name", "DIRECT", "TRANSFORMATION")]  # through `select *`, by name
    assert q.column("nothing") is None
    dataset = {(u.column, u.subtype) for u in q.dataset()}
    assert {("site_id", "JOIN"), ("open", "FILTER"), ("site_id", "GROUP_BY")} <= dataset


def test_a_dbt_column_through_internal_models_to_the_ingestion_asset(columns: MeshColumns) -> None:
    email = "patients.patient_accounts.email"
    assert edges_into(columns, email) == {("patients.stg_patients.email", "DIRECT", "IDENTITY")}
    # stg_patients: `lower(trim(email))` in a CTE over `select * from source('patients', 'raw_patients')`
    assert edges_into(columns, "patients.stg_patients.email") == {
        ("patients.raw_patients.email", "DIRECT", "TRANSFORMATION")
    }
    assert columns.assets["patients.raw_patients"].how == "not analysed"  # an ingestion: it reads its files itself
    assert "source files" in (columns.assets["patients.raw_patients"].reason or "")
    # dbt.datediff (a cross-database macro) over date_of_birth, then a case: a conditional dependency
    assert edges_into(columns, "patients.stg_patients.age_band") == {
        ("patients.raw_patients.date_of_birth", "INDIRECT", "CONDITIONAL")
    }


def test_a_dbt_column_through_a_project_macro_is_compiled_by_dbt(columns: MeshColumns) -> None:
    project = MeshProject.discover(ROOT)
    compiled = compiled_project(project.dbt_project_dir("patient_360"), project.dbt_dir, "patient_360")
    sql = compiled.models["patient_journey"].sql or ""
    assert "last_by(" not in sql and "arg_max(result, collected_at)" in sql  # the macro, rendered by dbt
    assert edges_into(columns, "patient_360.patient_journey.last_test_result") == {
        ("immunizations.test_results.result", "DIRECT", "AGGREGATION"),
        ("immunizations.test_results.collected_at", "INDIRECT", "SORT"),
    }


def test_a_python_product_column_from_the_sql_its_function_builds(columns: MeshColumns) -> None:
    assert columns.assets["site_operations.site_daily_capacity"].how == "python"
    assert edges_into(columns, "site_operations.site_daily_capacity.day") == {
        ("scheduling.appointments.scheduled_for", "DIRECT", "TRANSFORMATION"),
        ("immunizations.administered_doses.administered_at", "DIRECT", "TRANSFORMATION"),
        ("immunizations.test_results.collected_at", "DIRECT", "TRANSFORMATION"),
    }
    assert edges_into(columns, "scheduling.appointments.status") == {
        ("scheduling.appointment_events.event_type", "DIRECT", "IDENTITY")
    }
    assert edges_into(columns, "pharmacy.sites.site_name") == {
        ("pharmacy.raw_sites.site_name", "DIRECT", "TRANSFORMATION")
    }


def test_a_column_across_two_domains_upstream_and_downstream(columns: MeshColumns) -> None:
    upstream = {e.source for e in columns.upstream("patient_360.patient_journey.email")}
    assert upstream == {"patients.patient_accounts.email", "patients.stg_patients.email", "patients.raw_patients.email"}
    downstream = {e.target for e in columns.downstream("patients.patient_accounts.email")}
    assert downstream == {"patient_360.patient_journey.email"}
    status = {(e.target, e.subtype) for e in columns.downstream("scheduling.appointments.status")}
    assert ("site_operations.site_daily_capacity.completed", "FILTER") in status
    assert ("patient_360.patient_journey.journey_stage", "CONDITIONAL") in status
    uses = columns.consumers_using("patients.patient_accounts", "email")
    assert [(u.consumer, u.where) for u in uses] == [("patient_360", "patient_360.patient_journey.email")]
    assert columns.consumers_using("patients.patient_accounts", "phone") == []


@pytest.mark.slow
def test_lineage_follows_edits_to_the_code(project: Path) -> None:
    model = project / "dbt_projects/patient_360/models/marts/patient_journey.sql"
    model.write_text(model.read_text().replace("accounts.email,", "lower(accounts.email) || accounts.state as email,"))
    code = project / "domains/site_operations/assets.py"
    code.write_text(code.read_text().replace("sites.daily_capacity,", "sites.daily_capacity * 2 as daily_capacity,", 1))
    edited = mesh_columns(Mesh.load(MeshProject.discover(project)))
    assert edges_into(edited, "patient_360.patient_journey.email") == {
        ("patients.patient_accounts.email", "DIRECT", "TRANSFORMATION"),
        ("patients.patient_accounts.state", "DIRECT", "TRANSFORMATION"),
    }
    assert edges_into(edited, "site_operations.site_daily_capacity.daily_capacity") == {
        ("pharmacy.sites.daily_capacity", "DIRECT", "TRANSFORMATION")
    }


def _unanalysable_sites(project: Path, derived_from: str) -> None:
    code = project / "domains/pharmacy/assets.py"
    code.write_text(
        code.read_text()
        .replace(
            'def sites(ctx: AssetContext) -> str:\n    return f"""',
            'def sites(ctx: AssetContext):\n    return ctx.con.sql(f"""',
        )
        .replace(
            '        order by site_id\n    """\n\n\n@product("vaccine_stock"',
            '        order by site_id\n    """)\n\n\n@product("vaccine_stock"',
        )
    )
    descriptor = project / "domains/pharmacy/domain.yaml"
    text = descriptor.read_text()
    assert "- {name: site_id, type: string" in text
    descriptor.write_text(
        text.replace(
            "- {name: site_id, type: string", f"- {{name: site_id, derived_from: [{derived_from}], type: string", 1
        )
    )


def test_declared_lineage_only_where_the_code_cannot_be_analysed(project: Path) -> None:
    _unanalysable_sites(project, "pharmacy.raw_sites.site_id")
    mesh = Mesh.load(MeshProject.discover(project))
    assert not mesh.problems, mesh.problems
    columns = mesh_columns(mesh, domains=["pharmacy", "site_operations"])
    sites = columns.assets["pharmacy.sites"]
    assert sites.how == "declared" and "ctx.con" in (sites.reason or "")
    assert [e.as_dict() for e in columns.upstream("pharmacy.sites.site_id")] == [
        {
            "from": "pharmacy.raw_sites.site_id",
            "to": "pharmacy.sites.site_id",
            "kind": "DIRECT",
            "subtype": "TRANSFORMATION",
            "declared": True,
        }
    ]
    assert "daily_capacity" in sites.unknown  # not declared, not derived: shown as unknown, never guessed
    parts = build_domain(mesh, "pharmacy")  # loads, and says what it could not analyse
    node = next(s for a in parts.assets for s in a.specs if s.key.path == ["pharmacy", "sites"])
    assert node.metadata["mesh/column_lineage"].value["declared"] == ["site_id"]


def test_declared_lineage_must_name_what_the_domain_may_read(project: Path) -> None:
    _unanalysable_sites(project, "scheduling.appointments.status")
    mesh = Mesh.load(MeshProject.discover(project))
    with pytest.raises(MeshDefinitionError) as raised:
        build_domain(mesh, "pharmacy")
    (problem,) = [p for p in raised.value.problems if p.rule == "derived-from"]
    assert problem.file == "domains/pharmacy/domain.yaml" and problem.line and "not in consumes" in problem.message


def test_lineage_cli_shows_one_column_and_the_whole_mesh(tmp_path: Path) -> None:
    root = copy_project(tmp_path / "project")
    env = mesh_env(root, tmp_path / "home")
    one = run_mesh_cli("lineage", "patients.patient_accounts.email", "--format", "json", env=env, cwd=root, check=True)
    found = json.loads(one.stdout)
    assert found["id"] == "patients.patient_accounts.email" and found["how"] == "dbt"
    assert [e["to"] for e in found["downstream"]] == ["patient_360.patient_journey.email"]
    assert {e["from"] for e in found["upstream"]} == {"patients.stg_patients.email", "patients.raw_patients.email"}
    mermaid = run_mesh_cli("lineage", "--columns", env=env, cwd=root, check=True).stdout
    assert mermaid.startswith("flowchart LR")
    assert "patients__patient_accounts__email --> patient_360__patient_journey__email" in mermaid
    assert "scheduling__appointments__status -.->|filter| site_operations__site_daily_capacity__completed" in mermaid
    whole = json.loads(run_mesh_cli("lineage", "--columns", "--format", "json", env=env, cwd=root, check=True).stdout)
    ids = {c["id"] for c in whole["columns"]}
    assert {
        f"{d.domain}.{p.name}.{c.name}" for d, p in Mesh.load(MeshProject.discover(root)).products() for c in p.columns
    } == ids
    for args, needle in [
        (("patients.patient_accounts.nope",), "no column 'nope'"),
        (("patients.nope",), "unknown product"),
        (("--columns", "--domains"), "do not go together"),
    ]:
        bad = run_mesh_cli("lineage", *args, env=env, cwd=root)
        assert bad.returncode == 2 and needle in bad.stderr and "Traceback" not in bad.stderr, bad.stderr


COLUMN_LINEAGE_QUERY = """{ assetNodes { assetKey { path } metadataEntries { __typename label
  ... on TableColumnLineageMetadataEntry { lineage { columnName columnDeps { assetKey { path } columnName } } } } } }"""


@pytest.mark.slow
def test_dagster_webserver_serves_column_lineage_on_each_product(tmp_path: Path) -> None:
    from devtools.ui_screenshot import webserver

    root = copy_project(tmp_path / "project")
    env = {**mesh_env(root, tmp_path / "home"), "DAGSTER_HOME": str(tmp_path / "home" / "dagster")}
    (tmp_path / "home" / "dagster").mkdir(parents=True)
    with webserver(root, env, tmp_path / "webserver.log") as server:
        nodes = {tuple(n["assetKey"]["path"]): n for n in server.graphql(COLUMN_LINEAGE_QUERY)["assetNodes"]}
    mesh = Mesh.load(MeshProject.discover(root))
    for descriptor, product in mesh.products():
        entries = [
            e
            for e in nodes[(descriptor.domain, product.name)]["metadataEntries"]
            if e["label"] == "dagster/column_lineage"
        ]
        assert entries and entries[0]["__typename"] == "TableColumnLineageMetadataEntry", product.name
    lineage = {
        e["columnName"]: {(tuple(d["assetKey"]["path"]), d["columnName"]) for d in e["columnDeps"]}
        for e in next(
            m
            for m in nodes[("patient_360", "patient_journey")]["metadataEntries"]
            if m["label"] == "dagster/column_lineage"
        )["lineage"]
    }
    assert lineage["email"] == {(("patients", "patient_accounts"), "email")}
    assert lineage["last_test_result"] == {
        (("immunizations", "test_results"), "result"),
        (("immunizations", "test_results"), "collected_at"),
    }
