"""Memory against file size, and one big file split over the workers: single-file WARCs of 1,000 and 8,000
pages, each run through `gristmill run jobs/demo-archive.yaml --input FILE` on 2 worker CPUs, with
per-process peak RSS, PSS and USS; then (with --split-pages) one file of that many pages plus `--big` pages
near max_page_bytes, run split (split_bytes = its size / --splits) and unsplit.

    .venv/bin/python bench/scale_file.py [--pages 1000 8000] [--split-pages 40000 --big 20 --splits 8]
                                         [--skip-unsplit] [--data ../shared/data] [--json OUT.json]

Each run is a `gristmill run` subprocess with its own local Ray. A sampler thread reads every process of
its tree every 0.25 s: RSS, PSS and USS from /proc/PID/smaps_rollup, and RSS's exact peak (VmHWM) from
/proc/PID/status. PSS splits shared pages, such as the Arrow and model mappings, between the processes
that map them, so a process's PSS rises as other Ray workers exit: USS, its private pages alone, is the
figure to compare across runs. Processes are grouped as the driver (the
`gristmill run` process), the split workers (Ray actors `SplitWorker`, which read, score and write), the
other Ray workers (the global steps' tasks, dedup) and Ray's own daemons (raylet, GCS; not reported).
Peaks are over the whole run, so the driver's includes tokenization, which still runs in the driver
(issue 22). The goal (issue 20): each peak within 10% between the two files. The corpus is
bench/corpus.py's (`--files 1`), written once per size under the work folder.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import yaml

from gristmill.schemas.job import load_job

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from corpus import write_corpus  # noqa: E402

MIB = 1024 * 1024


def _tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    parent = int(handle.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry))
    found, frontier = [root], [root]
    while frontier:
        for kid in children.get(frontier.pop(), []):
            found.append(kid)
            frontier.append(kid)
    return found


def _memory(pid: int) -> tuple[int, int, int] | None:
    """(RSS, PSS, USS) in bytes, from smaps_rollup; USS is the process's private memory (Private_Clean +
    Private_Dirty), which, unlike PSS, does not change with how many other processes map the same pages."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return None
    values = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in text.splitlines()[1:] if line.split()[1:]}
    return values.get("Rss", 0), values.get("Pss", 0), values.get("Private_Clean", 0) + values.get("Private_Dirty", 0)


def _rss_high_water(pid: int) -> int:
    """VmHWM in bytes: the process's exact peak RSS so far, which a sample every 0.25 s can miss (the
    driver's peak at the end of tokenization lasts less than that). PSS and USS have no such mark."""
    try:
        with open(f"/proc/{pid}/status") as handle:
            return next((int(line.split()[1]) * 1024 for line in handle if line.startswith("VmHWM:")), 0)
    except OSError:
        return 0


