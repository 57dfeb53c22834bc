"""Pharmacy: sites and vaccine lots, ingested and published as plain Python + SQL assets."""

from mesh_platform.sdk import AssetContext, Ingested, internal, product
from mesh_platform.sdk.ingest import ingest_csv
from mesh_platform.sdk.reference_data import VACCINE_CODES

KNOWN_CODES = ", ".join(f"'{c}'" for c in VACCINE_CODES)


@internal("raw_sites", description="Site master data from the network's site register.")
def raw_sites(ctx: AssetContext) -> Ingested:
    columns = {
        "site_id": "varchar",
        "site_name": "varchar",
        "zip": "varchar",
        "state": "varchar",
        "daily_capacity": "integer",
        "opened_on": "date",
    }
    return ingest_csv(ctx, "sites.csv", key="site_id", columns=columns)


@internal("raw_vaccine_lots", description="Vaccine lot deliveries from the distributor's feed.")
def raw_vaccine_lots(ctx: AssetContext) -> Ingested:
    columns = {
        "lot_id": "varchar",
        "vaccine_code": "varchar",
        "manufacturer": "varchar",
        "site_id": "varchar",
        "doses_received": "integer",
        "received_on": "date",
        "expires_on": "date",
    }
    return ingest_csv(
        ctx,
        "vaccine_lots.csv",
        key="lot_id",
        columns=columns,
        rules=[("unknown_code", f"vaccine_code not in ({KNOWN_CODES})")],
    )


@product("sites", reads=["raw_sites"])
def sites(ctx: AssetContext) -> str:
    return f"""
        select site_id, trim(site_name) as site_name, zip, upper(state) as state, daily_capacity, opened_on
        from {ctx.read("raw_sites")} as raw_sites
        order by site_id
    """


@product("vaccine_stock", reads=["raw_vaccine_lots"])
def vaccine_stock(ctx: AssetContext) -> str:
    return f"""
        select lot_id, vaccine_code, manufacturer, site_id, doses_received, received_on, expires_on
        from {ctx.read("raw_vaccine_lots")} as lots
        order by lot_id
    """
