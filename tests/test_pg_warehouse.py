"""The PostgreSQL warehouse (MESH_WAREHOUSE=postgres) on a real server: where the mesh's tables
end up, the masking views dbt reads, and that both warehouses publish the same data.

(test_e2e.py runs its whole suite against this warehouse too.)
"""

from __future__ import annotations

import json

import duckdb
import pytest

from mesh_platform.pg_warehouse import PgWarehouse, WarehouseConfigError, warehouse_kind
from mesh_platform.project.locations import MeshProject
from mesh_platform.project.mesh import Mesh
from mesh_platform.storage.product_store import Published
from tests.conftest import PG_PASSWORD, PG_ROLE, MaterializedMesh

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.xdist_group("e2e_pg")]


def tables(mm: MaterializedMesh, database: str) -> dict[tuple[str, str], str]:
    rows = mm.server.query(  # type: ignore[attr-defined]
        "select table_schema, table_name, table_type from information_schema.tables "
        "where table_schema not in ('pg_catalog', 'information_schema')",
        database=database,
    )
    return {(schema, name): kind for schema, name, kind in rows}


def published(mm: MaterializedMesh) -> dict[str, Published | None]:
    """Each product's current published version in this mesh's home."""
    mesh = Mesh.load(MeshProject.discover(mm.root))
    result = {}
    for descriptor, product in mesh.products():
        pointer = mm.home / "products" / descriptor.domain / product.name / "current.json"
        result[f"{descriptor.domain}.{product.name}"] = (
            Published(**json.loads(pointer.read_text())) if pointer.exists() else None
        )
    return result


def test_every_product_is_built_in_its_domains_database(materialized_pg: MaterializedMesh) -> None:
    assert materialized_pg.run.returncode == 0, materialized_pg.run.stdout + materialized_pg.run.stderr  # type: ignore[attr-defined]
    for ref, version in published(materialized_pg).items():
        domain, product = ref.split(".")
        assert version is not None, f"{ref} was not published"
        assert tables(materialized_pg, domain).get(("main", product)) == "BASE TABLE", ref
        (count,) = materialized_pg.server.query(f'select count(*) from main."{product}"', database=domain)[0]  # type: ignore[attr-defined]
        assert count == version.rows, ref  # type: ignore[attr-defined]
    # dbt's staging models and the Python ingestion the dbt models read live there too
    assert tables(materialized_pg, "patients")[("main", "stg_patients")] == "VIEW"
    assert tables(materialized_pg, "immunizations")[("main", "raw_doses")] == "BASE TABLE"


def test_consumed_products_are_masking_views_in_the_consumers_database(materialized_pg: MaterializedMesh) -> None:
    found = tables(materialized_pg, "patient_360")
    for ref in ("patients.patient_accounts", "scheduling.appointments", "immunizations.test_results"):
        assert found[tuple(ref.split("."))] == "VIEW", ref
    server = materialized_pg.server  # type: ignore[attr-defined]
    in_pg = server.query(
        "select patient_id, email, first_name, zip from patients.patient_accounts", database="patient_360"
    )
    via_cli = json.loads(
        materialized_pg.mesh(
            "read", "patients.patient_accounts", "--as", "patient_360", "--limit", "0", "--json", check=True
        ).stdout
    )
    assert len(in_pg) == len(via_cli) > 0
    expected = {r["patient_id"]: (r["email"], r["first_name"], r["zip"]) for r in via_cli}
    for patient_id, email, first_name, zip_code in in_pg:
        assert email is None or email.startswith("tok_")
        assert first_name in (None, "[redacted]")
        assert zip_code is None or zip_code.endswith("XX")
        # PostgreSQL's masking gives DuckDB's tokens: masked keys join across warehouses
        assert (email, first_name, zip_code) == expected[patient_id]
    # the owner's database holds the raw values
    (raw,) = server.query(
        "select count(*) from main.patient_accounts where position('@' in email) > 0", database="patients"
    )[0]
    assert raw > 0


def test_both_warehouses_publish_the_same_data(
    materialized_duckdb: MaterializedMesh, materialized_pg: MaterializedMesh
) -> None:
    on_duckdb, on_pg = published(materialized_duckdb), published(materialized_pg)
    assert set(on_duckdb) == set(on_pg)
    with duckdb.connect() as con:
        for ref in sorted(on_duckdb):
            a, b = on_duckdb[ref], on_pg[ref]
            assert a is not None and b is not None, ref
            assert a.columns == b.columns, ref  # type: ignore[attr-defined]
            for left, right in ((a, b), (b, a)):
                (extra,) = con.execute(
                    f"select count(*) from (select * from read_parquet('{left.path}') "
                    f"except all select * from read_parquet('{right.path}'))"  # type: ignore[attr-defined]
                ).fetchone()
                assert extra == 0, f"{ref}: {extra} rows differ between the warehouses"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"MESH_WAREHOUSE": "postgres"}, "MESH_WAREHOUSE=postgres needs MESH_WAREHOUSE_URL"),
        ({"MESH_WAREHOUSE": "snowflake"}, "MESH_WAREHOUSE='snowflake' is not a known warehouse"),
        (
            {"MESH_WAREHOUSE": "postgres", "MESH_WAREHOUSE_URL": "mysql://u:p@h/db"},
            "MESH_WAREHOUSE_URL must start with postgresql://",
        ),
        ({"MESH_WAREHOUSE": "postgres", "MESH_WAREHOUSE_URL": "postgresql://127.0.0.1/db"}, "has no user"),
    ],
)
def test_bad_warehouse_settings_are_named(env: dict[str, str], message: str) -> None:
    with pytest.raises(WarehouseConfigError, match=message):
        warehouse_kind(env)
        PgWarehouse.from_env(env)


@pytest.mark.parametrize("case", ["wrong_password", "unreachable"])
def test_unusable_warehouse_fails_mesh_run_at_start(materialized_pg: MaterializedMesh, case: str) -> None:
    server = materialized_pg.server  # type: ignore[attr-defined]
    if case == "wrong_password":
        url, reason = f"postgresql://{PG_ROLE}:not-{PG_PASSWORD}@{server.host}:{server.port}/postgres", "password"
    else:
        url, reason = f"postgresql://{PG_ROLE}:{PG_PASSWORD}@127.0.0.1:9/postgres", "127.0.0.1:9"
    proc = materialized_pg.mesh_with({"MESH_WAREHOUSE_URL": url}, "run", "--domain", "patients")
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: MESH_WAREHOUSE_URL: cannot connect"), proc.stderr
    assert reason in lines[0] and "Traceback" not in proc.stderr
    assert PG_PASSWORD not in proc.stderr
