"""Scheduling: fold the appointment event stream into the current state of each appointment.

Events land as JSON-lines files in `MESH_HOME/landing/appointments/`. Each run ingests the files it
has not seen as they are (by name, size and mtime; entries that are no regular file, or files not
named *.jsonl, are quarantined, never read, and hold nothing back), keeps every event once (by
event_id, so re-delivered files and retried runs add nothing), quarantines bad lines with file and
line (`mesh_platform.sdk.ingest`: any bytes, one line at a time), and records the files in the same
transaction as their events: a run that dies mid-batch leaves nothing half-ingested.

An event's payload is every field the mesh keeps of it but its `event_id`: appointment, patient,
site, service, type and both times, compared as loaded (typed), so key order, whitespace, fields
the mesh does not keep and the spelling of a timestamp do not make two deliveries different. The
same `event_id` again with the same payload is a redelivery: counted as loaded, stored once, not
quarantined. With another payload it is a `conflicting_duplicate`: quarantined with its fields and
`first_seen`, the file:line of the delivery that was kept (stored earlier, or the first in the batch).
"""

import json
from typing import Any

from mesh_platform.sdk import WHY_SKIPPED, AssetContext, Ingested, LandingListing, internal, product, suite
from mesh_platform.sdk.ingest import bounded_sql, ensure_quarantine, reason_case, relative, stage_lines

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


def _new_files(ctx: AssetContext) -> LandingListing:
    """The files not ingested as they are now (by size and mtime as listed), and the entries that
    are no file to read (a directory, a link, a pipe, an undecodable name)."""
    con = ctx.con
    con.execute(
        "create table if not exists main.ingested_files (file varchar primary key, size bigint, run_id varchar)"
    )
    con.execute("alter table main.ingested_files add column if not exists mtime_ns bigint")
    seen = {
        f: (size, mtime)
        for f, size, mtime in con.execute("select file, size, mtime_ns from main.ingested_files").fetchall()
    }
    listing = ctx.landing_files()  # MESH_HOME/landing/appointments, as @internal(landing=...) names it
    new = [f for f in listing.files if seen.get(relative(ctx, f.path)) != (f.size, f.mtime_ns)]
    return LandingListing(new, listing.skipped)


def _payload(alias: str = "", typed: bool = False) -> str:
    """The event's payload as a struct: its fields but event_id, typed (the staged text is cast)."""
    prefix = f"{alias}." if alias else ""
    fields = [
        f"{c!r}: {prefix}{c}" if typed or t == "varchar" else f"{c!r}: cast({prefix}{c} as {t})"
        for c, t in EVENT_COLUMNS.items()
        if c != "event_id"
    ]
    return "{" + ", ".join(fields) + "}"


def _classify(lines: str) -> str:
    """Each line parsed once for all its fields and classified as it is read; its raw text is kept
    (bounded) only if it goes to quarantine. `_stored`: its event_id is already stored."""
    paths = ", ".join(f"'$.{c}'" for c in EVENT_COLUMNS)
    fields = ", ".join(f"_fields[{i}] as {c}" for i, c in enumerate(EVENT_COLUMNS, start=1))
    reason = reason_case(
        None,
        EVENT_COLUMNS,
        rules=[
            ("malformed_json", "_valid is not true"),  # a blank line reads as null
            ("null_key", "nullif(trim(appointment_id), '') is null or nullif(trim(event_id), '') is null"),
            # an object, array or boolean where a value belongs: its JSON text would load as the value
            (
                "wrong_type",
                f"list_has_any(json_type(case when _valid then line end, [{paths}]), ['OBJECT', 'ARRAY', 'BOOLEAN'])",
            ),
            ("unknown_code", f"event_type not in {EVENT_TYPES}"),
        ],
    )
    return f"""
        with lines as (select *, json_valid(line) as _valid from ({lines})),
        parsed as (
            select _source_file, _source_line, line, _defect, _record, _valid, {fields}
            from (select *, case when _valid then json_extract_string(line, [{paths}]) end as _fields from lines)
        ),
        classified as (
            select *, {reason} as _reason,
                coalesce(_valid and event_id in (select event_id from main.appointment_events), false) as _stored
            from parsed
        )
        select * exclude (line, _record),
            case when _reason is not null then coalesce(_record, to_json({{'line': {bounded_sql("line")}}})) end
                as _record
        from classified
    """


