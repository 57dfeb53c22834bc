"""Tables in and out of a PostgreSQL database, as Arrow over ADBC (PostgreSQL's binary COPY)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import duckdb

from mesh_platform.sql.syntax import quote

BATCH_ROWS = 100_000


def incoming_name(table: str) -> str:
    """Where `table` is loaded before it is swapped in (a crash leaves no half-loaded `table`)."""
    return f"_mesh_incoming_{hashlib.sha1(table.encode()).hexdigest()[:16]}"


def ingest_and_swap(pg: Any, reader: Any, schema: str, table: str) -> int:
    """Load the Arrow `reader` under a new name in `schema`, then replace `table` by it in one
    transaction (views over the old table are dropped with it). The new table belongs to the
    connection's current role."""
    incoming = incoming_name(table)
    with pg.cursor() as cur:
        cur.execute(f"drop table if exists {quote(schema)}.{quote(incoming)}")
        rows = int(cur.adbc_ingest(incoming, reader, mode="create", db_schema_name=schema))
        cur.execute("begin")
        cur.execute(f"drop table if exists {quote(schema)}.{quote(table)} cascade")
        cur.execute(f"alter table {quote(schema)}.{quote(incoming)} rename to {quote(table)}")
        cur.execute("commit")
    return rows


def land(duck: duckdb.DuckDBPyConnection, relation: str, pg: Any, table: str) -> int:
    """Copy a DuckDB relation into `main.<table>` of the domain's PostgreSQL database (dbt's views
    over the old table are dropped with it and rebuilt by the domain's dbt build)."""
    reader = duck.cursor().sql(f"select * from {relation}").to_arrow_reader(BATCH_ROWS)
    return ingest_and_swap(pg, reader, "main", table)


def export_parquet(pg: Any, schema: str, table: str, path: Path) -> None:
    """Stream a PostgreSQL table to a Parquet file (numeric columns as double)."""
    import pyarrow.parquet as pq

    with pg.cursor() as cur:
        cur.execute(
            "select column_name, data_type from information_schema.columns "
            "where table_schema = $1 and table_name = $2 order by ordinal_position",
            parameters=(schema, table),
        )
        columns = cur.fetchall()
        if not columns:
            raise LookupError(f"{schema}.{table} does not exist in the warehouse")
        select = ", ".join(
            f"cast({quote(c)} as double precision) as {quote(c)}" if t == "numeric" else quote(c) for c, t in columns
        )
        cur.execute(f"select {select} from {quote(schema)}.{quote(table)}")
        reader = cur.fetch_record_batch()
        plain = _plain(reader.schema)
        path.parent.mkdir(parents=True, exist_ok=True)
        with pq.ParquetWriter(path, plain, compression="zstd") as writer:
            for batch in reader:
                writer.write_batch(pa_batch(batch, plain))


def pa_batch(batch: Any, schema: Any) -> Any:
    import pyarrow as pa

    return pa.RecordBatch.from_arrays(batch.columns, schema=schema)


def _plain(schema: Any) -> Any:
    """The schema without ADBC's per-field PostgreSQL metadata."""
    import pyarrow as pa

    return pa.schema([pa.field(f.name, f.type, f.nullable) for f in schema])
