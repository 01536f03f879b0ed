"""Extraction quality of the extract stage's trafilatura settings on trafilatura-eval-en.

Usage:
    python bench/extraction_eval.py DATA_DIR [--configs NAME ...] [--exact]

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
import json
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import trafilatura

from gristmill.pipeline.stages.extract import trafilatura_options
from gristmill.pipeline.stages.extract_sandbox import decode_html
from gristmill.schemas.job import ExtractConfig

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data_dir", type=Path, help="trafilatura-eval-en folder (evaldata-en.json + html/)")
    parser.add_argument("--configs", nargs="+", choices=list(CONFIGS), default=list(CONFIGS), metavar="NAME",
                        help=f"configs to evaluate (default: all): {', '.join(CONFIGS)}")
    parser.add_argument("--exact", action="store_true", help="exact substring match, no whitespace normalisation")
    args = parser.parse_args()
    if not args.data_dir.is_dir():
        sys.exit(f"error: data folder {args.data_dir} does not exist (trafilatura-eval-en is not shipped with the repo)")

    pages = load(args.data_dir)
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
