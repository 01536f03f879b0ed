"""Tokenization at scale (issue 22): a run's curated documents (by default bench/scale_file.py's one-file run
of 40,000 pages, split over 2 workers) tokenized by the distributed step (pipeline/steps/tokenize.py) with 1 and 2
workers, and by the single-process step it replaced (bench/baseline_tokenize.py) for the ratio. Each in a
fresh process with its own local Ray of --cpus CPUs; reports wall time, tokens/s, the phases, and the peak
RSS and PSS of every process (the driver, the task workers), sampled every 0.25 s from /proc.

    .venv/bin/python bench/tokenize_scale.py [--curated RUN/curated] [--pages 40000] [--workers 1 2]
                                             [--cpus 2] [--json OUT.json]

Without --curated it uses (or first makes, with bench/scale_file.py's corpus and run) the run folder
runs/bench-scale-file/run-PAGES-split. The job's tokenize settings are demo-archive's (trained 4,096-token
BPE, 50,000-token shards, 10% val by domain). Shards of the 1- and 2-worker runs are compared byte for byte.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from scale_file import Sampler  # noqa: E402


def _config():
    from gristmill.schemas.job import load_job

    return load_job(ROOT / "jobs" / "demo-archive.yaml").tokenize


def child(curated: Path, out: Path, mode: str, workers: int, cpus: int) -> None:
    """One tokenization in this process (the parent samples its memory); prints a JSON line."""
    import ray

    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False, logging_level="WARNING")
    started = time.perf_counter()
    if mode == "baseline":
        from baseline_tokenize import baseline_tokenize

        report = baseline_tokenize(curated, out, _config())
    else:
        from gristmill.pipeline.steps.tokenize import tokenize_run

        report = {}
        tokenize_run(curated, out, _config(), workers=workers, report=report)
    wall = time.perf_counter() - started
    print(json.dumps({"wall_s": round(wall, 2), "tokens": report["tokens"], "report": report}), flush=True)
    ray.shutdown()


def run_child(curated: Path, out: Path, mode: str, workers: int, cpus: int) -> dict:
    command = [sys.executable, __file__, "--child", mode, "--curated", str(curated), "--out", str(out),
               "--workers", str(workers), "--cpus", str(cpus)]
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("RAY_ADDRESS", None)
    process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sampler = Sampler(process.pid)
    sampler.start()
    stdout, stderr = process.communicate(timeout=7200)
    sampler.stop.set()
    sampler.join()
    if process.returncode != 0:
        raise SystemExit(f"{mode} tokenization failed:\n{stdout[-3000:]}\n{stderr[-3000:]}")
    result = json.loads(stdout.strip().splitlines()[-1])
    memory = sampler.by_role()
    memory.pop("split_workers", None)
    workers_seen = [p for p in sampler.peaks.values() if p["role"] == "other_ray_worker"]
    result.update(mode=mode, workers=workers, tokens_per_s=round(result["tokens"] / result["wall_s"]), memory=memory,
                  task_processes=[{"cpu_s": round(p["cpu_s"], 1), "peak_rss_mib": round(p["rss"] / 2**20, 1),
                                   "peak_pss_mib": round(p["pss"] / 2**20, 1)} for p in workers_seen if p["cpu_s"] > 1],
                  load_average=[round(x, 2) for x in os.getloadavg()])
    return result


def _shard_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.iterdir()):
        if path.is_file():
            digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--child", choices=["distributed", "baseline"])
    parser.add_argument("--curated", type=Path)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--pages", type=int, default=40000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "bench-tokenize")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    if args.child:
        return child(args.curated, args.out, args.child, args.workers[0], args.cpus)
    curated = args.curated
    if curated is None:
        run = ROOT / "runs" / "bench-scale-file" / f"run-{args.pages}-split"
        if not (run / "stats.json").exists():
            subprocess.run([sys.executable, str(ROOT / "bench" / "scale_file.py"), "--pages", "8000",
                            "--split-pages", str(args.pages)], check=True, cwd=ROOT)
        curated = run / "curated"
    import pyarrow.parquet as pq

    documents = sum(pq.ParquetFile(p).metadata.num_rows for p in curated.glob("part-*.parquet"))
    print(f"curated: {curated} ({documents} documents)", flush=True)
    results = []
    for workers in args.workers:
        results.append(run_child(curated, args.work / f"shards-w{workers}", "distributed", workers, args.cpus))
        print(json.dumps(results[-1]), flush=True)
    if not args.no_baseline:
        results.append(run_child(curated, args.work / "shards-baseline", "baseline", 0, args.cpus))
        print(json.dumps(results[-1]), flush=True)
    digests = {w: _shard_digest(args.work / f"shards-w{w}") for w in args.workers}
    print(f"\n{documents} documents; shards byte-identical across worker counts: {len(set(digests.values())) == 1}")
    print(f"{'run':<22} {'wall s':>8} {'tokens/s':>10} {'driver RSS/PSS MiB':>20} {'task worker RSS/PSS MiB':>24}  phases s")
    for r in results:
        name = f"{r['mode']} {r['workers']} worker(s)" if r["mode"] == "distributed" else "baseline (one process)"
        driver, other = r["memory"].get("driver", {}), r["memory"].get("other_ray_worker", {})
        phases = r["report"].get("seconds", {})
        print(f"{name:<22} {r['wall_s']:>8.1f} {r['tokens_per_s']:>10,} "
              f"{driver.get('peak_rss_mib', 0):>10.0f} / {driver.get('peak_pss_mib', 0):<8.0f}"
              f"{other.get('peak_rss_mib', 0):>12.0f} / {other.get('peak_pss_mib', 0):<10.0f}  {phases}")
    print("load average (1, 5, 15 min) at the end:", ", ".join(f"{x:.2f}" for x in os.getloadavg()))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
