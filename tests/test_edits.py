"""Edits take effect on the next `mesh validate` and `mesh run`, with no other command: a column added
to a dbt model, a macro changed, a descriptor changed (the README's "make it yours" loop)."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from tests.conftest import E2E_SCALE, MaterializedMesh, copy_project

pytestmark = [pytest.mark.slow]

DESCRIPTOR = Path("domains/patients/domain.yaml")
MODEL = Path("dbt_projects/patients/models/marts/patient_accounts.sql")
MODEL_YML = Path("dbt_projects/patients/models/marts/patient_accounts.yml")
MACRO = Path("dbt_projects/patients/macros/email_domain.sql")
LAST_COLUMN = (
    "{name: created_at, type: timestamp, description: When the account was registered, classification: internal}"
)


def _edit(mm: MaterializedMesh, rel: Path, old: str, new: str) -> None:
    text = (mm.root / rel).read_text()
    assert old in text, f"{rel} no longer holds {old!r}"
    (mm.root / rel).write_text(text.replace(old, new, 1))


def _published(mm: MaterializedMesh) -> tuple[str, list[str], list[tuple]]:
    """The current version of patients.patient_accounts: its id, columns and email domains."""
    current = json.loads((mm.home / "products" / "patients" / "patient_accounts" / "current.json").read_text())
    with duckdb.connect() as con:
        relation = f"read_parquet('{current['path']}')"
        columns = [row[0] for row in con.execute(f"describe select * from {relation}").fetchall()]
        domains = (
            con.execute(f"select distinct email_domain from {relation} order by 1").fetchall()
            if ("email_domain" in columns)
            else []
        )
    return current["version"], columns, domains


def _validate_and_run(mm: MaterializedMesh) -> int:
    validate = mm.mesh("validate", "--json")
    assert validate.returncode == 0, validate.stdout + validate.stderr
    return mm.mesh("run", "--domain", "patients").returncode


def test_model_macro_and_descriptor_edits_are_what_the_next_run_publishes(tmp_path: Path) -> None:
    mm = MaterializedMesh(copy_project(tmp_path / "project"), tmp_path / "home")
    mm.mesh("seed", "--scale", E2E_SCALE, check=True)

    # a new column: the model (through a new macro), its contract in the model's yml, the descriptor
    (mm.root / MACRO).parent.mkdir(exist_ok=True)
    (mm.root / MACRO).write_text("{% macro email_domain(column) %}split_part({{ column }}, '@', 2){% endmacro %}\n")
    _edit(mm, MODEL, "    created_at\nfrom", "    created_at,\n    {{ email_domain('email') }} as email_domain\nfrom")
    _edit(mm, MODEL_YML, "timestamp}\n", "timestamp}\n      - {name: email_domain, data_type: text}\n")
    _edit(
        mm,
        DESCRIPTOR,
        LAST_COLUMN,
        LAST_COLUMN
        + "\n      - {name: email_domain, type: string, description: Email domain, classification: internal}",
    )
    assert _validate_and_run(mm) == 0
    first, columns, domains = _published(mm)
    assert columns[-1] == "email_domain" and domains and all(d[0] == d[0].lower() for d in domains if d[0])

    # the macro changes: the next run publishes what it computes now
    (mm.root / MACRO).write_text(
        "{% macro email_domain(column) %}upper(split_part({{ column }}, '@', 2)){% endmacro %}\n"
    )
    assert _validate_and_run(mm) == 0
    second, _, domains = _published(mm)
    assert second != first and any(d[0] for d in domains) and all(d[0] == d[0].upper() for d in domains if d[0])

    # the descriptor changes: a new blocking expectation on the new column, which the data fails
    _edit(
        mm,
        DESCRIPTOR,
        "      - {type: expect_column_values_to_be_unique, kwargs: {column: patient_id}, severity: error}\n",
        "      - {type: expect_column_values_to_be_unique, kwargs: {column: patient_id}, severity: error}\n"
        "      - {type: expect_column_values_to_be_in_set, kwargs: {column: email_domain, value_set: [nowhere]}, "
        "severity: error}\n",
    )
    assert _validate_and_run(mm) == 1
    assert _published(mm)[0] == second  # not published: consumers keep the last good version
    status = json.loads((mm.home / "products" / "patients" / "patient_accounts" / "status.json").read_text())
    assert status["status"] == "failed_checks"
    assert any("column_values_to_be_in_set__email_domain" in b for b in status["blockers"]), status["blockers"]
