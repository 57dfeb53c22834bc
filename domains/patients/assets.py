"""Patients: ingest the registration system's export; dbt (dbt_projects/patients) builds the products."""

from mesh_platform.sdk import AssetContext, Ingested, internal
from mesh_platform.sdk.ingest import ingest_csv

COLUMNS = {
    "patient_id": "varchar",
    "first_name": "varchar",
    "last_name": "varchar",
    "email": "varchar",
    "phone": "varchar",
    "date_of_birth": "date",
    "zip": "varchar",
    "state": "varchar",
    "consent_marketing": "boolean",
    "consent_research": "boolean",
    "created_at": "timestamp",
}


@internal("raw_patients", description="Registration export, typed; rejected records go to quarantine.")
def raw_patients(ctx: AssetContext) -> Ingested:
    return ingest_csv(
        ctx,
        "patients.csv",
        key="patient_id",
        columns=COLUMNS,
        rules=[("future_date", "try_cast(created_at as timestamp) > current_timestamp")],
    )
