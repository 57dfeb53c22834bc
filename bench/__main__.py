"""`python -m bench [--quick]`: the mesh against plain DuckDB, checks against SQL, load time, memory.

Writes bench/results/latest.json, latest.md and latest.png, and after a full run the README's performance
table (`--readme` rewrites that table from latest.json without measuring). Measures; asserts nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import baseline, load, memory, projections, readme_table, stream, ui_runs
from mesh_platform.orchestration.run_worker_server import ServerPaths, ensure_server
from mesh_platform.project.locations import MeshProject
from mesh_platform.project.mesh import Mesh
from mesh_platform.storage.duckdb_warehouse import memory_limit

RESULTS = Path(__file__).with_name("results")
MESH = str(Path(sys.executable).with_name("mesh"))


def load_average() -> float:
    """The machine's 1-minute load average: this machine is shared, so each figure carries it."""
    return round(os.getloadavg()[0], 2)


def stop_servers(home: Path) -> None:
    """End the run worker servers of `home` (a cold figure starts without one; baselines run alone)."""
    for pid in memory.servers(home):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while any(Path(f"/proc/{pid}").exists() for pid in memory.servers(home)) and time.monotonic() < deadline:
        time.sleep(0.2)


def timed(cmd: list[str], env: dict[str, str], cwd: Path, home: Path) -> tuple[float, float, float]:
    """Wall seconds, the largest process's peak RSS (MB) and the peak memory of the command with the
    run worker servers of `home` and their workers (summed PSS, MB)."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    with memory.sampling(proc.pid, home=home) as sampler:
        _, stderr = proc.communicate()
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{stderr[-3000:]}")
    return seconds, sampler.largest_mb, sampler.peak_mb


def mesh_vs_duckdb(scales: list[float], ui_scales: list[float], work: Path) -> tuple[dict, dict]:
    root = MeshProject.discover().root
    out, users = {}, {}
    for scale in scales:
        home = work / f"scale-{scale}"
        env = {**os.environ, "MESH_HOME": str(home), "MESH_PROJECT_DIR": str(root)}
        env.pop("DAGSTER_HOME", None)
        subprocess.run([MESH, "seed", "--scale", str(scale)], env=env, cwd=root, check=True, capture_output=True)
        warm_home = work / f"scale-{scale}-warm"
        shutil.copytree(home, warm_home)  # the same seeded sources, a fresh warehouse
        load_cold = load_average()
        # cold: no run worker server yet; `mesh run` starts one, and it counts in the figures
        mesh_s, rss, total = timed([MESH, "run"], env, root, home)
        stop_servers(home)
        # warm: the run worker server of the home already up, as after any earlier run
        load_warm = load_average()
        ensure_server(ServerPaths.of(warm_home / "dagster", sys.executable), sys.executable)
        warm_s, _, warm_total = timed([MESH, "run"], {**env, "MESH_HOME": str(warm_home)}, root, warm_home)
        stop_servers(warm_home)
        shutil.rmtree(warm_home, ignore_errors=True)
        if scale in ui_scales:
            before = load_average()
            measured = ui_runs.measure(home, work)
            users[str(scale)] = {"load_before": before, **measured, "load_after": load_average()}
            stop_servers(home)
            print(f"scale {scale}, users' paths: {json.dumps(users[str(scale)])}", flush=True)
        os.environ["MESH_HOME"] = str(home)
        mesh = Mesh.load(MeshProject.discover(root))
        governed = projections.measure(mesh)  # the run's home, as the run left it
        print(f"scale {scale}, governed projections: {governed}", flush=True)
        manifests = baseline.prepare(mesh, work / f"baseline-{scale}")
        load_duck = load_average()
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
            # the whole run: the command, the run worker server and its workers, shared pages once
            "peak_rss_mb": round(total),
            "peak_rss_one_process_mb": round(rss),
            "peak_rss_warm_mb": round(warm_total),
            "mesh_warm_s": round(warm_s, 2),
            "ratio_warm": round(warm_s / duck_s, 2),
            "duckdb_same_memory_limit_s": round(capped_s, 2),
            "ratio_same_memory_limit": round(mesh_s / capped_s, 2),
            "load": {"cold": load_cold, "warm": load_warm, "duckdb": load_duck},
            "projections": governed,
        }
        print(
            f"scale {scale}: {rows:,} rows, mesh {mesh_s:.1f}s (warm {warm_s:.1f}s), duckdb {duck_s:.1f}s, "
            f"ratio {mesh_s / duck_s:.1f}x (warm {warm_s / duck_s:.1f}x; {mesh_s / capped_s:.1f}x against DuckDB "
            f"within {limit}, {capped_s:.1f}s), peak {rss:.0f} MB one process, "
            f"{total:.0f} MB all processes ({warm_total:.0f} MB warm); load {load_cold} / {load_warm} / {load_duck}",
            flush=True,
        )
        shutil.rmtree(home, ignore_errors=True)
    return out, users


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
        "Cold: no run worker server for the home yet (`mesh run` starts one); warm: the server already up.",
        "",
        f"Fixed overhead (smallest scale, mesh minus DuckDB): {results['fixed_overhead_s']} s cold, "
        f"{results['fixed_overhead_warm_s']} s warm",
        "",
        f"Checks of a {c['rows']:,}-row product: GX in DuckDB {c['gx_s']} s vs SQL {c['sql_s']} s "
        f"(ratio {c['ratio']}), peak RSS {c['peak_rss_mb']} MB",
        "",
        "| products | definitions load (s) |",
        "|---|---|",
    ]
    lines += [f"| {n} | {s} |" for n, s in results["load_s"].items()]
    lines += [
        "",
        "Governed projections (every consumer's read of every product it consumes, made by the platform; "
        "included in the mesh run above):",
        "",
        "| scale | reads (masked) | rows | MB | first read (s) | share of the mesh run | again, cached (s) |",
        "|---|---|---|---|---|---|---|",
    ]
    for scale, r in results["runs"].items():
        g = r["projections"]
        share = f"{100 * g['cold_s'] / r['mesh_s']:.0f}%"
        lines.append(
            f"| {scale} | {g['reads']} ({g['masked_reads']}) | {g['rows']:,} | {g['mb']} | {g['cold_s']} | {share} "
            f"| {g['cached_s']} |"
        )
    for scale, u in results.get("users", {}).items():
        lines += [
            "",
            f"Users' paths at scale {scale} (load {u['load_before']} before, {u['load_after']} after): a run "
            "launched from the UI (GraphQL `launchRun`, warm run worker server), `mesh run --domain`, and for dbt "
            "domains the UI's run of the dbt assets against a plain `dbt build` of the same models and inputs",
            "",
            "| domain | UI run, whole job (s) | `mesh run --domain` (s) | UI run, dbt assets (s) | `dbt build` (s) "
            "| ratio |",
            "|---|---|---|---|---|---|",
        ]
        for domain, seconds in u["ui_run_s"].items():
            dbt = [u["ui_dbt_s"].get(domain, "-"), u["dbt_build_s"].get(domain, "-")]
            ratio = u["ui_run_vs_dbt_build"].get(domain, "-")
            lines.append(f"| {domain} | {seconds} | {u['mesh_run_s'][domain]} | {dbt[0]} | {dbt[1]} | {ratio} |")
    if results.get("stream"):
        st = results["stream"]
        lines += [
            "",
            f"Stream (scale {st['scale']}, daemon running, {st['batches']} batches every {st['interval_s']} s, "
            f"load {st['load_before']} before, {st['load_after']} after): landing to published p50 "
            f"{st['latency_p50_s']} s, p95 {st['latency_p95_s']} s; to the consumer updated "
            f"({st['consumer']}) p50 {st['consumer_latency_p50_s']} s, p95 {st['consumer_latency_p95_s']} s; "
            f"backlog of {st['backlog_events']:,} events at {st['throughput_events_per_s']} events/s",
        ]
    (RESULTS / "latest.md").write_text("\n".join(lines) + "\n")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scales = [float(s) for s in results["runs"]]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(scales, [r["mesh_s"] for r in results["runs"].values()], "o-", label="mesh run (Dagster + dbt + GX)")
    ax.plot(scales, [r["mesh_warm_s"] for r in results["runs"].values()], "^--", label="mesh run, server warm")
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
    parser.add_argument("--ui-scales", type=float, nargs="*", help="scales of the users' paths (UI, dbt build)")
    parser.add_argument("--no-stream", action="store_true", help="without the stream's latency (about 5 min)")
    parser.add_argument("--readme", action="store_true", help="only rewrite the README's table from latest.json")
    args = parser.parse_args()
    readme = MeshProject.discover().root / "README.md"
    if args.readme:
        changed = readme_table.update_readme(readme, readme_table.latest_results())
        print("README.md performance table " + ("updated" if changed else "already current"))
        return
    scales = args.scales or ([0.05, 0.2] if args.quick else [1, 5, 20])
    ui_scales = args.ui_scales if args.ui_scales is not None else ([scales[0]] if args.quick else [1, 20])
    check_rows = 1_000_000 if args.quick else 10_000_000
    product_counts = [10, 50] if args.quick else [10, 50, 200]
    # a straggling process's files must not cost the results: they are written after this block
    with tempfile.TemporaryDirectory(prefix="mesh-bench-", ignore_cleanup_errors=True) as tmp:
        work = Path(tmp)
        runs, users = mesh_vs_duckdb(scales, ui_scales, work)
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
        # the micro-batch path with the daemon; ~5 min, so not in --quick
        streaming = None if args.quick or args.no_stream else stream.measure(1.0, 50, 2.0, 100, 20, 2000, work)
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
        "users": users,
        "ui_run_s": {s: u["ui_run_s"] for s, u in users.items()},
        "ui_run_vs_dbt_build": {s: u["ui_run_vs_dbt_build"] for s, u in users.items()},
        "stream": streaming,
        "stream_latency_s": None
        if streaming is None
        else {
            "published": {"p50": streaming["latency_p50_s"], "p95": streaming["latency_p95_s"]},
            "consumer": {"p50": streaming["consumer_latency_p50_s"], "p95": streaming["consumer_latency_p95_s"]},
        },
    }
    write(results)
    print((RESULTS / "latest.md").read_text())
    if results["mode"] == "full":  # a quick run's small scales would misstate the README's figures
        readme_table.update_readme(readme, results)
        print("README.md performance table updated")


if __name__ == "__main__":
    main()
