"""`python -m bench [--quick]`: the mesh against plain DuckDB, checks against SQL, load time, memory.

Writes bench/results/latest.json, latest.md and latest.png. Measures; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import baseline, load, memory, stream
from mesh_platform.mesh import Mesh
from mesh_platform.project import MeshProject
from mesh_platform.warehouse import memory_limit

RESULTS = Path(__file__).with_name("results")
MESH = str(Path(sys.executable).with_name("mesh"))


# Linux counts a child's peak RSS from its fork, i.e. from the forking process's size: the bench has
# run DuckDB baselines in-process by then (GBs), so a small launcher process forks the command.
PEAK_OF = """import os, subprocess, sys
proc = subprocess.Popen(sys.argv[2:], stdout=subprocess.DEVNULL)
_, status, usage = os.wait4(proc.pid, 0)
open(sys.argv[1], "w").write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status))
"""


def timed(cmd: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float, float]:
    """Wall seconds, the largest process's peak RSS (MB) and the whole process tree's peak memory
    (summed PSS, MB) of a command."""
    with tempfile.NamedTemporaryFile(suffix=".maxrss") as peak:
        started = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-c", PEAK_OF, peak.name, *cmd], env=env, cwd=cwd, stderr=subprocess.PIPE, text=True
        )
        with memory.sampling(proc.pid) as sampler:
            _, stderr = proc.communicate()
        seconds = time.perf_counter() - started
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed:\n{stderr[-3000:]}")
        return seconds, int(Path(peak.name).read_text()) / 1024, sampler.peak_mb


def warm_run(env: dict[str, str], root: Path, home: Path) -> tuple[float, float]:
    """Wall seconds of `mesh run` handed to a warm server (`mesh warm`), started beforehand, and the
    peak memory of the server with its workers (summed PSS, MB)."""
    subprocess.run([MESH, "warm", "start"], env=env, cwd=root, check=True, capture_output=True)
    try:
        server = int((home / "warm" / "pid").read_text())
        with memory.sampling(server) as sampler:
            started = time.perf_counter()
            proc = subprocess.run([MESH, "run"], env=env, cwd=root, capture_output=True, text=True)
            seconds = time.perf_counter() - started
        if proc.returncode != 0:
            raise SystemExit(f"warm mesh run failed:\n{proc.stderr[-3000:]}")
        return seconds, sampler.peak_mb
    finally:
        subprocess.run([MESH, "warm", "stop"], env=env, cwd=root, capture_output=True)


def mesh_vs_duckdb(scales: list[float], work: Path) -> dict[str, dict[str, float]]:
    root = MeshProject.discover().root
    out = {}
    for scale in scales:
        home = work / f"scale-{scale}"
        env = {**os.environ, "MESH_HOME": str(home), "MESH_PROJECT_DIR": str(root)}
        env.pop("DAGSTER_HOME", None)
        subprocess.run([MESH, "seed", "--scale", str(scale)], env=env, cwd=root, check=True, capture_output=True)
        warm_home = work / f"scale-{scale}-warm"
        shutil.copytree(home, warm_home)  # the same seeded sources, a fresh warehouse
        mesh_s, rss, total = timed([MESH, "run"], env, root)
        warm_s, warm_total = warm_run({**env, "MESH_HOME": str(warm_home)}, root, warm_home)
        shutil.rmtree(warm_home, ignore_errors=True)
        os.environ["MESH_HOME"] = str(home)
        mesh = Mesh.load(MeshProject.discover(root))
        manifests = baseline.prepare(mesh, work / f"baseline-{scale}")
        duck_s = baseline.run(mesh, work / f"baseline-{scale}", manifests)
        # DuckDB held to the mesh's memory limit: what the cap costs, apart from the platform
        limit = memory_limit()
        capped_s = baseline.run(mesh, work / f"baseline-{scale}", manifests, limit)
        rows = json.loads((home / "sources" / "defects.json").read_text())["totals"]["rows"]
        out[str(scale)] = {
            "source_rows": rows,
            "mesh_s": round(mesh_s, 2),
            "duckdb_s": round(duck_s, 2),
            "ratio": round(mesh_s / duck_s, 2),
            # the whole run: every process it forks, shared pages counted once (summed PSS)
            "peak_rss_mb": round(total),
            "peak_rss_one_process_mb": round(rss),
            "peak_rss_warm_mb": round(warm_total),
            "mesh_warm_s": round(warm_s, 2),
            "ratio_warm": round(warm_s / duck_s, 2),
            "duckdb_same_memory_limit_s": round(capped_s, 2),
            "ratio_same_memory_limit": round(mesh_s / capped_s, 2),
        }
        print(
            f"scale {scale}: {rows:,} rows, mesh {mesh_s:.1f}s (warm {warm_s:.1f}s), duckdb {duck_s:.1f}s, "
            f"ratio {mesh_s / duck_s:.1f}x (warm {warm_s / duck_s:.1f}x; {mesh_s / capped_s:.1f}x against DuckDB "
            f"within {limit}, {capped_s:.1f}s), peak {rss:.0f} MB one process, "
            f"{total:.0f} MB all processes ({warm_total:.0f} MB warm, server included)",
            flush=True,
        )
        shutil.rmtree(home, ignore_errors=True)
    return out


def write(results: dict) -> None:
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps(results, indent=2) + "\n")
    lines = [
        f"# Benchmark ({results['mode']}, {results['machine']})",
        "",
        "| scale | source rows | mesh run (s) | warm mesh run (s) | plain DuckDB (s) | ratio | warm ratio "
        "| DuckDB within the mesh's memory limit (s) | ratio to it | peak memory (MB) | warm, server included (MB) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for scale, r in results["runs"].items():
        lines.append(
            f"| {scale} | {r['source_rows']:,} | {r['mesh_s']} | {r['mesh_warm_s']} | {r['duckdb_s']} | {r['ratio']} "
            f"| {r['ratio_warm']} | {r['duckdb_same_memory_limit_s']} | {r['ratio_same_memory_limit']} "
            f"| {r['peak_rss_mb']} | {r['peak_rss_warm_mb']} |"
        )
    c = results["checks"]
    lines += [
        "",
        "Peak memory: every process of the run, shared pages counted once (summed PSS, sampled every second).",
        "",
        f"Fixed overhead (smallest scale, mesh minus DuckDB): {results['fixed_overhead_s']} s cold, "
        f"{results['fixed_overhead_warm_s']} s warm (`mesh warm`)",
        "",
        f"Checks of a {c['rows']:,}-row product: GX in DuckDB {c['gx_s']} s vs SQL {c['sql_s']} s "
        f"(ratio {c['ratio']}), peak RSS {c['peak_rss_mb']} MB",
        "",
        "| products | definitions load (s) |",
        "|---|---|",
    ]
    lines += [f"| {n} | {s} |" for n, s in results["load_s"].items()]
    if results.get("stream"):
        st = results["stream"]
        lines += [
            "",
            f"Stream (scale {st['scale']}, daemon running, {st['batches']} batches every {st['interval_s']} s): "
            f"landing to published p50 {st['latency_p50_s']} s, p95 {st['latency_p95_s']} s; "
            f"backlog of {st['backlog_events']:,} events at {st['throughput_events_per_s']} events/s",
        ]
    (RESULTS / "latest.md").write_text("\n".join(lines) + "\n")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scales = [float(s) for s in results["runs"]]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(scales, [r["mesh_s"] for r in results["runs"].values()], "o-", label="mesh run (Dagster + dbt + GX)")
    ax.plot(scales, [r["mesh_warm_s"] for r in results["runs"].values()], "^--", label="mesh run, warm (`mesh warm`)")
    ax.plot(scales, [r["duckdb_s"] for r in results["runs"].values()], "s-", label="plain DuckDB, one connection")
    ax.set_xlabel("scale (1 = ~1M source rows)")
    ax.set_ylabel("seconds")
    ax.set_title("Whole-mesh run time against scale")
    ax.legend()
    fig.tight_layout()
    fig.savefig(RESULTS / "latest.png", dpi=100)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--quick", action="store_true", help="small scales; under five minutes")
    parser.add_argument("--scales", type=float, nargs="*", help="override the scales")
    args = parser.parse_args()
    scales = args.scales or ([0.05, 0.2] if args.quick else [1, 5, 20])
    check_rows = 1_000_000 if args.quick else 10_000_000
    product_counts = [10, 50] if args.quick else [10, 50, 200]
    # a straggling process's files must not cost the results: they are written after this block
    with tempfile.TemporaryDirectory(prefix="mesh-bench-", ignore_cleanup_errors=True) as tmp:
        work = Path(tmp)
        runs = mesh_vs_duckdb(scales, work)
        measured = subprocess.run(
            [sys.executable, "-m", "bench.checks", str(work / "checks.duckdb"), str(check_rows)],
            check=True,
            capture_output=True,
            text=True,
        )
        check = json.loads(measured.stdout.strip().splitlines()[-1])
        print(f"checks: {check}", flush=True)
        load_s = {str(n): load.load_seconds(n, work / f"load-{n}") for n in product_counts}
        print(f"definitions load: {load_s}", flush=True)
        # the micro-batch path with the daemon (issue 5); ~5 min, so not in --quick
        streaming = None if args.quick else stream.measure(1.0, 50, 2.0, 100, 20, 2000, work)
    smallest = runs[str(scales[0])]
    results = {
        "mode": "quick" if args.quick else "full",
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "runs": runs,
        "ratio_vs_duckdb": {s: r["ratio"] for s, r in runs.items()},
        "fixed_overhead_s": round(smallest["mesh_s"] - smallest["duckdb_s"], 2),
        "fixed_overhead_warm_s": round(smallest["mesh_warm_s"] - smallest["duckdb_s"], 2),
        "ratio_vs_duckdb_warm": {s: r["ratio_warm"] for s, r in runs.items()},
        "checks_vs_sql_ratio": check["ratio"],
        "checks": check,
        "load_s": load_s,
        "peak_rss_mb": {s: r["peak_rss_mb"] for s, r in runs.items()},
        "stream": streaming,
    }
    write(results)
    print((RESULTS / "latest.md").read_text())


if __name__ == "__main__":
    main()
