"""Extraction quality and speed of the extract stage's engines and trafilatura settings on trafilatura-eval-en.

Usage:
    python bench/extraction_eval.py DATA_DIR [--engines NAME ...] [--repeats N] [--warc-samples DIR]
    python bench/extraction_eval.py DATA_DIR --configs NAME ... [--exact]

Engines (the default mode): every `extract.engine` runs through the pipeline's own sandbox
(`ExtractionSandbox`, the job's default timeout and memory cap, one child process per engine, kept
warm), so each page pays the pipe and pickling as in a run. The pages are split by sha256(URL): the 70
lowest are the tuning half (the half resiliparse-clean's rules were written on), the other 70 the
held-out half the table reports, with 95% bootstrap intervals (pages resampled, 2,000 draws, seed 0)
for F1 and for each engine's F1 minus trafilatura's on the same draws. This set is trafilatura's own
evaluation set, which its authors tuned on: it favours trafilatura. MB/s per core: HTML bytes over the
CPU seconds of the sandbox child plus this process during the `ExtractionSandbox.extract` calls (decode,
extract, pickling, the pipe), which a busy shared machine disturbs far less than wall time; the wall
figure is printed beside it. The engines take turns, one pass over all 140 pages each, `--repeats`
times, and the median pass counts.
Each engine's outputs must be identical on every pass (determinism), or the script fails.
`--speed-corpus DIR` also times every engine the same way on the HTML responses of DIR/*.warc.gz (a
bench/corpus.py folder: crawl-sized pages, where the per-page cost weighs more).
`--warc-samples DIR` also runs the demo-archive job (language, quality, dedup; the real runner on a local
Ray with 2 CPUs) over DIR/*.warc.gz once per engine and counts the kept documents and why others dropped.

Configs (`--configs`): the older in-process comparison of trafilatura settings, below.

DATA_DIR is a copy of the trafilatura-eval-en set (not shipped with the repository): it holds
`evaldata-en.json` (gold, keyed by URL: {"file", "with": [...], "without": [...]}) and
`html/<file>.gz` (the gzipped upstream pages).

Code path: the same as the pipeline's extraction sandbox (pipeline/stages/extract_sandbox.py): the raw
bytes go through `decode_html(body, None)` (no HTTP header, so BOM / UTF-8 / meta charset / guess), then
`trafilatura.extract(html, output_format="txt", with_metadata=False, deduplicate=False,
**trafilatura_options(ExtractConfig(**cfg)))`. A ValueError/TypeError/AttributeError from trafilatura
yields None, as in the sandbox; any other exception is counted in the `err` column; both score as a
full miss (all "with" snippets FN, all "without" snippets TN). The "datatrove" row is a reference, not
a pipeline config: datatrove's `Trafilatura` extractor defaults, i.e.
`trafilatura.extract(html, favor_precision=True, include_comments=False, deduplicate=True)`. Note that
trafilatura's deduplicate=True keeps a process-wide LRU cache of paragraphs across documents; the
script clears it before that config so the row does not depend on what ran before.

Matching rule (as upstream trafilatura tests/eval_common.py `count_item`): both the extracted text and
each gold snippet are whitespace-normalised with `re.sub(r"\\s+", " ", s).strip()`, then a snippet
counts as present if it is a plain (case-sensitive) substring of the normalised output. A "with"
snippet present is a TP, missing an FN; a "without" snippet present is an FP, absent a TN.
precision = TP/(TP+FP), recall = TP/(TP+FN), F1 = 2TP/(2TP+FP+FN), accuracy = (TP+TN)/all.
`--exact` switches to un-normalised substring matching (older upstream evaluate.py behaviour).

Seconds per page is the wall time of decode_html + trafilatura.extract, averaged over the pages,
in a single process after one warm-up call (no Ray, no sandbox process).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import trafilatura

from gristmill.pipeline.stages.extract import ExtractionSandbox, SandboxCrashed, SandboxTimeout, engine_options, trafilatura_options
from gristmill.pipeline.stages.extract_engines import ENGINES
from gristmill.pipeline.stages.extract_sandbox import decode_html
from gristmill.schemas.job import ExtractConfig, load_job

TUNE_PAGES = 70
BOOTSTRAP_DRAWS = 2000

# name -> ExtractConfig kwargs (pipeline path), or None for the datatrove reference.
CONFIGS: dict[str, dict | None] = {
    "default": {},
    "precision": {"favor_precision": True},
    "recall": {"favor_recall": True},
    "no_tables": {"include_tables": False},
    "precision+no_tables": {"favor_precision": True, "include_tables": False},
    "datatrove": None,
}

_WS = re.compile(r"\s+")


def norm(text: str) -> str:
    return _WS.sub(" ", text).strip()


@dataclass
class Score:
    tp: int = 0
    fn: int = 0
    fp: int = 0
    tn: int = 0
    errors: int = 0
    empty: int = 0
    seconds: float = 0.0
    pages: int = 0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        d = 2 * self.tp + self.fp + self.fn
        return 2 * self.tp / d if d else 0.0

    @property
    def accuracy(self) -> float:
        total = self.tp + self.fn + self.fp + self.tn
        return (self.tp + self.tn) / total if total else 0.0


def make_extractor(cfg: dict | None):
    if cfg is None:  # datatrove.pipeline.extractors.Trafilatura defaults
        def run(html: str):
            return trafilatura.extract(html, favor_precision=True, include_comments=False, deduplicate=True)
    else:
        options = trafilatura_options(ExtractConfig(**cfg))

        def run(html: str):
            return trafilatura.extract(html, output_format="txt", with_metadata=False, deduplicate=False, **options)

    return run


def reset_dedup_cache() -> None:
    try:
        from trafilatura.deduplication import LRU_TEST

        LRU_TEST.clear()
    except (ImportError, AttributeError):
        pass


def load(data_dir: Path) -> list[tuple[str, bytes, dict]]:
    gold_path = data_dir / "evaldata-en.json"
    html_dir = data_dir / "html"
    if not gold_path.is_file() or not html_dir.is_dir():
        sys.exit(
            f"error: {data_dir} is not a trafilatura-eval-en folder "
            f"(expected {gold_path.name} and html/); pass the data folder as the first argument"
        )
    gold = json.loads(gold_path.read_text(encoding="utf-8"))
    pages = []
    missing = []
    for url, item in gold.items():
        path = html_dir / (item["file"] + ".gz")
        if not path.is_file():
            missing.append(path.name)
            continue
        pages.append((url, gzip.decompress(path.read_bytes()), item))
    if missing:
        print(f"warning: {len(missing)} gold pages have no HTML file, skipped: {missing[:5]}", file=sys.stderr)
    if not pages:
        sys.exit(f"error: no HTML pages found under {html_dir}")
    return pages


def evaluate(name: str, cfg: dict | None, pages, exact: bool) -> Score:
    run = make_extractor(cfg)
    clean = (lambda s: s) if exact else norm
    run(decode_html(b"<html><body><article><p>warm up text.</p></article></body></html>", None)[0])
    reset_dedup_cache()
    score = Score()
    for url, body, item in pages:
        start = time.perf_counter()
        try:
            html, _charset = decode_html(body, None)
            try:
                text = run(html)
            except (ValueError, TypeError, AttributeError):  # as in the sandbox
                text = None
        except Exception as exc:  # noqa: BLE001 - counted, shown once
            if score.errors == 0:
                print(f"  {name}: {item['file']}: {type(exc).__name__}: {exc}", file=sys.stderr)
            score.errors += 1
            text = None
        score.seconds += time.perf_counter() - start
        score.pages += 1
        out = clean(text) if text else ""
        if not out:
            score.empty += 1
        hits_with = sum(1 for s in item["with"] if out and clean(s) in out)
        hits_without = sum(1 for s in item["without"] if out and clean(s) in out)
        score.tp += hits_with
        score.fn += len(item["with"]) - hits_with
        score.fp += hits_without
        score.tn += len(item["without"]) - hits_without
    return score


# ------------------------------------------------------------------------------------------- engines

def page_counts(text: str | None, item: dict) -> tuple[int, int, int, int]:
    """(TP, FN, FP, TN) of one page, whitespace-normalised substring matching."""
    out = norm(text) if text else ""
    hits_with = sum(1 for s in item["with"] if out and norm(s) in out)
    hits_without = sum(1 for s in item["without"] if out and norm(s) in out)
    return hits_with, len(item["with"]) - hits_with, hits_without, len(item["without"]) - hits_without


def f1_of(counts) -> float:
    tp = sum(c[0] for c in counts)
    fn = sum(c[1] for c in counts)
    fp = sum(c[2] for c in counts)
    return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0


def split_pages(pages):
    """(tuning half, held-out half): the TUNE_PAGES pages with the lowest sha256(URL), and the rest."""
    ranked = sorted(pages, key=lambda p: hashlib.sha256(p[0].encode()).hexdigest())
    return ranked[:TUNE_PAGES], ranked[TUNE_PAGES:]


def bootstrap(per_page: dict[str, list], baseline: str) -> dict[str, tuple]:
    """engine -> ((F1 low, high), (F1 - baseline's F1: low, high)), 95% percentile intervals over pages."""
    rng = random.Random(0)
    n = len(per_page[baseline])
    draws = {name: [] for name in per_page}
    deltas = {name: [] for name in per_page}
    for _ in range(BOOTSTRAP_DRAWS):
        idx = [rng.randrange(n) for _ in range(n)]
        base = f1_of([per_page[baseline][i] for i in idx])
        for name, counts in per_page.items():
            f1 = f1_of([counts[i] for i in idx])
            draws[name].append(f1)
            deltas[name].append(f1 - base)

    def interval(values):
        values = sorted(values)
        return values[int(0.025 * len(values))], values[int(0.975 * len(values)) - 1]

    return {name: (interval(draws[name]), interval(deltas[name])) for name in per_page}


def cpu_seconds(sandbox: ExtractionSandbox) -> float:
    """CPU seconds so far of this process plus the sandbox child (/proc: utime + stime). On a shared,
    busy machine CPU time is steadier than wall time; a child killed by a timeout takes its CPU with it."""
    with open(f"/proc/{sandbox.process.pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return time.process_time() + (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_engine_pass(sandbox: ExtractionSandbox, pages) -> tuple[list, float, float, Counter]:
    """(texts, wall seconds, CPU seconds, failures) of one pass over the pages."""
    outcomes, seconds, failures = [], 0.0, Counter()
    cpu_start = cpu_seconds(sandbox)
    for _url, body, _item in pages:
        start = time.perf_counter()
        try:
            text, _charset = sandbox.extract(body, None)
        except SandboxTimeout:
            text, failures["timeout"] = None, failures["timeout"] + 1
        except SandboxCrashed:
            text, failures["crash"] = None, failures["crash"] + 1
        seconds += time.perf_counter() - start
        outcomes.append(text)
    cpu = cpu_seconds(sandbox) - cpu_start if sandbox.process is not None else float("nan")
    return outcomes, seconds, cpu, failures


def evaluate_engines(pages, engines: list[str], repeats: int) -> None:
    config = ExtractConfig()
    tune, held_out = split_pages(pages)
    ordered = tune + held_out
    mb = sum(len(body) for _, body, _ in ordered) / 1e6
    sandboxes = {e: ExtractionSandbox(engine_options(ExtractConfig(engine=e)), config.timeout_s, config.sandbox_memory_mb)
                 for e in engines}
    warm = b"<html><body><article><p>warm up text.</p></article></body></html>"
    for sandbox in sandboxes.values():
        sandbox.extract(warm, None)
    outputs, seconds, cpu, failures = {}, {e: [] for e in engines}, {e: [] for e in engines}, {}
    load = os.getloadavg()
    for rep in range(repeats):
        for engine in engines:  # engines take turns, so a busy spell on the machine hits them alike
            texts, secs, cpu_secs, fails = run_engine_pass(sandboxes[engine], ordered)
            seconds[engine].append(secs)
            cpu[engine].append(cpu_secs)
            if rep == 0:
                outputs[engine], failures[engine] = texts, fails
            elif texts != outputs[engine]:
                sys.exit(f"error: {engine} gave different output on pass {rep + 1}: not deterministic")
            print(f"  pass {rep + 1}: {engine} {mb / secs:.2f} MB/s wall, {mb / cpu_secs:.2f} MB/s CPU", file=sys.stderr)
    load = (load, os.getloadavg())
    for sandbox in sandboxes.values():
        sandbox.close()

    if "resiliparse-cascade" in outputs and "resiliparse-clean" in outputs:
        moved = sum(1 for a, b in zip(outputs["resiliparse-cascade"], outputs["resiliparse-clean"]) if a != b)
        print(f"resiliparse-cascade answered differently from resiliparse-clean (trafilatura's answer) on {moved} of "
              f"{len(ordered)} pages")
    per_page = {e: [page_counts(t, item) for t, (_, _, item) in zip(outputs[e], ordered)] for e in engines}
    baseline = "trafilatura" if "trafilatura" in engines else engines[0]
    held = {e: counts[TUNE_PAGES:] for e, counts in per_page.items()}
    intervals = bootstrap(held, baseline)
    speed = {e: mb / statistics.median(cpu[e]) for e in engines}
    wall_speed = {e: mb / statistics.median(seconds[e]) for e in engines}
    n_with = sum(len(i["with"]) for _, _, i in held_out)
    n_without = sum(len(i["without"]) for _, _, i in held_out)
    print(f"trafilatura {trafilatura.__version__}; {len(ordered)} pages ({mb:.1f} MB of HTML): tuning half {len(tune)} pages "
          f"(lowest sha256(URL)), held-out half {len(held_out)} pages ({n_with} 'with', {n_without} 'without' snippets); "
          f"through the sandbox; {repeats} pass(es) per engine, median; load average before {load[0][0]:.2f} {load[0][1]:.2f} "
          f"{load[0][2]:.2f}, after {load[1][0]:.2f} {load[1][1]:.2f} {load[1][2]:.2f}")
    header = (f"| {'engine':<19} | tune F1 | held-out TP | FN | FP | precision | recall | F1 [95% CI]          "
              f"| F1 − {baseline} [95% CI] | MB/s per core (CPU) | × {baseline} | MB/s (wall) | empty | timeout/crash |")
    print(header)
    print("|" + "|".join("-" * len(c) for c in header.split("|")[1:-1]) + "|")
    for e in engines:
        tp, fn, fp = (sum(c[k] for c in held[e]) for k in range(3))
        (lo, hi), (dlo, dhi) = intervals[e]
        empty = sum(1 for t in outputs[e][TUNE_PAGES:] if not (t and t.strip()))
        fails = failures[e]
        print(f"| {e:<19} | {f1_of(per_page[e][:TUNE_PAGES]):7.3f} | {tp:11d} | {fn:2d} | {fp:2d} | {tp / max(tp + fp, 1):9.3f} "
              f"| {tp / max(tp + fn, 1):6.3f} | {f1_of(held[e]):.3f} [{lo:.3f}, {hi:.3f}] "
              f"| {f1_of(held[e]) - f1_of(held[baseline]):+.3f} [{dlo:+.3f}, {dhi:+.3f}]{' ' * max(0, len(baseline) - 11)} "
              f"| {speed[e]:19.2f} | {speed[e] / speed[baseline]:{len(baseline) + 1}.2f}x | {wall_speed[e]:11.2f} "
              f"| {empty:5d} | {fails['timeout']}/{fails['crash']:<11} |")


def corpus_speed(corpus: Path, engines: list[str], repeats: int) -> None:
    """MB/s per core of each engine through the sandbox on the HTML responses of corpus/*.warc.gz (crawl
    pages are small, so the per-page cost weighs more than on the evaluation pages)."""
    from gristmill.pipeline.sources.warc import read_warc_table
    from gristmill.schemas import columns as C

    config = ExtractConfig()
    pages = []
    for path in sorted(corpus.glob("*.warc.gz")):
        table = read_warc_table(str(path), config.max_page_bytes).select([C.CONTENT, C.CONTENT_TYPE, C.SKIP_REASON])
        pages += [(r[C.CONTENT], r[C.CONTENT_TYPE]) for r in table.to_pylist() if r[C.SKIP_REASON] is None and r[C.CONTENT]]
    mb = sum(len(body) for body, _ in pages) / 1e6
    seconds, cpu = {e: [] for e in engines}, {e: [] for e in engines}
    texts = {}
    load = os.getloadavg()
    for _ in range(repeats):
        for engine in engines:
            sandbox = ExtractionSandbox(engine_options(ExtractConfig(engine=engine)), config.timeout_s, config.sandbox_memory_mb)
            sandbox.extract(b"<html><body><p>warm up text.</p></body></html>", None)
            out, secs, cpu_secs, _fails = run_engine_pass(sandbox, [(None, body, content_type) for body, content_type in pages])
            seconds[engine].append(secs)
            cpu[engine].append(cpu_secs)
            sandbox.close()
            texts[engine] = out
    after = os.getloadavg()
    base = "trafilatura" if "trafilatura" in engines else engines[0]
    speed = {e: mb / statistics.median(cpu[e]) for e in engines}
    wall_speed = {e: mb / statistics.median(seconds[e]) for e in engines}
    print(f"\nspeed on {corpus}: {len(pages)} HTML pages, {mb:.1f} MB; through the sandbox, {repeats} pass(es), median; "
          f"load average before {load[0]:.2f}, after {after[0]:.2f}")
    print(f"| engine | MB/s per core (CPU) | × {base} | MB/s (wall) | pages with text |")
    print("|---|---:|---:|---:|---:|")
    for e in engines:
        with_text = sum(1 for t in texts[e] if t and t.strip())
        print(f"| {e} | {speed[e]:.2f} | {speed[e] / speed[base]:.2f}x | {wall_speed[e]:.2f} | {with_text} |")
    if "resiliparse-cascade" in texts and "resiliparse-clean" in texts:
        moved = sum(1 for a, b in zip(texts["resiliparse-cascade"], texts["resiliparse-clean"]) if a != b)
        print(f"resiliparse-cascade answered differently from resiliparse-clean (trafilatura's answer) on {moved} of {len(pages)} pages")


def warc_sample_counts(warc_dir: Path, engines: list[str]) -> None:
    """Kept documents per engine: the demo-archive job over warc_dir/*.warc.gz, one run per engine."""
    import yaml

    files = sorted(str(p.resolve()) for p in warc_dir.glob("*.warc.gz"))  # the job file lives in a temp folder
    if not files:
        sys.exit(f"error: no *.warc.gz in {warc_dir}")
    job = load_job(Path(__file__).resolve().parents[1] / "jobs" / "demo-archive.yaml").model_dump(mode="json")
    job["sources"] = [{"type": "warc", "paths": files}]
    job["ray"] = {"num_cpus": 2, "object_store_memory_mb": 256}
    job["tokenize"]["vocab_size"] = 1024
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for engine in engines:
            job["extract"] = {**job.get("extract", {}), "engine": engine}
            path = Path(tmp) / f"{engine}.yaml"
            path.write_text(yaml.safe_dump(job))
            out = Path(tmp) / engine
            proc = subprocess.run([str(Path(sys.executable).parent / "gristmill"), "run", str(path), "-o", str(out)],
                                  capture_output=True, text=True, timeout=1800)
            if proc.returncode != 0:
                sys.exit(f"error: the {engine} run failed (exit {proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
            stats = json.loads((out / "stats.json").read_text())
            rows[engine] = stats
            print(f"  {engine}: kept {stats['ledger']['kept']}", file=sys.stderr)
    print(f"\nwarc-samples: {len(files)} files ({', '.join(Path(f).name for f in files)}); the demo-archive job, one run per engine")
    reasons = sorted({r for s in rows.values() for r in s["ledger"]["dropped"]})
    print(f"| engine | input | kept | " + " | ".join(reasons) + " |")
    print("|---|---:|---:|" + "---:|" * len(reasons))
    for engine, s in rows.items():
        by = s["ledger"]["dropped"]
        print(f"| {engine} | {s['ledger']['input']} | {s['ledger']['kept']} | " + " | ".join(str(by.get(r, 0)) for r in reasons) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data_dir", type=Path, help="trafilatura-eval-en folder (evaldata-en.json + html/)")
    parser.add_argument("--engines", nargs="+", choices=ENGINES, default=list(ENGINES), metavar="NAME",
                        help=f"engines to evaluate through the sandbox (default: all): {', '.join(ENGINES)}")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes per engine (median counts)")
    parser.add_argument("--warc-samples", type=Path, help="also count kept documents per engine on DIR/*.warc.gz")
    parser.add_argument("--speed-corpus", type=Path, help="also time every engine on the HTML of DIR/*.warc.gz (e.g. a bench/corpus.py folder)")
    parser.add_argument("--configs", nargs="+", choices=list(CONFIGS), metavar="NAME",
                        help=f"instead: trafilatura settings in process, the older table: {', '.join(CONFIGS)}")
    parser.add_argument("--exact", action="store_true", help="with --configs: exact substring match, no whitespace normalisation")
    args = parser.parse_args()
    if not args.data_dir.is_dir():
        sys.exit(f"error: data folder {args.data_dir} does not exist (trafilatura-eval-en is not shipped with the repo)")

    pages = load(args.data_dir)
    if not args.configs:
        evaluate_engines(pages, args.engines, args.repeats)
        if args.speed_corpus:
            corpus_speed(args.speed_corpus, args.engines, args.repeats)
        if args.warc_samples:
            warc_sample_counts(args.warc_samples, args.engines)
        return
    n_with = sum(len(i["with"]) for _, _, i in pages)
    n_without = sum(len(i["without"]) for _, _, i in pages)
    print(f"trafilatura {trafilatura.__version__}; {len(pages)} pages, {n_with} 'with' and {n_without} 'without' "
          f"snippets; matching: {'exact' if args.exact else 'whitespace-normalised'} substring")

    header = f"| {'config':<20} | {'TP':>4} | {'FN':>4} | {'FP':>4} | {'TN':>4} | precision | recall |    F1 | accuracy | s/page | empty | err |"
    rows = []
    for name in args.configs:
        s = evaluate(name, CONFIGS[name], pages, args.exact)
        rows.append((name, s))
        print(f"  {name}: F1 {s.f1:.3f} ({s.seconds:.1f} s)", file=sys.stderr)
    print(header)
    print("|" + "|".join("-" * (len(c)) for c in header.split("|")[1:-1]) + "|")
    for name, s in rows:
        print(f"| {name:<20} | {s.tp:>4} | {s.fn:>4} | {s.fp:>4} | {s.tn:>4} | {s.precision:>9.3f} | {s.recall:>6.3f} "
              f"| {s.f1:.3f} | {s.accuracy:>8.3f} | {s.seconds / s.pages:>6.3f} | {s.empty:>5} | {s.errors:>3} |")
    best_f1 = max(rows, key=lambda r: (r[1].f1, r[1].precision))
    best_p = max(rows, key=lambda r: (r[1].precision, r[1].f1))
    print(f"best F1: {best_f1[0]} ({best_f1[1].f1:.3f}); best precision: {best_p[0]} ({best_p[1].precision:.3f})")


if __name__ == "__main__":
    main()
