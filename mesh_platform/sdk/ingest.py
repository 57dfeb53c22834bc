"""Ingestion with quarantine: every source record is either loaded or kept with a reason.

A record is a line of a source file: the lines of a JSON-lines file, the lines after the header of a
CSV extract. Lines are split at `\\n` only (a `\\r` before it belongs to the line ending, a UTF-8 BOM
at the start of a file to no line) and numbered from 1 as the file's lines (a CSV's header is line 1),
so `source_line` points at the line in any editor. Whatever bytes a file holds, each of its lines is
loaded or quarantined, and a bad line never holds back the good lines of its file or later files:

- `invalid_encoding`: the line is not UTF-8; `line_too_long`: it is longer than `MAX_LINE_BYTES`;
- CSV only: `control_character` (a NUL byte or a carriage return inside the line), `malformed_row`
  (a quote that does not close on its line: a record is one line), `wrong_field_count` (more or
  fewer fields than the header, a blank line included);
- then the rules that run in DuckDB over the values as text (`reason_case`), so a value that does
  not parse is caught, not coerced; the first failing rule is the record's reason, and a record
  whose key repeats an earlier line is a `duplicate_key`.

A CSV extract whose header is not the expected columns (in order) is not read at all: the step fails
with `SourceFormatError`, naming the extract and both column lists, and what was loaded before stays.
So does an extract with no record to load (only its header, or every record quarantined) when the
table holds rows of an earlier load: a full extract replaces its table, and an empty one would empty
the product for every consumer (a first load may be empty); and an extract that is no regular file
(a link, which may point anywhere, or a device or pipe, which may never end).

Reading: DuckDB's CSV reader reads each file (fast), told to skip what it cannot read. A byte scan
of the file counts its lines; when the reader returned one row per line and the file has no bare
carriage return (which the reader takes for a line break) nor, in a CSV, a NUL byte, every line was
read as itself and the row numbers are the line numbers. Otherwise the file is read line by line in
Python (`careful_lines`, `careful_csv_rows`) and the rows go to DuckDB through Arrow.

Quarantined records keep their source file, line and values (for a line that could not be split into
values, `{"line": <text>}`) in the domain's `quarantine.records` table, each text cut to `KEEP_CHARS`
characters with the full size noted, so one huge line cannot bloat the table.
"""

from __future__ import annotations

import contextlib
import csv
import itertools
import json
import stat
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import duckdb
import pyarrow as pa

from mesh_platform.sdk import AssetContext, Ingested
from mesh_platform.sql.syntax import literal, quote

MAX_LINE_BYTES = 2_000_000  # DuckDB's default max_line_size, passed to it explicitly
KEEP_CHARS = 4096  # of a quarantined text: the first characters, then its size
BATCH_LINES = 100_000  # lines read in Python go to DuckDB in batches of this many
SCAN_BLOCK = 1 << 24
BOM = b"\xef\xbb\xbf"
KEEPS_LAST_LOAD = (
    "Nothing of it was loaded; what the last good extract loaded stays until the extract (or the asset's columns) "
    "is fixed."
)

QUARANTINE_DDL = """
create schema if not exists quarantine;
create table if not exists quarantine.records (
    asset varchar, source_file varchar, source_line bigint, reason varchar,
    record json, run_id varchar, quarantined_at timestamp default current_timestamp
)
"""


class SourceFormatError(ValueError):
    """A source file that cannot be read as its format at all: nothing of it is loaded."""


def ensure_quarantine(ctx: AssetContext) -> None:
    ctx.con.execute(QUARANTINE_DDL)


def relative(ctx: AssetContext, path: Path) -> str:
    """How records name their source file: relative to MESH_HOME when it is there."""
    return path.relative_to(ctx.home).as_posix() if path.is_relative_to(ctx.home) else str(path)


def bounded_sql(expr: str) -> str:
    """SQL for text `expr` cut to `KEEP_CHARS` characters, its size in bytes noted when cut."""
    return (
        f"case when length({expr}) > {KEEP_CHARS} "
        f"then left({expr}, {KEEP_CHARS}) || '… (' || strlen({expr}) || ' bytes)' else {expr} end"
    )


