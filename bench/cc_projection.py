"""One Common Crawl dump on paper (issue 22): CPU-hours per stage, the bottleneck, exchange and network
volume per node, and the wall time on a cluster, from per-core throughputs this repository measured.

    .venv/bin/python bench/cc_projection.py [--stats runs/bench-scale-file/run-8000/stats.json]
                                            [--tokenize runs/bench/tokenize_scale-40000.json]
                                            [--nodes 100 --cores 64]

Measured inputs (each named where it is printed): the text stages' MB/s per core from a run's stats.json
(seconds inside each stage summed over workers, bytes of text in; wall inside the stage, so a loaded machine
makes them pessimistic); extraction MB/s per core of HTML from bench/RESULTS.md "Extraction engines" (CPU
seconds of the sandbox and its parent on trafilatura's 140 real article pages); WARC reading from "WARC
reader"; dedup from "End to end at scale" (bench/dedup_scale.py); tokenization from bench/tokenize_scale.py.
The dump's shape (files, pages, bytes) is the issue's; the per-page sizes and the funnel are assumptions,
printed with their source, to be replaced by a dump's own statistics.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# The dump (issue 22): ~90,000 WARC files, 2.5-3 billion pages, ~100 TB of gzip WARC.
WARC_FILES = 90_000
PAGES = 2.75e9
WARC_GZIP_BYTES = 100e12
# Assumptions, per page: HTML from the "a 1 GB Common Crawl WARC decodes to about 4-5 GB" over
# ~30,000 responses a file (2.75e9 / 90,000) -> ~150 KB decoded a response; main text ~3 KB (FineWeb's
# documents average ~680 GPT-2 tokens: 15T tokens / 22B documents); the documents reaching dedup (after
# language and quality) ~25% of pages, and kept tokens after dedup ~156 billion (FineWeb: 15T tokens over
# 96 dumps), as FineWeb's funnel.
HTML_BYTES_PER_PAGE = 150e3
TEXT_BYTES_PER_PAGE = 3e3
DEDUP_SHARE = 0.25
KEPT_TOKENS = 156e9
TOKENS_PER_DOC = 680
# Measured elsewhere in bench/RESULTS.md (MB/s per core):
WARC_READ_MBPS = 35.8  # "WARC reader": gristmill's warcio reader, gzip WARC bytes
EXTRACT_MBPS = {"trafilatura": 10.11, "resiliparse-cascade": 65.12}  # "Extraction engines", real article pages
DEDUP_CORE_S_PER_DOC = 24.8 * 2 / 1e6  # "End to end at scale": 1M documents in 24.8 s on 2 cores
BAND_ROW_BYTES = 18  # dedup band row (node, band, key); 11 bands + 1 exact per document (112 perms at 0.75)
BANDS_PER_DOC = 12
SPILL_BYTES_PER_DOC = 150  # keys, position and provenance beside the tokens in the token spill
TEXT_STAGES = ("language", "quality", "bias", "toxicity", "pii", "dedup", "decide")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stats", type=Path, default=ROOT / "runs" / "bench-scale-file" / "run-8000" / "stats.json")
    parser.add_argument("--tokenize", type=Path, default=ROOT / "runs" / "bench" / "tokenize_scale-40000.json")
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--cores", type=int, default=64)
    args = parser.parse_args(argv)
    stats = json.loads(args.stats.read_text())
    stages = {s["stage"]: s for s in stats["stages"]}
    text_mbps = {name: stages[name]["bytes_in"] / 1e6 / stages[name]["seconds"] for name in TEXT_STAGES if name in stages}
    runs = json.loads(args.tokenize.read_text())
    one = next(r for r in runs if r["mode"] == "distributed" and r["workers"] == 1)
    # The encode phase with one worker (its task on all the run's CPUs), per core.
    encode_tokens_per_core_s = one["tokens"] / one["report"]["seconds"]["encode"] / 2

    text_bytes = PAGES * TEXT_BYTES_PER_PAGE
    dedup_docs = PAGES * DEDUP_SHARE
    kept_docs = KEPT_TOKENS / TOKENS_PER_DOC
    print(f"text stages measured on {args.stats} (load: see RESULTS), MB/s of text per core:")
    print("  " + ", ".join(f"{k} {v:.2f}" for k, v in text_mbps.items()))
    print(f"tokenize: encode {encode_tokens_per_core_s / 1e6:.2f} M tokens/s per core ({args.tokenize})\n")
    for engine, mbps in EXTRACT_MBPS.items():
        core_h = {
            "read WARC": WARC_GZIP_BYTES / 1e6 / WARC_READ_MBPS / 3600,
            f"extract ({engine})": PAGES * HTML_BYTES_PER_PAGE / 1e6 / mbps / 3600,
        }
        for name, rate in text_mbps.items():
            core_h[name if name != "dedup" else "minhash signatures"] = text_bytes / 1e6 / rate / 3600
        core_h["dedup (global step)"] = dedup_docs * DEDUP_CORE_S_PER_DOC / 3600
        core_h["tokenize"] = KEPT_TOKENS / encode_tokens_per_core_s / 3600
        total = sum(core_h.values())
        cores = args.nodes * args.cores
        print(f"== extract.engine: {engine} ==")
        for name, hours in sorted(core_h.items(), key=lambda kv: -kv[1]):
            print(f"  {name:<24} {hours:>10,.0f} core-h  {hours / total:6.1%}")
        print(f"  {'total':<24} {total:>10,.0f} core-h -> {total / cores:.1f} h on {args.nodes} nodes x {args.cores} cores "
              f"({cores:,} cores; {WARC_FILES * 8:,} splits of 128 MiB keep them busy)\n")
    band_bytes = dedup_docs * BANDS_PER_DOC * BAND_ROW_BYTES
    spill_bytes = KEPT_TOKENS * 2 + kept_docs * SPILL_BYTES_PER_DOC
    print("exchange volume (written once to shared storage, read once):")
    print(f"  dedup band rows: {dedup_docs / 1e9:.2f} B documents x {BANDS_PER_DOC} x {BAND_ROW_BYTES} B = {band_bytes / 1e9:,.0f} GB")
    print(f"  token shuffle:   {KEPT_TOKENS / 1e9:.0f} B tokens x 2 B (uint16) + {kept_docs / 1e9:.2f} B docs x "
          f"{SPILL_BYTES_PER_DOC} B = {spill_bytes / 1e9:,.0f} GB")
    print(f"per node of {args.nodes}: input {WARC_GZIP_BYTES / args.nodes / 1e12:.1f} TB of gzip WARC read; "
          f"exchange {(band_bytes + spill_bytes) * 2 / args.nodes / 1e9:.1f} GB (written + read)")


if __name__ == "__main__":
    main()
