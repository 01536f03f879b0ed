"""PII detection speed in MB/s per core: regex-only (the structured recognizers behind the cheap
screen) and NER (the same plus spaCy PERSON/LOCATION through nlp.pipe), one process = one core.

    python bench/pii.py --shared-data ../shared/data [--ner-model auto] [--max-docs 1000] [--repeat 1]
                        [--baseline OLD_PII.py]

--baseline times another version of filters/pii.py (a file, e.g. `git show d5536e4:filters/pii.py >
/tmp/pii_old.py`) on the same documents in the same process, alternating with the current code, so the
ratio holds on a noisy machine.

Documents: the English documents of tests/support/quality_corpus.py (WARC samples, quality text samples, the demo
web). Without --shared-data, the demo web's pages only. Prints documents, MB, the share of documents the
screen sends to the recognizers, seconds and MB/s per mode. Timings on a shared machine are noisy: run it
alone, and report the machine.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one core: set before numpy/thinc load their BLAS
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from gristmill.filters.pii import PiiAnalyzer, find_ner_model, needs_analysis  # noqa: E402


def documents(shared_data: Path | None, max_docs: int) -> list[str]:
    if shared_data is not None:
        from support.quality_corpus import english_corpus

        docs = [t for _, t in english_corpus(shared_data)]
    else:
        from support.quality_corpus import _demo_bodies, _extracted_english

        docs = [t for _, t in _extracted_english(_demo_bodies())]
    return docs[:max_docs]


def measure(analyzer: PiiAnalyzer, docs: list[str], batch: int, repeat: int) -> tuple[float, int]:
    analyzer.analyze_batch(docs[:batch])  # load recognizers and models outside the timing
    best, spans = float("inf"), 0
    for _ in range(repeat):
        started = time.process_time()  # CPU seconds of this process: one core
        spans = 0
        for i in range(0, len(docs), batch):
            spans += sum(len(s) for s in analyzer.analyze_batch(docs[i:i + batch]))
        best = min(best, time.process_time() - started)
    return best, spans


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared-data", type=Path, default=None)
    parser.add_argument("--ner-model", default="auto", help="spaCy model for the NER mode; 'none' skips it")
    parser.add_argument("--max-docs", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--baseline", type=Path, default=None, help="another filters/pii.py to time beside this one")
    args = parser.parse_args()

    docs = documents(args.shared_data, args.max_docs)
    mb = sum(len(d.encode()) for d in docs) / 1e6
    screened = sum(needs_analysis(d) for d in docs)
    print(f"{len(docs)} documents, {mb:.2f} MB; the screen sends {screened} ({screened / max(len(docs), 1):.0%}) "
          "to the structured recognizers")
    modes = [("regex-only", PiiAnalyzer())]
    if args.baseline is not None:
        spec = importlib.util.spec_from_file_location("pii_baseline", args.baseline)
        baseline = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = baseline  # dataclasses look their module up
        spec.loader.exec_module(baseline)
        modes.insert(0, (f"regex-only, baseline {args.baseline.name}", baseline.PiiAnalyzer()))
        modes.append(("regex-only (again, after the baseline)", PiiAnalyzer()))
    model = find_ner_model(args.ner_model) if args.ner_model != "none" else None
    if model:
        modes.append((f"NER ({model})", PiiAnalyzer(ner_model=model)))
    elif args.ner_model != "none":
        print(f"no spaCy model for {args.ner_model!r}: NER mode skipped (pip install 'gristmill[pii-ner]')")
    for name, analyzer in modes:
        seconds, spans = measure(analyzer, docs, args.batch, args.repeat)
        print(f"{name:32} {seconds:8.2f} CPU s  {mb / seconds:8.2f} MB/s per core  {spans} spans")


if __name__ == "__main__":
    main()
