"""Scheduling: fold the appointment event stream into the current state of each appointment.

Events land as JSON-lines files in `MESH_HOME/landing/appointments/`. Each run ingests the files it
has not seen (by name and size), keeps every event once (by event_id, so re-delivered files and
retried runs add nothing), quarantines malformed lines with file and line, and records the files
in the same transaction as their events: a run that dies mid-batch leaves nothing half-ingested.
"""

from typing import Any

from mesh_platform.ingest import ensure_quarantine, lines_query, reason_case
from mesh_platform.sdk import AssetContext, Ingested, internal, product, suite

EVENT_COLUMNS = {
    "event_id": "varchar",
    "appointment_id": "varchar",
    "patient_id": "varchar",
    "site_id": "varchar",
    "service": "varchar",
    "event_type": "varchar",
    "event_time": "timestamp",
    "scheduled_for": "timestamp",
}
EVENT_TYPES = "('booked', 'rescheduled', 'cancelled', 'completed', 'no_show')"


def _new_files(ctx: AssetContext) -> list:
    con = ctx.con
    con.execute(
        "create table if not exists main.ingested_files (file varchar primary key, size bigint, run_id varchar)"
    )
    seen = dict(con.execute("select file, size from main.ingested_files").fetchall())
    folder = ctx.landing_dir  # MESH_HOME/landing/appointments, as @internal(landing=...) names it
    files = sorted(folder.glob("*.jsonl")) if folder.exists() else []
    return [f for f in files if seen.get(f.relative_to(ctx.home).as_posix()) != f.stat().st_size]


@internal(
    "appointment_events",
    description="Every appointment event once, by event_id, in arrival order.",
    landing="appointments",
)
def appointment_events(ctx: AssetContext) -> Ingested:
    con = ctx.con
    files = _new_files(ctx)
    con.execute(
        "create table if not exists main.appointment_events ("
        + ", ".join(f"{c} {t}" for c, t in EVENT_COLUMNS.items())
        + ", _source_file varchar, _source_line bigint)"
    )
    paths = ", ".join(f"'$.{c}'" for c in EVENT_COLUMNS)
    fields = ", ".join(f"_fields[{i}] as {c}" for i, c in enumerate(EVENT_COLUMNS, start=1))
    reason = reason_case(
        None,
        EVENT_COLUMNS,
        rules=[
            ("malformed_json", "_valid is not true"),  # a blank line reads as null
            ("null_key", "appointment_id is null or event_id is null"),
            ("unknown_code", f"event_type not in {EVENT_TYPES}"),
        ],
    )
    # One pass over the files: each line is parsed once for all its fields and classified as it
    # is read; its raw text is kept only if it goes to quarantine. A redelivered event (an
    # event_id already stored) is not a defect; one repeated within the batch is loaded once.
    con.execute(f"""
        create or replace temp table _events as
        with lines as (select *, json_valid(line) as _valid from ({lines_query(ctx, files)})),
        parsed as (
            select _source_file, _source_line, line, _valid, {fields}
            from (select *, case when _valid then json_extract_string(line, [{paths}]) end as _fields from lines)
        ),
        flagged as (
            select *, coalesce(_valid and event_id in (select event_id from main.appointment_events), false)
                as _redelivered
            from parsed
        ),
        classified as (select *, case when _redelivered then null else {reason} end as _reason from flagged)
        select * exclude (line), case when _reason is not null then line end as line from classified
    """)
    ensure_quarantine(ctx)
    typed = ", ".join(f"cast({c} as {t})" for c, t in EVENT_COLUMNS.items())
    con.execute("begin transaction")
    try:
        con.execute(
            f"insert into main.appointment_events select {typed}, _source_file, _source_line from ("
            "select *, row_number() over (partition by event_id order by _source_file, _source_line) as _n "
            "from _events where _reason is null and not _redelivered) where _n = 1"
        )
        con.execute(
            "insert into quarantine.records (asset, source_file, source_line, reason, record, run_id) "
            "select ?, _source_file, _source_line, _reason, to_json({'line': line}), ? "
            "from _events where _reason is not null",
            [ctx.name, ctx.run_id],
        )
        for f in files:
            con.execute(
                "insert or replace into main.ingested_files values (?, ?, ?)",
                [f.relative_to(ctx.home).as_posix(), f.stat().st_size, ctx.run_id],
            )
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise
    counts = dict(
        con.execute(
            "select case when _redelivered then 'redelivered' else coalesce(_reason, 'loaded') end, count(*) "
            "from _events group by all"
        ).fetchall()
    )
    records_in = sum(counts.values())
    loaded = counts.pop("loaded", 0) + counts.pop("redelivered", 0)
    return Ingested("appointment_events", records_in, loaded, counts, [str(f.name) for f in files])


@product("appointments", reads=["appointment_events"])
def appointments(ctx: AssetContext) -> str:
    events = ctx.read("appointment_events")
    return f"""
        with ordered as (
            select *, row_number() over (
                partition by appointment_id order by event_time desc, _source_file desc, _source_line desc
            ) as recency
            from {events}
        ),
        latest as (select * from ordered where recency = 1),
        history as (
            select
                appointment_id,
                min(event_time) filter (where event_type = 'booked') as booked_at,
                count(*) filter (where event_type = 'rescheduled') as reschedule_count,
                arg_max(scheduled_for, event_time) filter (where scheduled_for is not null) as scheduled_for
            from {events}
            group by appointment_id
        )
        select
            latest.appointment_id,
            latest.patient_id,
            latest.site_id,
            latest.service,
            latest.event_type as status,
            history.scheduled_for,
            coalesce(history.booked_at, latest.event_time) as booked_at,
            latest.event_time as updated_at,
            cast(history.reschedule_count as integer) as reschedule_count
        from latest
        join history using (appointment_id)
        order by appointment_id
    """


@suite("appointments", name="appointment_lifecycle", severity="error")
def appointment_lifecycle(gx: Any) -> list[Any]:
    """What the descriptor cannot say: an appointment's history is consistent with itself."""
    return [
        gx.expectations.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="updated_at", column_B="booked_at", or_equal=True
        ),
        gx.expectations.ExpectColumnValuesToBeBetween(column="reschedule_count", min_value=0, max_value=10),
    ]
