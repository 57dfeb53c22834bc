"""Site operations: capacity against demand per site and day, from four other domains' products."""

from mesh_platform.sdk import AssetContext, product

READS = ["pharmacy.sites", "scheduling.appointments", "immunizations.administered_doses", "immunizations.test_results"]


@product("site_daily_capacity", reads=READS)
def site_daily_capacity(ctx: AssetContext) -> str:
    sites = ctx.read("pharmacy.sites")
    appointments = ctx.read("scheduling.appointments")
    doses = ctx.read("immunizations.administered_doses")
    tests = ctx.read("immunizations.test_results")
    return f"""
        with appointment_days as (
            select
                site_id,
                cast(scheduled_for as date) as day,
                count(*) as appointments,
                count(*) filter (where status = 'completed') as completed,
                count(*) filter (where status = 'no_show') as no_shows,
                count(*) filter (where status = 'cancelled') as cancelled
            from {appointments}
            where scheduled_for is not null
            group by all
        ),
        dose_days as (
            select site_id, cast(administered_at as date) as day, count(*) as doses_administered
            from {doses}
            group by all
        ),
        test_days as (
            select site_id, cast(collected_at as date) as day, count(*) as tests_collected
            from {tests}
            group by all
        ),
        days as (
            select site_id, day from appointment_days
            union select site_id, day from dose_days
            union select site_id, day from test_days
        )
        select
            days.site_id,
            days.day,
            sites.daily_capacity,
            coalesce(a.appointments, 0) as appointments,
            coalesce(a.completed, 0) as completed,
            coalesce(a.no_shows, 0) as no_shows,
            coalesce(a.cancelled, 0) as cancelled,
            coalesce(d.doses_administered, 0) as doses_administered,
            coalesce(t.tests_collected, 0) as tests_collected,
            round(coalesce(a.appointments, 0) / sites.daily_capacity, 4) as utilization
        from days
        join {sites} as sites using (site_id)
        left join appointment_days as a using (site_id, day)
        left join dose_days as d using (site_id, day)
        left join test_days as t using (site_id, day)
    """
