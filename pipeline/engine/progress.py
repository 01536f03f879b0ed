"""Progress of the per-batch stages as the driver receives completion records: records and documents per
second, MB per second, and an ETA when the total is known.

The total is known for local WARC/ARC inputs: the bytes of the input files whose splits are done over the
files' sizes is the share read. Other inputs (JSONL, Parquet, URIs) report rates without an ETA. Rates are over the time since the
stages started (Ray and model start-up included, as a user waits for them). Lines go to `log` at most
every `every_s` seconds; the runner enables this only when stderr is a terminal (or GRISTMILL_PROGRESS=1).
"""

from __future__ import annotations

import os
import time



def input_sizes(files: list[str], source_types: list[str]) -> dict[str, int] | None:
    """{path: bytes} when every input is a local WARC/ARC file (offsets are bytes), else None."""
    sizes = {}
    for path, source_type in zip(files, source_types):
        if source_type not in ("warc", "wet") or "://" in path or not os.path.exists(path):
            return None
        sizes[path] = os.path.getsize(path)
    return sizes or None


class Progress:
    def __init__(self, log, sizes: dict[str, int] | None = None, every_s: float = 5.0, clock=time.monotonic):
        self.log, self.sizes, self.every_s, self.clock = log, sizes, every_s, clock
        self.started = self.last = clock()
        self.records = self.documents = self.text_bytes = 0
        self.offsets: dict[str, int] = {}
        self.last_line: str | None = None

    def update(self, record, path: str) -> None:
        """A split's completion record (writers.SplitRecord) arrived; `path` is its input file."""
        self.records += record.ledger.input
        self.documents += record.documents
        self.text_bytes += record.text_bytes
        if self.sizes and path in self.sizes:
            self.offsets[path] = self.sizes[path]
        now = self.clock()
        if now - self.last >= self.every_s:
            self.last = now
            self.last_line = self.line(now)
            self.log(self.last_line)

    def finish(self) -> None:
        """The final line (unless the last periodic line already said the same)."""
        line = self.line()
        if line != self.last_line:
            self.log(line)

    def fraction(self) -> float | None:
        if not self.sizes:
            return None
        total = sum(self.sizes.values())
        return min(1.0, sum(self.offsets.values()) / total) if total else None

    def line(self, now: float | None = None) -> str:
        elapsed = max((now or self.clock()) - self.started, 1e-9)
        text = (f"gristmill: {self.records} records, {self.documents} documents "
                f"({self.documents / elapsed:.0f} docs/s), {self.text_bytes / 1e6:.1f} MB text ({self.text_bytes / 1e6 / elapsed:.2f} MB/s)")
        fraction = self.fraction()
        if fraction:
            read = fraction * sum(self.sizes.values()) / 1e6
            eta = elapsed * (1 - fraction) / fraction
            text += f", input {read:.1f} MB ({read / elapsed:.2f} MB/s), {fraction:.0%}, ETA {int(eta) // 60}:{int(eta) % 60:02d}"
        return text