def _cpu_seconds(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _role(pid: int, driver: int) -> str | None:
    if pid == driver:
        return "driver"
    try:
        name = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return None
    if "SplitWorker" in name:
        return "split_worker"
    if name.startswith("ray::") or "default_worker.py" in name:
        return "other_ray_worker"
    return None


class Sampler(threading.Thread):
    def __init__(self, driver: int, every_s: float = 0.25):
        super().__init__(daemon=True)
        self.driver, self.every_s = driver, every_s
        self.peaks: dict[int, dict] = {}
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(self.every_s):
            sample = {}
            for pid in _tree(self.driver):
                role = _role(pid, self.driver)
                memory = _memory(pid) if role else None
                if memory is not None:
                    sample[pid] = (role, (max(memory[0], _rss_high_water(pid)), *memory[1:]))
            for pid, (role, memory) in sample.items():
                peak = self.peaks.setdefault(pid, {"role": role, "rss": 0, "pss": 0, "uss": 0, "cpu_s": 0.0,
                                                   "first": time.monotonic()})
                peak["cpu_s"], peak["last"] = _cpu_seconds(pid) or peak["cpu_s"], time.monotonic()
                peak["role"] = role if role != "other_ray_worker" else peak["role"]  # an actor names itself late
                if memory[1] > peak["pss"]:  # PSS shares pages among the processes alive: count them
                    peak["alive_at_pss_peak"] = len(sample)
                peak["rss"], peak["pss"], peak["uss"] = (max(peak["rss"], memory[0]), max(peak["pss"], memory[1]),
                                                         max(peak["uss"], memory[2]))

    def by_role(self) -> dict[str, dict]:
        out = {}
        for role in ("driver", "split_worker", "other_ray_worker"):
            peaks = [p for p in self.peaks.values() if p["role"] == role]
            if peaks:
                top = max(peaks, key=lambda p: p["pss"])
                out[role] = {"processes": len(peaks), "peak_rss_mib": round(max(p["rss"] for p in peaks) / MIB, 1),
                             "peak_pss_mib": round(top["pss"] / MIB, 1),
                             "peak_uss_mib": round(max(p["uss"] for p in peaks) / MIB, 1),
                             "alive_at_pss_peak": top.get("alive_at_pss_peak")}
        out["split_workers"] = [{"pid": pid, "cpu_s": round(p["cpu_s"], 1), "seen_s": round(p["last"] - p["first"], 1),
                                 "peak_rss_mib": round(p["rss"] / MIB, 1), "peak_pss_mib": round(p["pss"] / MIB, 1)}
                                for pid, p in sorted(self.peaks.items()) if p["role"] == "split_worker"]
        return out


def run_one(warc: Path, output: Path, workers: int, split_bytes: int | None = None) -> dict:
    command = [sys.executable, "-m", "gristmill.pipeline.cli.app", "run", str(ROOT / "jobs" / "demo-archive.yaml"),
               "--input", str(warc), "--output", str(output)]
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("RAY_ADDRESS", None)
    started = time.perf_counter()
    # num_cpus comes from the job (all cores); cap it with a job copy (the resolved job: its paths are
    # absolute, so the copy reads the same files from anywhere) so the worker count is `workers`.
    job = load_job(ROOT / "jobs" / "demo-archive.yaml").model_dump(mode="json")
    job["ray"]["num_cpus"] = workers
    if split_bytes:
        job["split_bytes"] = split_bytes
    job_copy = output.parent / f"{output.name}.job.yaml"
    job_copy.write_text(yaml.safe_dump(job, sort_keys=False))
    command[4] = str(job_copy)
    process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sampler = Sampler(process.pid)
    sampler.start()
    stdout, stderr = process.communicate(timeout=3600)
    sampler.stop.set()
    sampler.join()
    if process.returncode != 0:
        raise SystemExit(f"gristmill run failed on {warc}:\n{stdout[-3000:]}\n{stderr[-3000:]}")
    stats = json.loads((output / "stats.json").read_text())
    return {"input": str(warc), "input_mb": round(warc.stat().st_size / 1e6, 1), "records": stats["ledger"]["input"],
            "kept": stats["ledger"]["kept"], "wall_s": round(time.perf_counter() - started, 1),
            "seconds": stats["seconds"], "driver_received_bytes": stats["run"]["driver_received_bytes"],
            "driver_peak_rss_mib_after": stats["run"]["driver_peak_rss_mib"],
            "splits": stats["run"]["splits"], "splits_by_worker": stats["run"].get("splits_by_worker"),
            "memory": sampler.by_role(), "load_average": os.getloadavg()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, nargs="+", default=[1000, 8000])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--data", type=Path, default=ROOT / ".." / "shared" / "data")
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "bench-scale-file")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--split-pages", type=int, help="also run one file of this many pages, split and unsplit")
    parser.add_argument("--big", type=int, default=20, help="pages near max_page_bytes added to the split file")
    parser.add_argument("--splits", type=int, default=8)
    parser.add_argument("--skip-unsplit", action="store_true", help="run the --split-pages file split only (memory)")
    args = parser.parse_args(argv)
    results = []
    for pages in args.pages:
        corpus = args.work / f"corpus-{pages}"
        if not (corpus / "manifest.json").exists():
            write_corpus(corpus, pages, 0, 1, 0.05, args.data if args.data.is_dir() else None)
        warc = next(corpus.glob("*.warc.gz"))
        result = run_one(warc, args.work / f"run-{pages}", args.workers)
        results.append({"pages": pages, **result})
        print(json.dumps(results[-1]), flush=True)
    first, last = results[0], results[-1]
    keys = ("peak_rss_mib", "peak_pss_mib", "peak_uss_mib")
    print(f"\n{'process':<18} " + " ".join(f"{r['pages']:>5} pages RSS/PSS/USS MiB (alive)" for r in results)
          + "   growth RSS / PSS / USS")
    for role in ("driver", "split_worker", "other_ray_worker"):
        if role not in first["memory"] or role not in last["memory"]:
            continue
        cells = " ".join(f"{' / '.join(f'{m[k]:.0f}' for k in keys):>22} ({m['alive_at_pss_peak']:>2})       "
                         for m in (r["memory"][role] for r in results))
        grow = [last["memory"][role][k] / first["memory"][role][k] - 1 for k in keys]
        print(f"{role:<18} {cells}   " + " / ".join(f"{g:+.1%}" for g in grow))
    print("(alive: processes of the run, driver and Ray workers, sampled when that peak PSS was)")
    print("load average (1, 5, 15 min) at the end:", ", ".join(f"{x:.2f}" for x in os.getloadavg()))
    if args.split_pages:
        corpus = args.work / f"corpus-{args.split_pages}-big{args.big}"
        if not (corpus / "manifest.json").exists():
            write_corpus(corpus, args.split_pages, 0, 1, 0.05, args.data if args.data.is_dir() else None, args.big)
        warc = next(corpus.glob("*.warc.gz"))
        split_bytes = -(-warc.stat().st_size // args.splits)
        split = run_one(warc, args.work / f"run-{args.split_pages}-split", args.workers, split_bytes)
        results.append({"pages": args.split_pages, "big": args.big, "split_bytes": split_bytes, **split})
        print(json.dumps(results[-1]), flush=True)
        whole = None
        if not args.skip_unsplit:
            whole = run_one(warc, args.work / f"run-{args.split_pages}-whole", args.workers, 1 << 50)
            results.append({"pages": args.split_pages, "big": args.big, "split_bytes": None, **whole})
            print(json.dumps(results[-1]), flush=True)
        shares = split["splits_by_worker"] or {}
        total = sum(shares.values()) or 1
        print(f"\n{args.split_pages} pages + {args.big} big, {warc.stat().st_size / 1e6:.1f} MB, {split['splits']} splits "
              f"of {split_bytes} bytes on {args.workers} workers: share per worker "
              + ", ".join(f"{n / total:.0%}" for n in shares.values()))
        for w in split["memory"].get("split_workers", []):
            print(f"  worker pid {w['pid']}: CPU {w['cpu_s']} s over {w['seen_s']} s wall "
                  f"({w['cpu_s'] / max(w['seen_s'], 1e-9):.0%}), peak RSS {w['peak_rss_mib']} / PSS {w['peak_pss_mib']} MiB")
        if whole:
            print(f"  wall: split {split['wall_s']} s, unsplit {whole['wall_s']} s ({whole['wall_s'] / split['wall_s']:.2f}x)")
        base = next((r for r in results if r["pages"] == 8000 and "big" not in r), None)
        if base:
            for role in ("driver", "split_worker"):
                a, b = base["memory"][role], split["memory"][role]
                print(f"  {role} peak RSS/PSS/USS vs the 8,000-page run: {b['peak_rss_mib'] / a['peak_rss_mib'] - 1:+.1%} / "
                      f"{b['peak_pss_mib'] / a['peak_pss_mib'] - 1:+.1%} / {b['peak_uss_mib'] / a['peak_uss_mib'] - 1:+.1%}")
        print("load average (1, 5, 15 min) at the end:", ", ".join(f"{x:.2f}" for x in os.getloadavg()))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
