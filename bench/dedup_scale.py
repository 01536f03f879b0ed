"""End-to-end near dedup (`deduplicate_run`) of generated corpora with a known duplicate rate, on a local
Ray of 2 CPUs: wall time per phase and peak RSS per process.

    .venv/bin/python bench/dedup_scale.py --sizes 10000 100000 [--rows-per-part 50000] [--out /tmp/gristmill-dedup-scale]

Corpus: ~3 KB documents (500 words from a 50k-word letters-only vocabulary). Of every 100 documents, 10
are near duplicates of an earlier one (2% of their words replaced: 5-gram Jaccard ≈ 0.8–0.9) and 5
exact copies of an earlier one (case and spacing changed). Documents are written as curated/ parts of
50,000 rows with their signatures (filters/minhash.py, the per-batch stage's work, timed separately),
in one process; dedup then runs in a fresh process so its peak RSS is its own. Peak RSS is each
process's VmHWM from /proc (the driver and every Ray worker, read just before Ray shuts down); VmHWM
counts object-store pages a worker reads zero-copy, so the workers' RssAnon (their own memory) is also
sampled every 20 ms and its peak reported, overall and per dedup phase.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROWS_PER_PART = 50_000
WORDS_PER_DOC = 500
VOCABULARY = 50_000


def vocabulary() -> np.ndarray:
    rng = np.random.default_rng(12345)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    return np.array(["".join(letters[rng.integers(0, 26, rng.integers(3, 9))]) for _ in range(VOCABULARY)], dtype=object)


def plan(i: int) -> tuple[str, int]:
    """('original' | 'near' | 'exact', source document)."""
    slot = (i * 2654435761) % 100
    if i < 100 or slot >= 15:
        return "original", i
    source = ((i * 2246822519) >> 5) % i  # an earlier document
    return ("near" if slot < 10 else "exact"), plan(source)[1]


def text_of(i: int, vocab: np.ndarray) -> str:
    kind, source = plan(i)
    words = vocab[np.random.default_rng(source).integers(0, VOCABULARY, WORDS_PER_DOC)]
    if kind == "near":
        words = words.copy()
        edit = np.random.default_rng(i + 10**9).random(WORDS_PER_DOC) < 0.02
        words[edit] = "zq"
    text = " ".join(words.tolist())
    return text.upper().replace(" ", "  ") if kind == "exact" else text


def generate(folder: Path, documents: int, rows_per_part: int = ROWS_PER_PART) -> dict:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from gristmill.filters import minhash
    from gristmill.schemas import columns as C
    from gristmill.schemas.job import DedupConfig

    config = DedupConfig()
    if folder.exists():
        shutil.rmtree(folder)
    (folder / "curated").mkdir(parents=True)
    vocab = vocabulary()
    signature_seconds, text_bytes = 0.0, 0
    for part, start in enumerate(range(0, documents, rows_per_part)):
        ids = list(range(start, min(documents, start + rows_per_part)))
        texts = [text_of(i, vocab) for i in ids]
        text_bytes += sum(len(t) for t in texts)
        exact, sigs = [], []
        for chunk in range(0, len(texts), 1000):
            began = time.perf_counter()
            signature, _, words = minhash.signatures(texts[chunk:chunk + 1000], config.n, config.num_perm, config.seed)
            exact += minhash.exact_hashes(words)
            sigs += minhash.signature_bytes(signature)
            signature_seconds += time.perf_counter() - began
        table = pa.table({
            C.ID: pa.array([f"{i:016x}" for i in ids]),
            C.TEXT: pa.array(texts, C.TYPES[C.TEXT]),
            C.KEEP: pa.array([True] * len(ids)),
            C.DROP_REASON: pa.array([None] * len(ids), pa.string()),
            C.EXACT_HASH: pa.array(exact, pa.string()),
            C.MINHASH: pa.array(sigs, pa.binary()),
        })
        # Row groups of 4,096 rows, as the run writer makes them (one per written batch).
        pq.write_table(table, folder / "curated" / f"part-{part:05d}.parquet", compression="zstd", row_group_size=4096)
    kinds = [plan(i)[0] for i in range(documents)]
    return {"documents": documents, "text_mb": round(text_bytes / 1e6, 1), "signature_s": round(signature_seconds, 2),
            "planted_near": kinds.count("near"), "planted_exact": kinds.count("exact")}


def peak_rss_mb() -> dict[str, float]:
    """VmHWM of this process and of every Ray worker process (ray::…)."""
    peaks = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        if int(pid) == os.getpid():
            name = "driver"
        elif cmdline.startswith("ray::"):
            name = f"worker {pid}"
        else:
            continue
        match = re.search(r"VmHWM:\s+(\d+) kB", status)
        if match:
            peaks[name] = round(int(match.group(1)) / 1024, 1)
    return peaks


class AnonSampler:
    """Samples RssAnon (the process's own pages, not the object store's shared ones) of Ray workers."""

    def __init__(self):
        import threading

        self.peak_anon_mb = 0.0
        self.samples: list[tuple[float, float]] = []  # (time, largest worker RssAnon MB)
        self.phases: dict[str, float] = {}
        self.phase_start = time.perf_counter()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            largest = 0.0
            for pid in os.listdir("/proc"):
                if not pid.isdigit():
                    continue
                try:
                    if not Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"ray::"):
                        continue
                    match = re.search(r"RssAnon:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
                except OSError:
                    continue
                if match:
                    largest = max(largest, int(match.group(1)) / 1024)
            self.samples.append((time.perf_counter(), largest))
            self.peak_anon_mb = max(self.peak_anon_mb, largest)
            self.stop.wait(0.02)

    def end_phase(self, name: str) -> None:
        """Called as each dedup phase ends: the largest worker RssAnon sampled since the previous one."""
        now = time.perf_counter()
        self.phases[name] = round(max((mb for t, mb in self.samples if t >= self.phase_start), default=0.0), 1)
        self.phase_start = now

    def close(self) -> float:
        self.stop.set()
        self.thread.join()
        return round(self.peak_anon_mb, 1)


def deduplicate(folder: Path, workers: int) -> dict:
    import ray

    from gristmill.pipeline.steps.dedup import deduplicate_run
    from gristmill.schemas.job import DedupConfig

    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    ray.init(num_cpus=workers, object_store_memory=1024 * 1024 * 1024, include_dashboard=False,
             log_to_driver=False, logging_level="WARNING")
    sampler = AnonSampler()
    began = time.perf_counter()
    sampler.phase_start = began
    result = deduplicate_run(folder, DedupConfig(), log=lambda *_: None, on_phase=sampler.end_phase)
    seconds = time.perf_counter() - began
    peaks = peak_rss_mb()
    anon_peak = sampler.close()
    ray.shutdown()
    # Originals come before their copies and keep="first", so a removed original is a false positive.
    import pyarrow.parquet as pq

    from gristmill.schemas import columns as C

    removed = [int(i, 16) for f in sorted((folder / "rejected").glob("dedup-*.parquet"))
               for i in pq.read_table(f, columns=[C.ID])[C.ID].to_pylist()]
    false_removed = sum(plan(i)[0] == "original" for i in removed)
    workers_peak = [v for k, v in peaks.items() if k.startswith("worker")]
    return {"dedup_s": round(seconds, 2), "phases_s": result.seconds, "exact_removed": result.exact_removed,
            "near_removed": result.near_removed, "clusters": result.clusters, "rounds": result.rounds,
            "partitions": result.partitions, "candidate_edges": result.candidate_edges,
            "largest_bucket": result.largest_bucket, "false_removed": false_removed, "driver_peak_mb": peaks.get("driver"),
            "worker_peak_mb_max": max(workers_peak, default=None), "worker_anon_peak_mb": anon_peak,
            "worker_anon_peak_by_phase_mb": sampler.phases, "workers": len(workers_peak)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--out", type=Path, default=Path("/tmp/gristmill-dedup-scale"))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rows-per-part", type=int, default=ROWS_PER_PART,
                        help="rows per curated part (a run writes one part per input file)")
    parser.add_argument("--step", choices=["generate", "dedup"], help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--documents", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step == "generate":
        print(json.dumps(generate(args.folder, args.documents, args.rows_per_part)))
        return
    if args.step == "dedup":
        print(json.dumps(deduplicate(args.folder, args.workers)))
        return
    rows = []
    for size in args.sizes:
        folder = args.out / f"n{size}"
        made = json.loads(subprocess.run([sys.executable, __file__, "--step", "generate", "--folder", str(folder),
                                          "--documents", str(size), "--rows-per-part", str(args.rows_per_part)], check=True, capture_output=True, text=True).stdout.splitlines()[-1])
        done = json.loads(subprocess.run([sys.executable, __file__, "--step", "dedup", "--folder", str(folder),
                                          "--workers", str(args.workers)], check=True, capture_output=True, text=True).stdout.splitlines()[-1])
        row = {**made, **done, "parts": -(-size // args.rows_per_part)}
        rows.append(row)
        print(json.dumps(row), flush=True)
        shutil.rmtree(folder, ignore_errors=True)
    print(f"\n{'docs':>8s} {'text MB':>8s} {'sig s':>6s} {'dedup s':>8s} {'exact':>6s}/{'plant':<6s} {'near':>6s}/{'plant':<6s} "
          f"{'false':>5s} {'rounds':>6s} {'driver MB':>9s} {'worker MB':>9s} {'anon MB':>8s}")
    for r in rows:
        print(f"{r['documents']:8d} {r['text_mb']:8.1f} {r['signature_s']:6.1f} {r['dedup_s']:8.1f} {r['exact_removed']:6d}/{r['planted_exact']:<6d} "
              f"{r['near_removed']:6d}/{r['planted_near']:<6d} {r['false_removed']:5d} {r['rounds']:6d} {r['driver_peak_mb']:9.0f} {r['worker_peak_mb_max']:9.0f} {r['worker_anon_peak_mb']:8.0f}")


if __name__ == "__main__":
    main()
