"""The README's performance table, written from a full bench run's results (`bench/results/latest.json`).

`python -m bench` rewrites it after a full run; `python -m bench --readme` rewrites it from the results
already measured. The README keeps only this table; the runs and their context are in docs/performance.md.
"""

from __future__ import annotations

import json
from pathlib import Path

from mesh_platform.lineage.readme_diagram import with_section

SECTION = "bench"
RESULTS = Path(__file__).with_name("results") / "latest.json"


def performance_table(results: dict) -> str:
    """A few lines: the whole mesh against plain DuckDB by scale, then checks, load time and the stream."""
    lines = [
        f"`python -m bench` ({results['mode']} run; {results['machine']}):",
        "",
        "| scale | source rows | `mesh run` (s) | warm (s) | plain DuckDB (s) | ratio (warm) | peak memory (MB) |",
        "|---|---|---|---|---|---|---|",
    ]
    for scale, r in results["runs"].items():
        lines.append(
            f"| {scale} | {r['source_rows']:,} | {r['mesh_s']} | {r['mesh_warm_s']} | {r['duckdb_s']} "
            f"| {r['ratio']} ({r['ratio_warm']}) | {r['peak_rss_mb']:,} |"
        )
    checks, load = results["checks"], results["load_s"]
    lines += [
        "",
        f"- Fixed overhead (smallest scale, `mesh run` minus plain DuckDB): {results['fixed_overhead_s']} s cold, "
        f"{results['fixed_overhead_warm_s']} s warm.",
        f"- Checks of a {checks['rows']:,}-row product: Great Expectations in DuckDB {checks['gx_s']} s against the "
        f"same assertions in SQL {checks['sql_s']} s ({checks['ratio']}x).",
        "- Definitions load: " + ", ".join(f"{s} s for {n} products" for n, s in load.items()) + ".",
    ]
    governed = {s: r["projections"] for s, r in results["runs"].items() if "projections" in r}
    if governed:
        lines.append(
            "- Governed projections (every consumer's read, made by the platform; part of the run): "
            + ", ".join(
                f"{g['cold_s']} s at scale {s} ({100 * g['cold_s'] / results['runs'][s]['mesh_s']:.0f}% of the run), "
                f"{g['cached_s']} s cached"
                for s, g in governed.items()
            )
            + "."
        )
    for scale, ratios in results.get("ui_run_vs_dbt_build", {}).items():
        if ratios:
            lines.append(
                f"- A dbt domain's run from the UI against a plain `dbt build` of its models, scale {scale}: "
                + ", ".join(f"{d} {r}x" for d, r in ratios.items())
                + "."
            )
    stream = results.get("stream")
    if stream:
        lines.append(
            f"- The stream ({stream['batches']} batches every {stream['interval_s']} s, daemon running): landing to "
            f"published p50 {stream['latency_p50_s']} s, p95 {stream['latency_p95_s']} s"
            + (
                f"; to its consumer `{stream['consumer']}` updated p50 {stream['consumer_latency_p50_s']} s, "
                f"p95 {stream['consumer_latency_p95_s']} s ({stream['batches_in_consumer']} of the batches reached it)."
                if stream.get("consumer_latency_p50_s") is not None
                else "."
            )
        )
    return "\n".join(lines) + "\n"


def update_readme(readme: Path, results: dict) -> bool:
    """Rewrite `readme`'s performance table from `results`; True when it changed."""
    text = readme.read_text()
    new = with_section(text, SECTION, performance_table(results))
    readme.write_text(new)
    return new != text


def latest_results() -> dict:
    return json.loads(RESULTS.read_text())
