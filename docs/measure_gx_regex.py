"""The gain of `mesh_platform/upstream/gx_duckdb.py`: a product's checks in DuckDB (where regex
expectations need it) against GX's pandas path, which needs no fence but copies the table.

    .venv/bin/python docs/measure_gx_regex.py /tmp/gx.duckdb 10000000

Each path runs in a process of its own (peak memory is the process's); both validate the
expectations of patients.patient_accounts (one a regex) on the same table, after one warm-up
validation of a small table (GX's imports and context are not counted).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import duckdb

TABLE = """
create or replace table main.patient_accounts as
select 'P' || lpad(i::varchar, 9, '0') as patient_id, 'Ann' as first_name, 'Lee' as last_name,
       case when i % 1000 = 0 then 'unreachable' else 'p' || i::varchar || '@example.org' end as email,
       '555-0100' as phone, date '1970-01-01' + (i % 20000)::integer as date_of_birth,
       lpad((i % 99999)::varchar, 5, '0') as zip, 'NY' as state,
       (['0-17', '18-49', '50-64', '65+'])[(i % 4) + 1] as age_band, timestamp '2021-01-01' as created_at
from range({rows}) r(i)
"""


def peak_mb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) // 1024
    return -1


def product() -> Any:
    from mesh_platform.project.mesh import Mesh

    return Mesh.load().product("patients.patient_accounts")[1]


def in_duckdb(path: str) -> dict[str, float]:
    from mesh_platform.checks.evaluate import run_contract

    warm = duckdb.connect()
    warm.execute(TABLE.format(rows=1000))
    run_contract(warm, product())
    con = duckdb.connect(path)
    started = time.perf_counter()
    outcomes = run_contract(con, product())
    return {"seconds": round(time.perf_counter() - started, 1), "peak_mb": peak_mb(), "checks": len(outcomes)}


def in_pandas(path: str) -> dict[str, float]:
    import great_expectations as gx

    from mesh_platform.checks.evaluate import gx_expectation

    expectations = [gx_expectation(e.type, e.kwargs) for e in product().expectations]
    context = gx.get_context(mode="ephemeral")
    batch_definition = (
        context.data_sources.add_pandas("pandas").add_dataframe_asset("t").add_batch_definition_whole_dataframe("w")
    )

    def validate(con: duckdb.DuckDBPyConnection) -> int:
        frame = con.execute("select * from main.patient_accounts").df()
        batch = batch_definition.get_batch(batch_parameters={"dataframe": frame})
        suite = gx.ExpectationSuite(name="s", expectations=[e.copy() for e in expectations])
        return len(batch.validate(suite, result_format={"result_format": "BASIC"}).results)

    warm = duckdb.connect()
    warm.execute(TABLE.format(rows=1000))
    validate(warm)
    started = time.perf_counter()
    count = validate(duckdb.connect(path, read_only=True))
    return {"seconds": round(time.perf_counter() - started, 1), "peak_mb": peak_mb(), "checks": count}


if __name__ == "__main__":
    if sys.argv[1] in ("duckdb", "pandas"):
        print(json.dumps((in_duckdb if sys.argv[1] == "duckdb" else in_pandas)(sys.argv[2])))
        raise SystemExit
    db, rows = sys.argv[1], int(sys.argv[2])
    with duckdb.connect(db) as con:
        con.execute(TABLE.format(rows=rows))
    for mode in ("duckdb", "pandas"):
        out = subprocess.run([sys.executable, __file__, mode, db], capture_output=True, text=True, check=True)
        print(mode, out.stdout.strip().splitlines()[-1])
