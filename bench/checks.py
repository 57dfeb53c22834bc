"""A product's checks through GX (in DuckDB) against the same assertions as hand-written SQL."""

from __future__ import annotations

import resource
import time
from pathlib import Path

import duckdb

from mesh_platform.checks.evaluate import run_contract
from mesh_platform.descriptor.model import Descriptor

DOSES = """
create or replace table main.administered_doses as
select 'D' || lpad(i::varchar, 9, '0') as dose_id, 'P' || (i % 2000000)::varchar as patient_id,
       'S' || (i % 200)::varchar as site_id, 'L' || (i % 5000)::varchar as lot_id,
       (['207', '208', '300', '301'])[(i % 4) + 1] as vaccine_code,
       case when i % 997 = 0 then null else 'Moderna' end as manufacturer,
       cast((i % 4) + 1 as integer) as dose_number,
       timestamp '2021-01-01' + to_seconds(i % 100000000) as administered_at
from range({rows}) r(i)
"""

SQL = """
select count(*) filter (where dose_id is null), count(*) - count(distinct dose_id),
       count(*) filter (where dose_number not between 1 and 4), count(*) filter (where manufacturer is null)
from main.administered_doses
"""


def checks_vs_sql(path: Path, rows: int) -> dict[str, float]:
    descriptor = Descriptor.model_validate(
        __import__("yaml").safe_load(Path("domains/immunizations/domain.yaml").read_text())
    )
    product = descriptor.product("administered_doses")
    assert product is not None
    con = duckdb.connect(str(path))
    con.execute(DOSES.format(rows=rows))
    started = time.perf_counter()
    con.execute(SQL).fetchall()
    sql_s = time.perf_counter() - started
    run_contract(con, product)  # warm: GX import and context, as in a run after its first product
    started = time.perf_counter()
    outcomes = run_contract(con, product)
    gx_s = time.perf_counter() - started
    assert len(outcomes) == 1 + len(product.expectations)
    con.close()
    return {
        "rows": rows,
        "gx_s": round(gx_s, 2),
        "sql_s": round(sql_s, 2),
        "ratio": round(gx_s / sql_s, 2),
        "peak_rss_mb": round(peak_rss_kb() / 1024),
    }


def peak_rss_kb() -> int:
    """This process's own peak (VmHWM). Not getrusage: Linux carries ru_maxrss over exec, so a
    process started from the bench would report the bench's size."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


if __name__ == "__main__":  # in a process of its own, so the peak RSS is the checks' alone
    import json
    import sys

    print(json.dumps(checks_vs_sql(Path(sys.argv[1]), int(sys.argv[2]))))
