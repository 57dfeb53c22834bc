"""Which dbt product models the platform builds straight into their Parquet file."""

from __future__ import annotations

from pathlib import Path

import pytest
from dbt_common.contracts.constraints import ColumnLevelConstraint, ConstraintType

from mesh_platform.defs.dbt_runner import (
    PRODUCT_MATERIALIZATION,
    build_products_into_files,
    load_manifest_object,
)

ROOT = Path(__file__).resolve().parent.parent
PATIENTS = ROOT / "dbt_projects" / "patients"
ACCOUNTS, CONSENT, STAGING = (f"model.patients.{n}" for n in ("patient_accounts", "patient_consent", "stg_patients"))


def test_product_tables_are_built_into_files_and_constrained_or_other_models_keep_theirs() -> None:
    manifest = load_manifest_object(PATIENTS)
    manifest.nodes[CONSENT].columns["patient_id"].constraints = [ColumnLevelConstraint(type=ConstraintType.not_null)]
    build_products_into_files(manifest, [ACCOUNTS, CONSENT, STAGING])
    assert manifest.nodes[ACCOUNTS].config.materialized == "mesh_product"
    assert manifest.nodes[CONSENT].config.materialized == "table"  # its table enforces the constraint
    assert manifest.nodes[STAGING].config.materialized == "view"


def test_a_manifest_prepared_without_the_platform_package_asks_for_mesh_prepare() -> None:
    manifest = load_manifest_object(PATIENTS)
    del manifest.macros[PRODUCT_MATERIALIZATION]
    with pytest.raises(FileNotFoundError, match="run `mesh prepare`"):
        build_products_into_files(manifest, [ACCOUNTS])