def _mark_repeats(ctx: AssetContext) -> None:
    """Quarantine as `conflicting_duplicate` each clean event whose event_id was stored, or came
    earlier in the batch, with another payload; keep in temp table `_repeats` the clean lines that
    repeat an earlier line of the batch (same payload: not to be stored again)."""
    con = ctx.con
    record = ", ".join(f"{c!r}: {bounded_sql(c)}" for c in EVENT_COLUMNS)
    con.execute(f"""
        create or replace temp table _repeats as
        select * from (
            select _source_file, _source_line, {_payload()} as _payload,
                first_value({_payload()}) over batch as _first,
                first_value(_source_file || ':' || _source_line) over batch as first_seen,
                row_number() over batch as _n
            from _events
            where _reason is null and not _stored and event_id in (
                select event_id from _events where _reason is null and not _stored
                group by event_id having count(*) > 1
            )
            window batch as (partition by event_id order by _source_file, _source_line)
        ) where _n > 1
    """)
    con.execute(f"""
        update _events set _reason = 'conflicting_duplicate',
            _record = to_json({{{record}, 'first_seen': conflict.first_seen}})
        from (
            select e._source_file, e._source_line, s._source_file || ':' || s._source_line as first_seen
            from _events e join main.appointment_events s using (event_id)
            where e._reason is null and e._stored and {_payload("e")} is distinct from {_payload("s", typed=True)}
            union all
            select _source_file, _source_line, first_seen from _repeats where _payload is distinct from _first
        ) as conflict
        where _events._source_file = conflict._source_file and _events._source_line = conflict._source_line
    """)


@internal(
    "appointment_events",
    description="Every appointment event once, by event_id, in arrival order.",
    landing="appointments",
)
def appointment_events(ctx: AssetContext) -> Ingested:
    con = ctx.con
    listing = _new_files(ctx)
    files = [f.path for f in listing.files]
    con.execute(
        "create table if not exists main.appointment_events ("
        + ", ".join(f"{c} {t}" for c, t in EVENT_COLUMNS.items())
        + ", _source_file varchar, _source_line bigint)"
    )
    stage_lines(ctx, files, "_events", _classify)
    _mark_repeats(ctx)
    ensure_quarantine(ctx)
    typed = ", ".join(f"cast({c} as {t})" for c, t in EVENT_COLUMNS.items())
    folder = relative(ctx, ctx.landing_dir)
    for name, reason in listing.skipped.items():
        if ctx.log is not None:
            ctx.log.warning(f"{folder}/{name} is not read ({reason}): {WHY_SKIPPED[reason]}")
    con.execute("begin transaction")
    try:
        # a redelivery (stored before, or repeated in the batch) has the kept event's payload: added once
        con.execute(
            f"insert into main.appointment_events select {typed}, _source_file, _source_line from _events "
            "where _reason is null and not _stored "
            "and (_source_file, _source_line) not in (select (_source_file, _source_line) from _repeats)"
        )
        # a file read again (rewritten, or grown since it was read) is classified whole again: what
        # its earlier reads held back is replaced, not left beside lines that have loaded since
        entries = [relative(ctx, f) for f in files] + [f"{folder}/{name}" for name in listing.skipped]
        con.execute(
            "delete from quarantine.records where asset = ? and source_file in (select unnest(?))", [ctx.name, entries]
        )
        # entries are what the folder holds now: one renamed or removed since (a batch still in
        # transfer, say) leaves no row behind
        con.execute(
            "delete from quarantine.records where asset = ? and source_line is null and reason in (select unnest(?))",
            [ctx.name, list(WHY_SKIPPED)],
        )
        con.execute(
            "insert into quarantine.records (asset, source_file, source_line, reason, record, run_id) "
            "select ?, _source_file, _source_line, _reason, cast(_record as json), ? "
            "from _events where _reason is not null",
            [ctx.name, ctx.run_id],
        )
        for name, reason in listing.skipped.items():
            con.execute(
                "insert into quarantine.records (asset, source_file, source_line, reason, record, run_id) "
                "values (?, ?, null, ?, ?, ?)",
                [ctx.name, f"{folder}/{name}", reason, json.dumps({"entry": name}), ctx.run_id],
            )
        for f in listing.files:
            con.execute(
                "insert or replace into main.ingested_files (file, size, run_id, mtime_ns) values (?, ?, ?, ?)",
                [relative(ctx, f.path), f.size, ctx.run_id, f.mtime_ns],
            )
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise
    counts = dict(con.execute("select coalesce(_reason, 'loaded'), count(*) from _events group by all").fetchall())
    records_in = sum(counts.values())
    loaded = counts.pop("loaded", 0)
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