def raw_record(raw: bytes, size: int) -> str:
    """The quarantine record (JSON text) of a line that is not a record: its text, bounded like
    `bounded_sql`, bytes that are not UTF-8 shown as `\\xNN`."""
    text = raw[: KEEP_CHARS * 4].decode("utf-8", "backslashreplace")
    if len(text) > KEEP_CHARS or size > len(raw):
        text = f"{text[:KEEP_CHARS]}… ({size} bytes)"
    return json.dumps({"line": text})


# --- scanning and splitting files --------------------------------------------------------------


@dataclass(frozen=True)
class ByteScan:
    """What one pass over a file's bytes tells: its number of lines (`\\n`-terminated ones plus an
    unterminated last one), whether a carriage return stands anywhere but before a `\\n`, and
    whether it holds a NUL byte."""

    lines: int
    bare_cr: bool
    nul: bool


def scan_file(path: Path) -> ByteScan:
    lines = cr = crlf = 0
    nul = False
    last = b""
    with open(path, "rb") as f:
        while block := f.read(SCAN_BLOCK):
            lines += block.count(b"\n")
            if last == b"\r" and block[:1] == b"\n":
                crlf += 1
            if b"\r" in block:
                cr += block.count(b"\r")
                crlf += block.count(b"\r\n")
            nul = nul or b"\x00" in block
            last = block[-1:]
    return ByteScan(lines + (1 if last and last != b"\n" else 0), cr != crlf, nul)


def split_lines(path: Path) -> Iterator[tuple[int, bytes, int]]:
    """Every line of `path` as (number, content, size in bytes): split at `\\n`, without it and a
    `\\r` before it, a BOM at the start of the file dropped. A line over `MAX_LINE_BYTES` comes as
    its first bytes (more than the limit) and its size: it is never held whole."""
    limit = MAX_LINE_BYTES + len(BOM) + 2
    with open(path, "rb") as f:
        number = 0
        while head := f.readline(limit):
            number += 1
            size, ending, piece = len(head), head[-2:], head
            while not piece.endswith(b"\n") and (piece := f.readline(1 << 20)):
                size, ending = size + len(piece), (ending + piece)[-2:]
            if ending.endswith(b"\n"):
                size -= 2 if ending == b"\r\n" else 1
            if number == 1 and head.startswith(BOM):
                head, size = head[len(BOM) :], size - len(BOM)
            yield number, head[:size], size


def _line_text(raw: bytes, size: int) -> tuple[str | None, str | None]:
    """(text, None) for a line that is text, else (None, its defect)."""
    if size > MAX_LINE_BYTES:
        return None, "line_too_long"
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError:
        return None, "invalid_encoding"


class _ArrowBatches:
    """Rows gathered in Python, inserted by name into a DuckDB table in batches of `BATCH_LINES`."""

    def __init__(self, con: duckdb.DuckDBPyConnection, table: str, columns: Sequence[str]) -> None:
        self.con, self.table, self.columns = con, table, list(columns)
        self.rows: list[tuple] = []

    def add(self, values: tuple) -> None:
        self.rows.append(values)
        if len(self.rows) >= BATCH_LINES:
            self.flush()

    def flush(self) -> None:
        if not self.rows:
            return
        types = {"_source_line": pa.int64()}
        arrays = [
            pa.array(v, type=types.get(c, pa.string()))
            for c, v in zip(self.columns, zip(*self.rows, strict=False), strict=True)
        ]
        self.con.register("_mesh_careful_batch", pa.table(dict(zip(self.columns, arrays, strict=True))))
        try:
            self.con.execute(f"insert into {self.table} by name select * from _mesh_careful_batch")
        finally:
            self.con.unregister("_mesh_careful_batch")
        self.rows = []


# --- JSON lines ---------------------------------------------------------------------------------

LINE_COLUMNS = "_source_file varchar, _source_line bigint, line varchar, _defect varchar, _record varchar"


