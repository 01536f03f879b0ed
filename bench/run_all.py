"""Every benchmark at quick settings, one table: `make bench` runs this.

    .venv/bin/python bench/run_all.py [--data ../shared/data] [--e2e-count 1000] [--only NAME ...] [--json F]

Each bench runs as its own process (with a time limit); its printed output is kept under
runs/bench/<name>.log and its key figure is parsed from it. The table and `runs/bench/summary.json`
(machine-readable: one object per bench with its figures, seconds and status) are the result. Quick
settings prove the benches run and give indicative figures; bench/RESULTS.md says how each was measured
at full size. The end-to-end run at full size is `make bench-e2e` (20,000 pages).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent


def _table_row(text: str, first_cell: str) -> list[str] | None:
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells and cells[0].startswith(first_cell):
            return cells
    return None


def parse_extraction(text: str) -> dict:
    row = _table_row(text, "default")
    return {"f1": float(row[7]), "precision": float(row[5]), "recall": float(row[6]), "s_per_page": float(row[9])}


def parse_filters(text: str) -> dict:
    datatrove = _table_row(text, "datatrove 0.10.1")
    cold = _table_row(text, "gristmill ScoreQuality + decide, cold")
    warm = _table_row(text, "gristmill ScoreQuality + decide, warm")
    same = re.search(r"identical decisions and first reasons on all (\d+) documents", text)
    return {"datatrove_mb_s_core": float(datatrove[2]), "gristmill_cold_mb_s_core": float(cold[2]),
            "gristmill_warm_mb_s_core": float(warm[2]), "vs_datatrove": float(cold[3].rstrip("x")),
            "vs_datatrove_warm": float(warm[3].rstrip("x")), "same_decisions_docs": int(same.group(1)) if same else None}


def parse_minhash(text: str) -> dict:
    rates = {m.group(1): float(m.group(2)) for m in re.finditer(
        r"^(gristmill|datatrove|datasketch)\s+\d+\s+[\d.]+\s+[\d.]+\s+([\d.]+)", text, re.M)}
    ratio = re.search(r"gristmill / datatrove: ([\d.]+)", text)
    return {"gristmill_mb_s_core": rates.get("gristmill"), "datatrove_mb_s_core": rates.get("datatrove"),
            "vs_datatrove": float(ratio.group(1)) if ratio else None}


def parse_dedup_scale(text: str) -> dict:
    rows = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    r = rows[-1]
    return {"documents": r["documents"], "dedup_s": r["dedup_s"], "near_removed": r["near_removed"],
            "planted_near": r["planted_near"], "exact_removed": r["exact_removed"], "false_removed": r["false_removed"]}


def parse_crawl(text: str) -> dict:
    rows = [c for c in (_table_row(text, str(f)) for f in range(1, 9)) if c and c[0].isdigit()]
    best = max(rows, key=lambda c: float(c[4]))
    return {"pages_per_s": float(best[4]), "fetchers": int(best[0]), "connections": int(best[1])}


def parse_e2e(path: Path) -> dict:
    summary = json.loads(path.read_text())
    out = {"pages": summary["pages"], "ratio": summary.get("ratio")}
    for side, row in summary["sides"].items():
        out[f"{side}_wall_s"] = row["wall_s"]
        out[f"{side}_mb_s_core"] = row["mb_per_s_per_core"]
        out[f"{side}_peak_pss_mb"] = row["peak_pss_mb"]
    if "agreement" in summary:
        out["jaccard"] = summary["agreement"]["jaccard"]
    return out


def parse_scale_file(text: str) -> dict:
    rows = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    first, last = rows[0], rows[-1]
    growth = {role: round(last["memory"][role]["peak_rss_mib"] / first["memory"][role]["peak_rss_mib"] - 1, 3)
              for role in ("driver", "split_worker") if role in first["memory"] and role in last["memory"]}
    return {"pages": [r["pages"] for r in rows], "driver_rss_growth": growth.get("driver"),
            "worker_rss_growth": growth.get("split_worker"), "driver_received_bytes": last["driver_received_bytes"]}


def parse_tokenize_scale(text: str) -> dict:
    rows = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    by = {(r["mode"], r["workers"]): r for r in rows}
    base = by.get(("baseline", 0))
    best = max((r for r in rows if r["mode"] == "distributed"), key=lambda r: r["tokens_per_s"])
    return {"tokens_per_s": best["tokens_per_s"], "workers": best["workers"],
            "vs_baseline": round(best["tokens_per_s"] / base["tokens_per_s"], 2) if base else None,
            "identical": "byte-identical across worker counts: True" in text}


def benches(data: Path, e2e_count: int, out: Path) -> list[tuple[str, list[str], object, str, int]]:
    """(name, argv, parser, headline, time limit s)."""
    py = sys.executable
    e2e_json = out / "e2e.json"
    return [
        ("extraction", [py, str(BENCH / "extraction_eval.py"), str(data / "trafilatura-eval-en"), "--configs", "default"],
         parse_extraction, "F1 {f1:.3f} ({s_per_page:.3f} s/page)", 900),
        ("filters", [py, str(BENCH / "filters.py"), str(data), "--repeats", "1"],
         parse_filters, "{vs_datatrove:.1f}x datatrove cold, {vs_datatrove_warm:.1f}x warm (same decisions)", 1200),
        ("minhash", [py, str(BENCH / "minhash.py"), "--docs", "400", "--datatrove-docs", "100", "--pairs", "100",
                     "--data", str(data)],
         parse_minhash, "{gristmill_mb_s_core:.2f} MB/s/core, {vs_datatrove:.1f}x datatrove", 900),
        ("dedup_scale", [py, str(BENCH / "dedup_scale.py"), "--sizes", "10000", "--out", str(out / "dedup-scale")],
         parse_dedup_scale, "{documents} docs in {dedup_s:.1f} s, near {near_removed}/{planted_near}, false {false_removed}", 900),
        ("scale_file", [py, str(BENCH / "scale_file.py"), "--data", str(data), "--work", str(out / "scale-file")],
         parse_scale_file, "peak RSS {pages[0]} → {pages[1]} pages: worker {worker_rss_growth:+.1%}, "
                           "driver {driver_rss_growth:+.1%}", 1800),
        ("tokenize_scale", [py, str(BENCH / "tokenize_scale.py"), "--curated", str(out / "scale-file" / "run-8000" / "curated"),
                            "--work", str(out / "tokenize-scale")],
         parse_tokenize_scale, "{tokens_per_s:,} tokens/s ({workers} workers), {vs_baseline:.2f}x the one-process step, "
                               "shards identical: {identical}", 900),
        ("crawl", [py, str(BENCH / "crawl.py"), "--fetchers", "2", "--connections", "4", "--repeat", "1"],
         parse_crawl, "{pages_per_s:.0f} pages/s ({fetchers} fetchers x {connections} connections)", 600),
        ("e2e", [py, str(BENCH / "e2e.py"), "--count", str(e2e_count), "--data", str(data), "--work", str(out / "e2e"),
                 "--json", str(e2e_json)],
         lambda _text: parse_e2e(e2e_json),
         "{ratio:.2f}x datatrove, Jaccard {jaccard:.3f} ({pages} pages; {gristmill_wall_s:.0f} s vs {datatrove_wall_s:.0f} s)", 3600),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT / ".." / "shared" / "data")
    parser.add_argument("--e2e-count", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "bench")
    parser.add_argument("--only", nargs="+", help="bench names to run (default: all)")
    parser.add_argument("--json", type=Path, help="summary file (default: OUT/summary.json)")
    args = parser.parse_args(argv)
    args.data = args.data.resolve()
    args.out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}

    results = []
    for name, cmd, parse, headline, limit in benches(args.data, args.e2e_count, args.out):
        if args.only and name not in args.only:
            continue
        print(f"[{name}] {' '.join(cmd[1:])}", file=sys.stderr, flush=True)
        started = time.perf_counter()
        log = args.out / f"{name}.log"
        try:
            proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=limit)
            log.write_text(proc.stdout + "\n--- stderr ---\n" + proc.stderr)
            status = "ok" if proc.returncode == 0 else f"exit {proc.returncode}"
            figures = parse(proc.stdout) if proc.returncode == 0 else {}
        except subprocess.TimeoutExpired:
            status, figures = f"timeout {limit} s", {}
        except (TypeError, ValueError, KeyError, IndexError, AttributeError) as err:  # output not as expected
            status, figures = f"unparsed: {type(err).__name__}: {err}", {}
        seconds = time.perf_counter() - started
        try:
            line = headline.format(**figures) if figures else "-"
        except (KeyError, TypeError, ValueError):
            line = json.dumps(figures)
        results.append({"bench": name, "status": status, "seconds": round(seconds, 1), "figures": figures,
                        "headline": line, "log": str(log)})

    width = max(len(r["bench"]) for r in results) if results else 5
    print(f"\n{'bench':<{width}}  {'status':<8} {'s':>6}  key figure")
    for r in results:
        print(f"{r['bench']:<{width}}  {r['status']:<8} {r['seconds']:6.0f}  {r['headline']}")
    print(f"\n{os.cpu_count()} CPU(s); logs and summary.json in {args.out}")
    (args.json or args.out / "summary.json").write_text(json.dumps(
        {"cpus": os.cpu_count(), "benches": results}, indent=1))
    return 0 if all(r["status"] == "ok" for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
