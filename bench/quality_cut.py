"""The classifier's top-fraction cut: the step as it is (radix selection in Ray tasks, the rewrite in Ray
tasks) against the step it replaced (every (score, id) read into the driver, sorted there, every part
rewritten by the driver), on one synthetic curated folder, each in its own driver process.

    .venv/bin/python bench/quality_cut.py --documents 2000000 --parts 40 [--workers 2] [--json OUT]

The curated parts hold an id, a quality score (coarse, with many ties, and some missing), a source file
and a 200-byte text, in row groups of 1,024 rows as the writers write them. Reported per variant: wall
seconds, the driver's peak RSS (VmHWM of its process), the cutoff (which must be the same), and for the
tasks the passes over the (id, score) columns the selection took.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[1]


def write_curated(folder: Path, documents: int, parts: int, seed: int = 0) -> None:
    from gristmill.schemas import columns as C

    rng = random.Random(seed)
    curated = folder / "curated"
    curated.mkdir(parents=True)
    per_part = -(-documents // parts)
    text = "x" * 200
    for k in range(parts):
        n = min(per_part, documents - k * per_part)
        scores = [None if rng.random() < 0.01 else round(rng.random(), rng.choice((2, 3, 6))) for _ in range(n)]
        table = pa.table({C.ID: [f"doc-{k:04d}-{i:08d}" for i in range(n)], C.QUALITY_MODEL_SCORE: pa.array(scores, pa.float64()),
                          C.SOURCE_FILE: [f"input-{k % 7}.warc.gz"] * n, C.TEXT: [text] * n, C.KEEP: [True] * n,
                          C.DROP_REASON: pa.nulls(n, pa.string())})
        pq.write_table(table, curated / f"part-{k:05d}.parquet", row_group_size=1024, compression="zstd")


def baseline_cut(run_dir: Path, top_fraction: float) -> dict:
    """The step as it was before (git show 5c051bb:pipeline/steps/quality_cut.py), in this process."""
    from gristmill.filters.quality_model import percentile_cutoff
    from gristmill.pipeline.engine.run_folder import RunFolder
    from gristmill.pipeline.steps.move_to_rejected import move_to_rejected
    from gristmill.schemas import columns as C
    from gristmill.schemas import reasons as R

    folder = RunFolder.of(run_dir)
    files = folder.parts()
    scores, ids = [], []
    for f in files:
        table = pq.read_table(f, columns=[C.ID, C.QUALITY_MODEL_SCORE])
        scores += table[C.QUALITY_MODEL_SCORE].to_pylist()
        ids += table[C.ID].to_pylist()
    cutoff = percentile_cutoff(scores, ids, top_fraction)
    folder.rejected.mkdir(parents=True, exist_ok=True)

    def below_cut(table, first):
        return table, [None if cutoff.kept(s, i) else R.QUALITY_NOT_TOP_FRACTION
                       for s, i in zip(table[C.QUALITY_MODEL_SCORE].to_pylist(), table[C.ID].to_pylist())]

    removed = sum(move_to_rejected(p, folder.rejected_by("classifier", p), below_cut).removed for p in files)
    return {"cutoff": cutoff.to_dict(), "removed": removed}


def child(variant: str, run_dir: Path, top_fraction: float, workers: int) -> None:
    began = time.perf_counter()
    if variant == "baseline":
        out = baseline_cut(run_dir, top_fraction)
    else:
        import ray

        from gristmill.pipeline.steps import quality_cut as Q

        ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
        began = time.perf_counter()  # the step, not Ray's start
        passes = []
        result = Q.cut_run(run_dir, top_fraction, log=lambda m: passes.append(m), workers=workers)
        out = {"cutoff": result.cutoff.to_dict(), "removed": result.removed, "log": passes[-1]}
    out["wall_s"] = round(time.perf_counter() - began, 2)
    out["driver_peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(out))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--documents", type=int, default=2_000_000)
    parser.add_argument("--parts", type=int, default=40)
    parser.add_argument("--top-fraction", type=float, default=0.1)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--work", type=Path, default=REPO / "runs" / "bench-quality-cut")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], Path(args.child[1]), args.top_fraction, args.workers)
        return
    shutil.rmtree(args.work, ignore_errors=True)
    write_curated(args.work / "source", args.documents, args.parts)
    results = {}
    for variant in ("baseline", "tasks"):
        run_dir = args.work / variant
        shutil.copytree(args.work / "source", run_dir)
        out = subprocess.run([sys.executable, __file__, "--child", variant, str(run_dir), "--top-fraction",
                              str(args.top_fraction), "--workers", str(args.workers)], capture_output=True, text=True, check=True)
        results[variant] = json.loads(out.stdout.strip().splitlines()[-1])
        print(variant, results[variant], flush=True)
    same = results["baseline"]["cutoff"] == results["tasks"]["cutoff"] and results["baseline"]["removed"] == results["tasks"]["removed"]
    summary = {"documents": args.documents, "parts": args.parts, "top_fraction": args.top_fraction, "workers": args.workers,
               "same_cut": same, **results}
    print(json.dumps(summary, indent=1))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1) + "\n")
    if not same:
        raise SystemExit("the two cuts differ")


if __name__ == "__main__":
    main()