def lines_query(files: Mapping[Path, str]) -> str:
    """A query of the lines of text files as DuckDB's CSV reader reads them (`_source_file`,
    `_source_line`, `line`, and `_defect`, `_record` left null); lines it cannot read are skipped,
    which `stage_lines` notices. `files` maps each path to the name its records give."""
    parts = [
        f"select {literal(rel)} as _source_file, row_number() over () as _source_line, line, "
        f"null::varchar as _defect, null::varchar as _record "
        f"from read_csv({literal(str(path))}, header = false, columns = {{'line': 'varchar'}}, delim = chr(1), "
        f"quote = '', escape = '', auto_detect = false, strict_mode = true, ignore_errors = true, "
        f"max_line_size = {MAX_LINE_BYTES})"
        for path, rel in files.items()
    ]
    return " union all ".join(parts) or (
        "select null::varchar as _source_file, null::bigint as _source_line, null::varchar as line, "
        "null::varchar as _defect, null::varchar as _record where false"
    )


def careful_lines(con: duckdb.DuckDBPyConnection, path: Path, rel: str, table: str) -> None:
    """Insert every line of `path` into `table` (`LINE_COLUMNS`), read in Python: a line that is
    not text has a null `line`, its `_defect` and its bounded `_record`; an empty line is null."""
    batches = _ArrowBatches(con, table, ["_source_file", "_source_line", "line", "_defect", "_record"])
    for number, raw, size in split_lines(path):
        text, defect = _line_text(raw, size)
        batches.add((rel, number, text or None, defect, raw_record(raw, size) if defect else None))
    batches.flush()


def stage_lines(ctx: AssetContext, files: Sequence[Path], table: str, classify: Callable[[str], str]) -> None:
    """Create temp table `table` as `classify(lines)`, where `lines` is a query of every line of
    `files` (`LINE_COLUMNS`), each exactly once with its exact number: `classify` runs once over
    all files as DuckDB reads them, and again over the lines of any file it could not read line for
    line, read in Python (a row with a `_defect` is no text: `classify` must give it that reason)."""
    con = ctx.con
    rels = {path: relative(ctx, path) for path in files}
    scans = {path: scan_file(path) for path in files}
    fast = {path: rel for path, rel in rels.items() if not scans[path].bare_cr}
    try:
        con.execute(f"create or replace temp table {table} as {classify(lines_query(fast))}")
    except duckdb.InvalidInputException:  # a file the reader gives up on: each file on its own
        con.execute(f"create or replace temp table {table} as {classify(lines_query({}))}")
        for path, rel in fast.items():
            with contextlib.suppress(duckdb.InvalidInputException):  # no rows: read in Python below
                con.execute(f"insert into {table} by name select * from ({classify(lines_query({path: rel}))})")
    read = dict(con.execute(f"select _source_file, count(*) from {table} group by all").fetchall())
    careful = [p for p in files if p not in fast or read.get(rels[p], 0) != scans[p].lines]
    if not careful:
        return
    if ctx.log is not None:
        ctx.log.info(f"reading line by line (DuckDB's reader did not read each line as a row): {len(careful)} file(s)")
    names = ", ".join(literal(rels[p]) for p in careful)
    con.execute(f"delete from {table} where _source_file in ({names})")
    con.execute(f"create or replace temp table _mesh_careful_lines ({LINE_COLUMNS})")
    for path in careful:
        careful_lines(con, path, rels[path], "_mesh_careful_lines")
    con.execute(f"insert into {table} by name select * from ({classify('select * from _mesh_careful_lines')})")
    con.execute("drop table _mesh_careful_lines")


# --- CSV extracts -------------------------------------------------------------------------------


def _shown(names: Sequence[str], most: int = 40) -> str:
    """Column names for a message, at most `most` of them: quoted unless printable, short and
    without spaces around them."""
    shown = [n if n.isprintable() and n == n.strip() and len(n) <= 64 else repr(n[:64]) for n in names[:most]]
    return ", ".join(shown) + (f", … ({len(names)} columns)" if len(names) > most else "")


