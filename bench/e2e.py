"""End to end, side by side: gristmill against datatrove's FineWeb pipeline on the same WARC files.

    .venv/bin/python bench/e2e.py --count 20000                 # build (or reuse) the corpus, run both, compare
    .venv/bin/python bench/e2e.py --corpus DIR [--workers N] [--only gristmill|datatrove] [--pii] [--json F]
    .venv/bin/python bench/e2e.py --count 2000 --engine resiliparse-clean   # gristmill on another extract.engine

The corpus is bench/corpus.py's (cached in --work/corpus-<count>-<seed>); both tools read its .warc.gz
files. Matched stages, every setting from bench/e2e.yaml (gristmill's defaults):

  gristmill (local Ray, num_cpus = workers)    datatrove 0.10.1 (LocalPipelineExecutor, workers = cores)
  warc source                                  WarcReader (one task per file)
  extract: trafilatura in a sandbox process    Trafilatura, same options, in its sandbox process
    (--engine: any extract.engine; datatrove keeps trafilatura)
  language: py3langid, en ≥ 0.65               PyLangIdFilter: the same scorer as a datatrove filter
  quality: one split, every rule's score       GopherRepetition, GopherQuality, C4Quality(no terminal-punct), FineWebQuality
  decide
  dedup: exact + MinHash-LSH, 11 × 10, 5-grams MinHash signature / buckets / cluster / filter, 11 × 10, 5-grams
  [pii, when the job has it]                   [PIIFormatter, with --pii]
  tokenize: GPT-NeoX tokenizer.json, shards     DocumentTokenizer, same tokenizer.json

Each side runs in its own child process (a cold start: Ray or the forkserver start inside the timing);
the parent samples the memory of the child's whole process tree every 0.2 s (sum of RSS, and sum of PSS,
which counts shared pages such as Ray's object store once). Figures: wall seconds, documents/s, input
HTML MB/s per core, peak memory, the ratio datatrove wall / gristmill wall, and the Jaccard of the two
kept URL sets, with the URLs the two disagree on broken down by page kind and where each side dropped them.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
JOB = BENCH / "e2e.yaml"


# ---------------------------------------------------------------------------------------------- sides

def load_bench_job(corpus: Path, out: Path, workers: int, pii: bool, engine: str | None = None):
    from gristmill.schemas.job import ExtractConfig, Job, load_job

    job = load_job(JOB)
    sources = [s.model_copy(update={"paths": [str(corpus / "*.warc.gz")]}) for s in job.sources]
    update = {"sources": sources, "output": str(out), "ray": job.ray.model_copy(update={"num_cpus": workers})}
    if engine:  # validated, as a job file's would be
        update["extract"] = ExtractConfig(**{**job.extract.model_dump(), "engine": engine})
    if pii:
        if "pii" not in Job.model_fields:
            raise SystemExit("--pii: this gristmill has no `pii:` job section yet")
        if getattr(job, "pii", None) is None:
            update["pii"] = Job.model_fields["pii"].annotation.__args__[0]()  # PiiConfig() from `PiiConfig | None`
    elif "pii" in Job.model_fields:
        update["pii"] = None  # gristmill redacts by default; without --pii neither side does
    return job.model_copy(update=update)


def side_gristmill(corpus: Path, out: Path, workers: int, pii: bool, engine: str | None = None) -> dict:
    from gristmill.pipeline.engine.api import run

    job = load_bench_job(corpus, out, workers, pii, engine)
    result = run(job, log=lambda *a: None)
    return {"seconds": result.stats.seconds, "stages": {s.stage: round(s.seconds, 2) for s in result.stats.stages}}


def side_datatrove(corpus: Path, out: Path, workers: int, pii: bool, engine: str | None = None) -> dict:
    from e2e_datatrove import run_datatrove

    job = load_bench_job(corpus, out, workers, False)
    bands, rows = job.dedup.band_rows()
    files = len(list(corpus.glob("*.warc.gz")))
    run_datatrove(corpus, out, workers, files, job.tokenize.tokenizer_file, languages=list(job.language.keep),
                  min_score=job.language.min_score, extract=job.extract.model_dump(), n_grams=job.dedup.n,
                  bands=bands, rows=rows, seed=job.dedup.seed, pii=pii)
    return {}


# ------------------------------------------------------------------------------------------- measuring

class TreeMemory(threading.Thread):
    """Peak of the summed RSS (and PSS, every 5th sample) of a process and all its descendants, and their
    CPU seconds (each process's last sampled user + system time, summed: a process's last < 0.2 s is missed)."""

    def __init__(self, pid: int, interval_s: float = 0.2):
        super().__init__(daemon=True)
        import psutil

        self.root, self.interval_s = psutil.Process(pid), interval_s
        self.peak_rss = self.peak_pss = self.peak_procs = 0
        self.cpu: dict[int, float] = {}  # pid -> latest user + system seconds (its own, not its children's)
        self.done = threading.Event()

    def run(self) -> None:
        import psutil

        tick = 0
        while not self.done.is_set():
            try:
                procs = [self.root, *self.root.children(recursive=True)]
            except psutil.NoSuchProcess:
                break
            rss = pss = 0
            for p in procs:
                try:
                    rss += p.memory_info().rss
                    times = p.cpu_times()
                    self.cpu[p.pid] = times.user + times.system
                    if tick % 5 == 0:
                        pss += p.memory_full_info().pss
                except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                    pass
            self.peak_rss, self.peak_procs = max(self.peak_rss, rss), max(self.peak_procs, len(procs))
            self.peak_pss = max(self.peak_pss, pss)
            tick += 1
            self.done.wait(self.interval_s)


def measure(side: str, corpus: Path, out: Path, workers: int, pii: bool, engine: str | None = None) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(BENCH), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
           "RAY_USAGE_STATS_ENABLED": "0"}
    cmd = [sys.executable, str(Path(__file__).resolve()), "--side", side, "--corpus", str(corpus), "--out", str(out),
           "--workers", str(workers)] + (["--pii"] if pii else []) + (["--engine", engine] if engine else [])
    log = out.with_suffix(".log")
    out.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with open(log, "w") as log_file:
        child = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=log_file, text=True)
        sampler = TreeMemory(child.pid)
        sampler.start()
        stdout, _ = child.communicate()
    wall = time.perf_counter() - started
    sampler.done.set()
    sampler.join()
    if child.returncode != 0:
        raise SystemExit(f"{side} failed (exit {child.returncode}); see {log}")
    detail = json.loads(stdout.strip().splitlines()[-1]) if stdout.strip() else {}
    return {"wall_s": wall, "cpu_s": sum(sampler.cpu.values()), "peak_rss_mb": sampler.peak_rss / 2**20, "peak_pss_mb": sampler.peak_pss / 2**20,
            "processes": sampler.peak_procs, "detail": detail}


# -------------------------------------------------------------------------------------------- comparing

def gristmill_outcome(out: Path) -> tuple[set[str], dict[str, str]]:
    import pyarrow.parquet as pq

    kept = set()
    for path in sorted((out / "curated").glob("*.parquet")):
        kept.update(pq.read_table(path, columns=["url"])["url"].to_pylist())
    reasons = {}
    for path in sorted((out / "rejected").glob("*.parquet")):
        table = pq.read_table(path, columns=["url", "drop_reason"])
        reasons.update(zip(table["url"].to_pylist(), table["drop_reason"].to_pylist()))
    return kept, reasons


def datatrove_outcome(out: Path) -> tuple[set[str], set[str]]:
    """(kept URLs, URLs that passed the filters: dedup removed the difference)."""
    from e2e_datatrove import kept_urls

    passed = set()
    for path in sorted((out / "filtered").glob("*.jsonl")):
        with open(path, encoding="utf-8") as f:
            passed.update(json.loads(line)["metadata"]["url"] for line in f)
    return set(kept_urls(out)), passed


def compare(corpus: Path, gm_out: Path, dt_out: Path) -> dict:
    kinds = dict(line.split("\t")[:2] for line in (corpus / "pages.tsv").read_text().splitlines()[1:])
    gm_kept, gm_reasons = gristmill_outcome(gm_out)
    dt_kept, dt_passed = datatrove_outcome(dt_out)
    union = gm_kept | dt_kept
    jaccard = len(gm_kept & dt_kept) / len(union) if union else 1.0

    def where(url: str) -> str:
        gm = "kept" if url in gm_kept else gm_reasons.get(url, "absent")
        dt = "kept" if url in dt_kept else ("dedup" if url in dt_passed else "filters/extract")
        return f"{kinds.get(url, '?')}: gristmill {gm} / datatrove {dt}"

    disagree = Counter(where(u) for u in union - (gm_kept & dt_kept))
    return {"gristmill_kept": len(gm_kept), "datatrove_kept": len(dt_kept), "both": len(gm_kept & dt_kept),
            "jaccard": round(jaccard, 4), "disagreements": dict(disagree.most_common())}


def ensure_corpus(args) -> Path:
    if args.corpus:
        return args.corpus
    from corpus import write_corpus

    corpus = args.work / f"corpus-{args.count}-{args.seed}"
    if not (corpus / "manifest.json").exists():
        print(f"building the corpus ({args.count} pages) in {corpus} ...", file=sys.stderr)
        write_corpus(corpus, args.count, args.seed, args.files, args.near_dup_fraction, args.data)
    return corpus


def report(corpus: Path, results: dict, workers: int, comparison: dict | None) -> dict:
    manifest = json.loads((corpus / "manifest.json").read_text())
    pages, mb = manifest["count"], manifest["html_bytes"] / 1e6
    rows = {}
    for side, r in results.items():
        rows[side] = {"wall_s": round(r["wall_s"], 2), "cpu_s": round(r["cpu_s"], 1), "docs_per_s": round(pages / r["wall_s"], 1),
                      "mb_per_s_per_core": round(mb / r["wall_s"] / workers, 3), "peak_rss_mb": round(r["peak_rss_mb"]),
                      "peak_pss_mb": round(r["peak_pss_mb"]), "processes": r["processes"]}
    print(f"\ncorpus {corpus}: {pages} pages, {mb:.1f} MB of HTML in {manifest['files']} WARC files; "
          f"{workers} worker(s) on {os.cpu_count()} core(s)")
    print(f"{'':10} {'wall s':>8} {'CPU s':>8} {'docs/s':>8} {'MB/s/core':>10} {'peak RSS MB':>12} {'peak PSS MB':>12} {'procs':>6}")
    for side, row in rows.items():
        print(f"{side:10} {row['wall_s']:8.1f} {row['cpu_s']:8.1f} {row['docs_per_s']:8.1f} {row['mb_per_s_per_core']:10.3f} "
              f"{row['peak_rss_mb']:12d} {row['peak_pss_mb']:12d} {row['processes']:6d}")
    summary = {"pages": pages, "html_mb": round(mb, 2), "workers": workers, "cores": os.cpu_count(), "sides": rows}
    if len(rows) == 2:
        summary["ratio"] = round(rows["datatrove"]["wall_s"] / rows["gristmill"]["wall_s"], 2)
        summary["cpu_ratio"] = round(rows["datatrove"]["cpu_s"] / max(rows["gristmill"]["cpu_s"], 1e-9), 2)
        print(f"ratio (datatrove wall / gristmill wall): {summary['ratio']:.2f}x; "
              f"CPU seconds ratio: {summary['cpu_ratio']:.2f}x")
    if "gristmill" in results:
        print(f"gristmill stage seconds (summed over workers): {results['gristmill']['detail'].get('stages')}; "
              f"{results['gristmill']['detail'].get('seconds')}")
    if "datatrove" in results:
        from e2e_datatrove import step_seconds

        steps = {k: round(v, 2) for k, v in step_seconds(Path(results["datatrove"]["out"])).items()}
        summary["datatrove_steps"] = steps
        print(f"datatrove step seconds (summed over tasks): {steps}")
    if comparison:
        summary["agreement"] = comparison
        print(f"kept: gristmill {comparison['gristmill_kept']}, datatrove {comparison['datatrove_kept']}, both "
              f"{comparison['both']}; Jaccard {comparison['jaccard']:.4f}")
        for what, n in list(comparison["disagreements"].items())[:15]:
            print(f"  {n:5d}  {what}")
    return summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=2000, help="corpus pages (ignored with --corpus)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--near-dup-fraction", type=float, default=0.05)
    parser.add_argument("--data", type=Path, default=ROOT / ".." / "shared" / "data")
    parser.add_argument("--corpus", type=Path, help="an existing bench/corpus.py folder")
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "bench-e2e")
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    parser.add_argument("--only", choices=["gristmill", "datatrove"])
    parser.add_argument("--pii", action="store_true", help="gristmill's pii stage and datatrove's PIIFormatter")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--engine", help="gristmill's extract.engine (default: bench/e2e.yaml's); datatrove keeps trafilatura")
    parser.add_argument("--side", choices=["gristmill", "datatrove"], help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.side:  # a child: run one side, print its details as the last stdout line
        side = side_gristmill if args.side == "gristmill" else side_datatrove
        print(json.dumps(side(args.corpus, args.out, args.workers, args.pii, args.engine)))
        return

    sys.path.insert(0, str(BENCH))
    corpus = ensure_corpus(args)
    results = {}
    for side in ("datatrove", "gristmill"):
        if args.only and side != args.only:
            continue
        out = args.work / f"{side}-{corpus.name}" if side == "datatrove" or not args.engine else args.work / f"{side}-{args.engine}-{corpus.name}"
        if out.exists():
            import shutil

            shutil.rmtree(out)
        print(f"running {side} ...", file=sys.stderr)
        results[side] = {**measure(side, corpus, out, args.workers, args.pii, args.engine), "out": str(out)}
    comparison = None
    if len(results) == 2:
        comparison = compare(corpus, Path(results["gristmill"]["out"]), Path(results["datatrove"]["out"]))
    summary = report(corpus, results, args.workers, comparison)
    summary["engine"] = args.engine or "trafilatura (bench/e2e.yaml)"
    print(f"gristmill extract.engine: {summary['engine']}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
