"""Ingestion with quarantine: every source record is either loaded or kept with a reason.

Rules run in DuckDB over the raw text (all columns read as VARCHAR), so a value that does not
parse is caught, not coerced. The first failing rule is the record's reason; a record whose key
repeats an earlier line is a `duplicate_key`. Quarantined records keep their source file, line
and original values in the domain's `quarantine.records` table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from mesh_platform.governance.policies import literal, quote
from mesh_platform.sdk import AssetContext, Ingested

QUARANTINE_DDL = """
create schema if not exists quarantine;
create table if not exists quarantine.records (
    asset varchar, source_file varchar, source_line bigint, reason varchar,
    record json, run_id varchar, quarantined_at timestamp default current_timestamp
)
"""


def ensure_quarantine(ctx: AssetContext) -> None:
    ctx.con.execute(QUARANTINE_DDL)


def _cast_rules(columns: Mapping[str, str]) -> list[tuple[str, str]]:
    rules = []
    for name, sql_type in columns.items():
        if sql_type.lower() != "varchar":
            col = quote(name)
            rules.append(("unparseable_value", f"{col} is not null and try_cast({col} as {sql_type}) is null"))
    return rules


def reason_case(key: str | None, columns: Mapping[str, str], rules: Sequence[tuple[str, str]] = ()) -> str:
    """The SQL `case` naming the first rule a staged record breaks (null = clean): an empty key,
    a value that does not cast to its column's type, then `rules` in order, then a repeated key
    (which needs the `_dup` column `classified` adds)."""
    checks: list[tuple[str, str]] = []
    if key:
        checks.append(("null_key", f"{quote(key)} is null or trim({quote(key)}) = ''"))
    checks += _cast_rules(columns)
    checks += list(rules)
    if key:
        checks.append(("duplicate_key", "_dup > 1"))
    return "case " + " ".join(f"when {cond} then {literal(reason)}" for reason, cond in checks) + " else null end"


def classified(
    source: str, *, key: str | None, columns: Mapping[str, str], rules: Sequence[tuple[str, str]] = ()
) -> str:
    """`source` (a query with `_source_file`, `_source_line` and the columns as text) with a `_reason`
    column (null = clean), in rule order."""
    dup = f"row_number() over (partition by {quote(key)} order by _source_file, _source_line)" if key else "1"
    return f"select *, {reason_case(key, columns, rules)} as _reason from (select *, {dup} as _dup from ({source}))"


def load_classified(ctx: AssetContext, staged: str, columns: Mapping[str, str], files: list[str]) -> Ingested:
    """Write the clean rows of temp table `staged` (see `classified`) typed to `main.<asset>`, the
    rest to quarantine, in one transaction."""
    con, asset = ctx.con, ctx.name
    typed = ", ".join(f"cast({quote(c)} as {t}) as {quote(c)}" for c, t in columns.items())
    originals = ", ".join(f"{literal(c)}: {quote(c)}" for c in columns)
    ensure_quarantine(ctx)
    con.execute("begin transaction")
    try:
        # loaded in the source's line order: unsorted, the five CSV ingestions of scale 20 took 22.5 s
        # instead of 26.4 s, but patient_360's aggregations over them ran out of memory at 1 GB
        con.execute(
            f"create or replace table main.{quote(asset)} as select {typed}, _source_file, _source_line "
            f"from {staged} where _reason is null order by _source_file, _source_line"
        )
        con.execute("delete from quarantine.records where asset = ?", [asset])
        con.execute(
            f"insert into quarantine.records (asset, source_file, source_line, reason, record, run_id) "
            f"select {literal(asset)}, _source_file, _source_line, _reason, to_json({{{originals}}}), ? "
            f"from {staged} where _reason is not null",
            [ctx.run_id],
        )
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise
    counts = con.execute(f"select coalesce(_reason, ''), count(*) from {staged} group by all").fetchall()
    by_reason = {reason: n for reason, n in counts if reason}
    total = sum(n for _, n in counts)
    return Ingested(asset, total, total - sum(by_reason.values()), by_reason, files)


def ingest_csv(
    ctx: AssetContext,
    file: str,
    *,
    key: str | None,
    columns: Mapping[str, str],
    rules: Sequence[tuple[str, str]] = (),
) -> Ingested:
    """Load `<source_dir>/<file>` (CSV with a header) into `main.<asset>` with quarantine."""
    path = ctx.source_dir / file
    if not path.exists():
        raise FileNotFoundError(f"{ctx.domain}.{ctx.name}: source file {path} is missing (run `mesh seed`)")
    rel = path.relative_to(ctx.home).as_posix() if path.is_relative_to(ctx.home) else str(path)
    names = ", ".join(f"{literal(c)}: 'varchar'" for c in columns)
    staged = f"_stage_{ctx.name}"
    # one pass: the file is read, numbered and classified into one temp table
    read = (
        f"select {literal(rel)} as _source_file, row_number() over () + 1 as _source_line, * "
        f"from read_csv({literal(str(path))}, header = true, columns = {{{names}}}, auto_detect = false, "
        f"quote = '\"', escape = '\"', null_padding = true)"
    )
    ctx.con.execute(
        f"create or replace temp table {staged} as {classified(read, key=key, columns=columns, rules=rules)}"
    )
    return load_classified(ctx, staged, columns, [rel])


def lines_query(ctx: AssetContext, files: Sequence[Path]) -> str:
    """A query of the raw text lines of JSON-lines files, with their file and 1-based line number
    (`_source_file`, `_source_line`, `line`), for a statement to parse as it reads."""
    home = ctx.home
    parts = []
    for path in files:
        rel = path.relative_to(home).as_posix() if path.is_relative_to(home) else str(path)
        parts.append(
            f"select {literal(rel)} as _source_file, row_number() over () as _source_line, line "
            f"from read_csv({literal(str(path))}, header = false, columns = {{'line': 'varchar'}}, "
            f"delim = '\\x01', quote = '', escape = '', auto_detect = false)"
        )
    return " union all ".join(parts) or (
        "select null::varchar as _source_file, null::bigint as _source_line, null::varchar as line where false"
    )