def check_header(ctx: AssetContext, path: Path, rel: str, expected: Sequence[str]) -> None:
    """Raise `SourceFormatError` unless line 1 of `path` is exactly the `expected` column names."""
    first = next(split_lines(path), None)
    if first is None:
        found: list[str] = []
        problem = "is empty (no header line)"
    else:
        _, raw, size = first
        text = raw[: KEEP_CHARS * 4].decode("utf-8", "backslashreplace")
        try:
            found = next(csv.reader([text], strict=True), [])
        except csv.Error:
            found = [text]
        if found == list(expected) and size <= MAX_LINE_BYTES and text.encode() == raw:
            return
        problem = "has a header that is not the expected columns"
    missing = [c for c in expected if c not in found]
    unexpected = [c for c in found if c not in expected]
    diff = "; ".join(
        part
        for part in (
            f"missing: {_shown(missing)}" if missing else "",
            f"unexpected: {_shown(unexpected)}" if unexpected else "",
            "" if missing or unexpected or not found else "the same columns in another order",
        )
        if part
    )
    raise SourceFormatError(
        f"{ctx.domain}.{ctx.name}: {rel} {problem}. Expected columns: {_shown(expected)}. "
        f"Found: {_shown(found) or '(none)'}" + (f" ({diff})" if diff else "") + f". {KEEPS_LAST_LOAD}"
    )


def csv_records(texts: Sequence[str]) -> Iterator[list[str] | None]:
    """Each text parsed as one CSV record (its fields), or None where it is not one: a quoting
    error, or a quoted field that does not close on its line. One reader runs over the texts (a
    reader per line costs more than the parsing); where a record took more than its own line, it
    is None and a new reader starts on the next text."""
    start = 0
    while start < len(texts):
        handed = start  # the index of the next text the reader takes

        def feed() -> Iterator[str]:
            nonlocal handed
            while handed < len(texts):
                handed += 1
                yield texts[handed - 1]

        reader = csv.reader(feed(), strict=True)
        while True:
            first = handed
            try:
                fields = next(reader)
            except StopIteration:
                return
            except csv.Error:
                fields = None
            if fields is None or handed - first > 1:
                yield None
                start = first + 1
                break
            yield fields


def careful_csv_rows(con: duckdb.DuckDBPyConnection, path: Path, rel: str, columns: Sequence[str], table: str) -> None:
    """Create temp table `table` with every line after the header of CSV `path`, read in Python: a
    line that is one record of the header's width has its values (empty = null), any other its
    `_defect` and `_record`."""
    names = ["_source_file", "_source_line", "_defect", "_record", *columns]
    con.execute(
        f"create or replace temp table {table} (_source_file varchar, _source_line bigint, "
        f"_defect varchar, _record varchar, {', '.join(f'{quote(c)} varchar' for c in columns)})"
    )
    batches, nulls, width = _ArrowBatches(con, table, names), [None] * len(columns), len(columns)
    lines = split_lines(path)
    next(lines, None)  # the header
    while chunk := list(itertools.islice(lines, BATCH_LINES)):
        texts: list[tuple[int, str, bytes, int]] = []
        for number, raw, size in chunk:
            text, defect = _line_text(raw, size)
            if text is not None and ("\x00" in text or "\r" in text):
                defect = "control_character"
            if defect:
                batches.add((rel, number, defect, raw_record(raw, size), *nulls))
            else:
                texts.append((number, text, raw, size))  # type: ignore[arg-type]
        for (number, _, raw, size), fields in zip(texts, csv_records([t[1] for t in texts]), strict=True):
            if fields is None or len(fields) != width:
                defect = "malformed_row" if fields is None else "wrong_field_count"
                batches.add((rel, number, defect, raw_record(raw, size), *nulls))
            else:
                batches.add((rel, number, None, None, *[f if f != "" else None for f in fields]))
    batches.flush()


