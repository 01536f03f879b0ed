"""WARC readers compared: gristmill's reader (warcio + body decoding, every record a row) against bare
warcio and FastWARC iterating the same file, on one core, plus which edge cases each can read.

    .venv/bin/python bench/warc_readers.py FILE.warc.gz [--data ../shared/data] [--repeats 3]

FastWARC is not a dependency of gristmill: `pip install fastwarc` to include it (else it is skipped).
Speed is MB of the compressed input per second (best of `repeats`), with the load average printed
beside it. Edge cases: the ARC and WARC files of DATA/warc-samples/edge-cases, records each reader
yields (an exception counts as what it read before it).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from gristmill.pipeline.sources.warc import iter_warc_rows


def gristmill_reader(path: str) -> int:
    return sum(1 for _ in iter_warc_rows(path, 5_000_000))


def warcio_reader(path: str) -> int:
    from warcio.archiveiterator import ArchiveIterator

    n = 0
    with open(path, "rb") as handle:
        for record in ArchiveIterator(handle, arc2warc=True):
            record.content_stream().read()
            n += 1
    return n


def fastwarc_reader(path: str) -> int:
    from fastwarc import ArchiveIterator  # FastWARC 2 (Rust); 1.x named its streams differently

    n = 0
    for record in ArchiveIterator(path, parse_http=True):
        record.reader.read()
        n += 1
    return n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("file", type=Path)
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[1] / ".." / "shared" / "data")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    readers = {"gristmill (warcio + decoding)": gristmill_reader, "warcio": warcio_reader}
    try:
        import fastwarc  # noqa: F401

        readers["fastwarc"] = fastwarc_reader
    except ImportError:
        print("fastwarc not installed: skipped")
    mb = args.file.stat().st_size / 1e6
    print(f"{args.file.name}: {mb:.1f} MB; load average {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print("| reader | records | MB/s (compressed input, one core) |\n|---|---:|---:|")
    for name, read in readers.items():
        best, records = float("inf"), 0
        for _ in range(args.repeats):
            started = time.process_time()
            records = read(str(args.file))
            best = min(best, time.process_time() - started)
        print(f"| {name} | {records} | {mb / best:.1f} |")
    edge = args.data / "warc-samples" / "edge-cases"
    if edge.is_dir():
        print("\n| edge case | " + " | ".join(readers) + " |\n|---|" + "---:|" * len(readers))
        for path in sorted(edge.iterdir()):
            cells = []
            for read in readers.values():
                try:
                    cells.append(str(read(str(path))))
                except Exception as err:  # noqa: BLE001 - what a reader cannot read is the finding
                    cells.append(f"error: {type(err).__name__}")
            print(f"| {path.name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
