"""Governance on read: bypasses refused, policies applied per consumer, grants change reads."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from mesh_platform.defs.domain_definitions import build_domain, domain_definitions
from mesh_platform.descriptor.problems import MeshDefinitionError
from mesh_platform.governance.bypass import sql_bypasses
from mesh_platform.governance.masking import mask_expression
from mesh_platform.project.locations import MeshProject
from mesh_platform.project.mesh import Mesh
from tests.conftest import mesh_env, run_mesh_cli

OTHERS = {"patients", "scheduling", "pharmacy"}


@pytest.mark.parametrize(
    "sql",
    [
        "select * from patients.patient_accounts",
        "select a.* from {{ ref('stg') }} a join patients.main.patient_accounts p using (patient_id)",
        "select * from read_parquet('/home/x/.mesh/products/patients/patient_accounts/v1.parquet')",
        "attach '/home/x/.mesh/warehouse/pharmacy.duckdb' as ph; select * from ph.sites",
    ],
)
def test_direct_reads_of_other_domains_are_bypasses(sql: str) -> None:
    assert sql_bypasses(sql, "patient_360", OTHERS)


def test_governed_sources_are_not_bypasses() -> None:
    sql = "select * from {{ source('patients', 'patient_accounts') }} join {{ ref('stg_x') }} using (id)"
    assert sql_bypasses(sql, "patient_360", OTHERS) == []


def test_bypass_in_dbt_sql_is_an_early_warning(project: Path) -> None:
    """The scan tells the author at `mesh validate`; the sandbox is what refuses the read when it runs
    (tests/test_sandbox.py)."""
    import subprocess
    import sys

    model = project / "dbt_projects" / "patient_360" / "models" / "marts" / "sneaky.sql"
    model.write_text("select patient_id, email from patients.patient_accounts\n")
    dbt = Path(sys.executable).with_name("dbt")
    subprocess.run(
        [
            str(dbt),
            "parse",
            "--project-dir",
            str(model.parents[2]),
            "--profiles-dir",
            str(project / "dbt_projects"),
            "--quiet",
        ],
        check=True,
        capture_output=True,
    )
    parts = build_domain(Mesh.load(MeshProject.discover(project)), "patient_360")
    message = "\n".join(str(w) for w in parts.warnings)
    assert "models/marts/sneaky.sql" in message and "governed-read-only" in message
    assert "patients.patient_accounts" in message


def test_bypass_in_python_is_an_early_warning(project: Path, tmp_path: Path) -> None:
    code = project / "domains" / "site_operations" / "assets.py"
    code.write_text(code.read_text() + '\n\nSNEAKY = "select * from scheduling.appointment_events"\n')
    message = "\n".join(
        str(w) for w in build_domain(Mesh.load(MeshProject.discover(project)), "site_operations").warnings
    )
    assert "domains/site_operations/assets.py" in message
    assert "scheduling.appointment_events" in message and "governed-read-only" in message
    proc = run_mesh_cli("validate", env=mesh_env(project, tmp_path / "home"), cwd=project)
    assert proc.returncode == 0 and "warning: domains/site_operations/assets.py" in proc.stderr


def test_read_of_an_undeclared_product_is_refused(project: Path) -> None:
    code = project / "domains" / "site_operations" / "assets.py"
    text = code.read_text()
    assert '@product("site_daily_capacity", reads=READS)' in text
    code.write_text(text.replace("reads=READS)", 'reads=[*READS, "patients.patient_accounts"])'))
    with pytest.raises(MeshDefinitionError) as err:
        domain_definitions("site_operations", Mesh.load(MeshProject.discover(project)))
    assert "read-through-consumes" in str(err.value) and "patients.patient_accounts" in str(err.value)


@pytest.mark.parametrize(
    ("policy", "column_type", "value", "expected"),
    [
        ("year", "date", "1984-07-12", "1984-01-01"),
        ("zip3", "string", "02139", "021XX"),
        ("redact", "string", "Ada", "[redacted]"),
        ("null", "string", "Ada", None),
    ],
)
def test_masking_policies(policy: str, column_type: str, value: str, expected: str | None) -> None:
    sql_type = {"date": "date", "string": "varchar"}[column_type]
    expr = mask_expression(policy, "v", column_type, "secret")
    (result,) = duckdb.sql(
        f"select cast({expr} as varchar) from (select cast('{value}' as {sql_type}) as v)"
    ).fetchall()
    assert result[0] == expected


def test_token_keeps_joins_and_hides_the_value() -> None:
    expr = mask_expression("token", "v", "string", "secret")
    a, b, c = (duckdb.sql(f"select {expr} from (select '{v}' as v)").fetchall()[0][0] for v in ("x@y.z", "x@y.z", "q"))
    assert a == b != c and a.startswith("tok_") and "x@y.z" not in a
    other_key = mask_expression("token", "v", "string", "another")
    assert duckdb.sql(f"select {other_key} from (select 'x@y.z' as v)").fetchall()[0][0] != a