# a time followed by an offset or a zone name, which a cast to a timestamp without zone drops
# (09:00+05:00 would load as 09:00); timestamps are UTC, so only a UTC mark is accepted
ZONED_TIME = r"\d:\d\d(:\d\d(\.\d+)?)?\s*([+-]\d\d(:?\d\d)?|[A-Za-z][A-Za-z_]*(/[A-Za-z_+-]+)*)$"
UTC_MARK = r"(?i)(z|utc|gmt|[+-]00(:?00)?)$"


def _cast_rules(columns: Mapping[str, str]) -> list[tuple[str, str]]:
    """`unparseable_value`: a value that does not cast to its column's type; for dates and times
    also `infinity`, and a time with an offset or zone other than UTC (never shifted silently)."""
    rules = []
    for name, sql_type in columns.items():
        kind = sql_type.lower()
        if kind == "varchar":
            continue
        col = quote(name)
        cast = f"try_cast({col} as {sql_type})"
        bad = f"{cast} is null"
        if kind in ("date", "timestamp", "datetime"):
            bad += f" or isinf({cast})"
        if kind in ("timestamp", "datetime"):
            bad += (
                f" or (regexp_matches(trim({col}), {literal(ZONED_TIME)})"
                f" and not regexp_matches(trim({col}), {literal(UTC_MARK)}))"
            )
        rules.append(("unparseable_value", f"{col} is not null and ({bad})"))
    return rules


def reason_case(key: str | None, columns: Mapping[str, str], rules: Sequence[tuple[str, str]] = ()) -> str:
    """The SQL `case` naming the first rule a staged record breaks (null = clean): a line that is no
    record (its `_defect`), an empty key, a value that does not cast to its column's type, then
    `rules` in order, then a repeated key (which needs the `_dup` column `classified` adds)."""
    checks: list[tuple[str, str]] = []
    if key:
        checks.append(("null_key", f"{quote(key)} is null or trim({quote(key)}) = ''"))
    checks += _cast_rules(columns)
    checks += list(rules)
    if key:
        checks.append(("duplicate_key", "_dup > 1"))
    cases = " ".join(f"when {cond} then {literal(reason)}" for reason, cond in checks)
    return f"case when _defect is not null then _defect {cases} else null end"


def classified(
    source: str, *, key: str | None, columns: Mapping[str, str], rules: Sequence[tuple[str, str]] = ()
) -> str:
    """`source` (a query with `_source_file`, `_source_line`, `_defect`, `_record` and the columns as
    text) with a `_reason` column (null = clean), in rule order."""
    dup = f"row_number() over (partition by {quote(key)} order by _source_file, _source_line)" if key else "1"
    return f"select *, {reason_case(key, columns, rules)} as _reason from (select *, {dup} as _dup from ({source}))"


def refuse_empty_extract(ctx: AssetContext, rel: str, total: int, reasons: Sequence[tuple[str, int, int]]) -> NoReturn:
    """Raise `SourceFormatError` for an extract with no record to load where an earlier load has
    rows: a full extract that would replace them with nothing is a source system's mistake far more
    often than the truth. (A first load may be empty: a domain's test with no rows for an asset.)
    `reasons` are (reason, records, first line), the first line being where to look."""
    if total == 0:
        problem = "has its header and no records"
    else:
        held = ", ".join(f"{reason}: {n:,} (first at line {line})" for reason, n, line in reasons)
        problem = f"has no record that could be loaded: all {total:,} were quarantined ({held})"
    raise SourceFormatError(f"{ctx.domain}.{ctx.name}: {rel} {problem}. {KEEPS_LAST_LOAD}")


def has_rows(con: duckdb.DuckDBPyConnection, asset: str) -> bool:
    """Whether `main.<asset>` holds an earlier load with at least one row."""
    try:
        (found,) = con.execute(f"select exists (select 1 from main.{quote(asset)})").fetchone()  # type: ignore[misc]
    except duckdb.CatalogException:  # never loaded
        return False
    return bool(found)


