"""Immunizations: ingest point-of-care records; dbt (dbt_projects/immunizations) builds the products."""

from mesh_platform.sdk import AssetContext, Ingested, internal
from mesh_platform.sdk.ingest import ingest_csv
from mesh_platform.sdk.reference_data import VACCINE_CODES

KNOWN_CODES = ", ".join(f"'{c}'" for c in VACCINE_CODES)


@internal("raw_doses", description="Administered doses from the point-of-care system, typed and screened.")
def raw_doses(ctx: AssetContext) -> Ingested:
    columns = {
        "dose_id": "varchar",
        "patient_id": "varchar",
        "site_id": "varchar",
        "lot_id": "varchar",
        "vaccine_code": "varchar",
        "dose_number": "integer",
        "administered_at": "timestamp",
    }
    return ingest_csv(
        ctx,
        "doses.csv",
        key="dose_id",
        columns=columns,
        rules=[
            ("unknown_code", f"vaccine_code is null or vaccine_code not in ({KNOWN_CODES})"),
            ("future_date", "try_cast(administered_at as timestamp) > current_timestamp"),
        ],
    )


@internal("raw_test_results", description="COVID test results from the lab interface, typed and screened.")
def raw_test_results(ctx: AssetContext) -> Ingested:
    columns = {
        "test_id": "varchar",
        "patient_id": "varchar",
        "site_id": "varchar",
        "test_type": "varchar",
        "result": "varchar",
        "collected_at": "timestamp",
        "resulted_at": "timestamp",
    }
    return ingest_csv(
        ctx,
        "test_results.csv",
        key="test_id",
        columns=columns,
        rules=[("future_date", "try_cast(collected_at as timestamp) > current_timestamp")],
    )
