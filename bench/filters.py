"""Heuristic quality rules, gristmill vs datatrove: MB/s per core on the same English documents.

Usage:
    python bench/filters.py DATA_DIR [--repeats N]

DATA_DIR is the shared data folder (`../shared/data`: warc-samples, quality-text-samples; not shipped).
The documents are the parity set of tests/unit/test_quality_parity.py without its caps: every HTML page of
warc-samples extracted as the extract stage does and kept when py3langid says English, the
quality-text-samples, and the demo web's pages (tests/support/quality_corpus.py).

In one process, one core:
1. datatrove: GopherRepetitionFilter, GopherQualityFilter, C4QualityFilter(filter_no_terminal_punct=False),
   FineWebQualityFilter in sequence (FineWeb's order; a document stops at its first failure), over
   every document;
2. gristmill: the ScoreQuality stage (every score of every rule, no early stop) and the decide step,
   in batches of 64 as a job runs them, starting from an empty word memo ("cold": every distinct
   whitespace chunk is new to the process, as for the first documents a worker sees), then again over
   the same documents ("warm": a long-running worker whose memo already holds the chunks). Each is
   run `--repeats` times (cold ones each with a fresh memo) and the best is reported: the machine may
   be shared, and the best run is the one least disturbed;
3. the first reasons of 1 and 2 must be identical for every document, or the script fails.
MB are UTF-8 bytes of the texts; seconds are process CPU seconds (the machine may be shared).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pyarrow as pa

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the corpus builder and datatrove harness the parity test uses

from support.quality_corpus import datatrove_reason, datatrove_filters, english_corpus  # noqa: E402

from gristmill.filters.english import EnglishTokenizer  # noqa: E402
from gristmill.pipeline.engine.api import default_stages  # noqa: E402
from gristmill.pipeline.stages.decide import decide, rules_of  # noqa: E402
from gristmill.pipeline.stages.quality import ScoreQuality  # noqa: E402
from gristmill.schemas import columns as C  # noqa: E402
from gristmill.schemas.job import Job  # noqa: E402

BATCH = 64


def gristmill_pass(texts: list[str], job: Job) -> tuple[list[str | None], float]:
    names = dict.fromkeys([*C.SOURCE_COLUMNS, C.TEXT, C.LANGUAGE, C.LANGUAGE_SCORE])
    schema = C.schema_of(names)
    tables = [pa.Table.from_pylist([{n: None for n in names} | {C.ID: str(i), C.TEXT: t, C.LANGUAGE: "en",
                                                                 C.LANGUAGE_SCORE: 1.0}
                                    for i, t in enumerate(texts[start:start + BATCH], start)], schema=schema)
              for start in range(0, len(texts), BATCH)]
    stage, rules = ScoreQuality(job.quality), rules_of(s for s in default_stages(job) if s.name in ("language", "quality"))
    reasons: list[str | None] = []
    started = time.process_time()
    for table in tables:
        reasons += decide(stage(table), rules)[C.DROP_REASON].to_pylist()
    return reasons, time.process_time() - started


_START_GRISTMILL = """
import time
from gristmill.filters.english import EnglishTokenizer
EnglishTokenizer.shared()
import sys
print(time.process_time(), "torch" in sys.modules)
"""
_START_DATATROVE = """
import sys, time
sys.path.insert(0, sys.argv[1])
from support.quality_corpus import datatrove_filters, datatrove_reason
datatrove_filters()
datatrove_reason("The cat sat on the mat. " * 20)
print(time.process_time(), "torch" in sys.modules)
"""


def worker_start_seconds(code: str, env: dict | None = None, args=()) -> tuple[float, bool]:
    """CPU seconds of a fresh process that loads the rules (interpreter start, imports, tokenizer setup)."""
    import os
    import subprocess

    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=True,
                         env={**os.environ, **(env or {})}).stdout.split()
    return float(out[-2]), out[-1] == "True"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("--repeats", type=int, default=3,
                        help="gristmill cold runs (each with a fresh memo) and warm runs; the best is reported")
    args = parser.parse_args(argv)

    docs = english_corpus(args.data_dir.resolve())
    texts = [text for _, text in docs]
    megabytes = sum(len(t.encode("utf-8")) for t in texts) / 1e6
    print(f"{len(texts)} English documents, {megabytes:.2f} MB")

    datatrove_filters()  # constructed outside the timing
    theirs, datatrove_doc_s = [], []
    for text in texts:
        started = time.process_time()
        theirs.append(datatrove_reason(text))
        datatrove_doc_s.append(time.process_time() - started)
    datatrove_s = sum(datatrove_doc_s)

    job = Job(name="bench", sources=[{"paths": ["x"]}])
    cold, warm = [], []
    for _ in range(args.repeats):
        # Cold: a fresh tokenizer (spaCy's rules loaded, as a worker's setup does once), empty memo.
        EnglishTokenizer._shared = EnglishTokenizer()
        cold.append(gristmill_pass(texts, job))
    for _ in range(args.repeats):  # warm: the memo holds these documents' chunks
        warm.append(gristmill_pass(texts, job))
    # Between the two: the memo warmed on every other document, timed on the rest (chunks of those
    # seen elsewhere are known, their own new words are not), against datatrove on the same rest.
    rest = texts[1::2]
    rest_megabytes = sum(len(t.encode("utf-8")) for t in rest) / 1e6
    half = []
    for _ in range(args.repeats):
        EnglishTokenizer._shared = EnglishTokenizer()
        gristmill_pass(texts[0::2], job)
        half.append(gristmill_pass(rest, job))
        if half[-1][0] != theirs[1::2]:
            raise SystemExit("decisions differ from datatrove (half-warm)")

    for label, (ours, _) in [("cold", run) for run in cold] + [("warm", run) for run in warm]:
        differ = [(docs[i][0], a, b) for i, (a, b) in enumerate(zip(theirs, ours)) if a != b]
        if differ:
            raise SystemExit(f"decisions differ from datatrove ({label}): {differ[:10]}")
    kept = theirs.count(None)
    print(f"identical decisions and first reasons on all {len(texts)} documents in every run (datatrove keeps {kept})")

    dt_rate = megabytes / datatrove_s
    print("\n| rules | CPU s (best) | MB/s per core | vs datatrove | CPU s of all runs |\n|---|---:|---:|---:|---|")
    print(f"| datatrove 0.10.1, 4 filters | {datatrove_s:.2f} | {dt_rate:.3f} | 1.0x | {datatrove_s:.2f} |")
    for label, runs in (("cold: empty memo", cold), ("warm: memo holds the chunks", warm)):
        seconds = [s for _, s in runs]
        rate = megabytes / min(seconds)
        print(f"| gristmill ScoreQuality + decide, {label} | {min(seconds):.2f} | {rate:.3f} | "
              f"{rate / dt_rate:.1f}x | {', '.join(f'{s:.2f}' for s in seconds)} |")
    rest_dt_rate = rest_megabytes / sum(datatrove_doc_s[1::2])
    seconds = [s for _, s in half]
    rate = rest_megabytes / min(seconds)
    print(f"| datatrove, odd documents ({rest_megabytes:.2f} MB) | {sum(datatrove_doc_s[1::2]):.2f} | {rest_dt_rate:.3f} | 1.0x | |")
    print(f"| gristmill, odd documents, memo warmed on the even ones | {min(seconds):.2f} | {rate:.3f} | "
          f"{rate / rest_dt_rate:.1f}x | {', '.join(f'{s:.2f}' for s in seconds)} |")

    # Worker start: what a fresh worker pays once before its first document (best of `repeats`).
    starts = {
        "gristmill (spaCy loaded without torch)": [worker_start_seconds(_START_GRISTMILL) for _ in range(args.repeats)],
        "gristmill, GRISTMILL_SPACY_TORCH=1 (thinc imports torch)":
            [worker_start_seconds(_START_GRISTMILL, {"GRISTMILL_SPACY_TORCH": "1"}) for _ in range(args.repeats)],
        "datatrove (4 filters, spaCy tokenizer loaded)":
            [worker_start_seconds(_START_DATATROVE, args=[str(REPO / "tests")]) for _ in range(args.repeats)],
    }
    print("\n| worker start | CPU s (best) | torch imported | CPU s of all runs |\n|---|---:|---|---|")
    for label, runs in starts.items():
        print(f"| {label} | {min(s for s, _ in runs):.2f} | {runs[0][1]} | {', '.join(f'{s:.2f}' for s, _ in runs)} |")
    ours_start = min(s for s, _ in starts["gristmill (spaCy loaded without torch)"])
    theirs_start = min(s for s, _ in starts["datatrove (4 filters, spaCy tokenizer loaded)"])
    cold_s = min(s for _, s in cold)
    print(f"\ncold worker over the whole set, start included: gristmill {ours_start + cold_s:.2f} s, datatrove "
          f"{theirs_start + datatrove_s:.2f} s: {(theirs_start + datatrove_s) / (ours_start + cold_s):.1f}x")


if __name__ == "__main__":
    main()