def load_classified(ctx: AssetContext, staged: str, columns: Mapping[str, str], files: list[str]) -> Ingested:
    """Write the clean rows of temp table `staged` (see `classified`) typed to `main.<asset>`, the
    rest to quarantine, in one transaction."""
    con, asset = ctx.con, ctx.name
    counts = con.execute(
        f"select coalesce(_reason, ''), count(*), min(_source_line) from {staged} group by all order by 3"
    ).fetchall()
    by_reason = {reason: n for reason, n, _ in counts if reason}
    total = sum(n for _, n, _ in counts)
    if total == sum(by_reason.values()) and has_rows(con, asset):
        refuse_empty_extract(ctx, files[0], total, counts)
    typed = ", ".join(f"cast({quote(c)} as {t}) as {quote(c)}" for c, t in columns.items())
    originals = ", ".join(f"{literal(c)}: {bounded_sql(quote(c))}" for c in columns)
    ensure_quarantine(ctx)
    con.execute("begin transaction")
    try:
        # loaded in the source's line order: unsorted is a little faster to load, but patient_360's
        # aggregations over the unsorted tables ran out of memory at 1 GB (docs/performance.md)
        con.execute(
            f"create or replace table main.{quote(asset)} as select {typed}, _source_file, _source_line "
            f"from {staged} where _reason is null order by _source_file, _source_line"
        )
        con.execute("delete from quarantine.records where asset = ?", [asset])
        con.execute(
            f"insert into quarantine.records (asset, source_file, source_line, reason, record, run_id) "
            f"select {literal(asset)}, _source_file, _source_line, _reason, "
            f"coalesce(cast(_record as json), to_json({{{originals}}})), ? "
            f"from {staged} where _reason is not null",
            [ctx.run_id],
        )
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise
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
    rel = relative(ctx, path)
    if not stat.S_ISREG(path.lstat().st_mode):  # a link, device or pipe may never end, or be anything
        kind = "a link" if path.is_symlink() else "a directory" if path.is_dir() else "a device, pipe or socket"
        raise SourceFormatError(
            f"{ctx.domain}.{ctx.name}: {rel} is {kind}, not a regular file: an extract is read only as a file of "
            f"its own in the domain's sources folder. {KEEPS_LAST_LOAD}"
        )
    check_header(ctx, path, rel, list(columns))
    scan = scan_file(path)
    con = ctx.con
    staged = quote(f"_stage_{ctx.name}")
    read_whole = not (scan.bare_cr or scan.nul)
    if read_whole:
        # one pass: the file is read, numbered and classified into one temp table
        names = ", ".join(f"{literal(c)}: 'varchar'" for c in columns)
        read = (
            f"select {literal(rel)} as _source_file, row_number() over () + 1 as _source_line, "
            f"null::varchar as _defect, null::varchar as _record, * "
            f"from read_csv({literal(str(path))}, header = true, columns = {{{names}}}, auto_detect = false, "
            f"quote = '\"', escape = '\"', null_padding = false, strict_mode = true, ignore_errors = true, "
            f"max_line_size = {MAX_LINE_BYTES})"
        )
        try:
            con.execute(
                f"create or replace temp table {staged} as {classified(read, key=key, columns=columns, rules=rules)}"
            )
            (rows,) = con.execute(f"select count(*) from {staged}").fetchone()  # type: ignore[misc]
            read_whole = rows == scan.lines - 1
        except duckdb.InvalidInputException:  # a file the reader gives up on (e.g. mixed line endings)
            read_whole = False
    if not read_whole:  # some line was not read as itself: every line again, in Python
        if ctx.log is not None:
            ctx.log.info(f"{rel}: DuckDB's reader did not read every line as one row; reading it line by line")
        careful_csv_rows(con, path, rel, list(columns), "_mesh_careful_rows")
        source = "select * from _mesh_careful_rows"
        con.execute(
            f"create or replace temp table {staged} as {classified(source, key=key, columns=columns, rules=rules)}"
        )
        con.execute("drop table _mesh_careful_rows")
    return load_classified(ctx, staged, columns, [rel])
