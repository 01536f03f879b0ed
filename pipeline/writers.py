"""RunWriter: routes every row to exactly one of curated/, rejected/ or quarantine/, and counts it.

Rows arrive in input order (the runner preserves order), so part files are numbered deterministically
and a rerun writes the same bytes. While writing, it builds the ledger, the score summaries and the
per-source record counts from the rows themselves: what is counted is what was written.
"""

from __future__ import annotations

import os
from collections import Counter, defaultdict
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from gristmill.schemas import columns as C
from gristmill.schemas.stats import Ledger, Summary

CURATED, REJECTED, QUARANTINE = "curated", "rejected", "quarantine"
QUARANTINE_COLUMNS = (*C.PROVENANCE_COLUMNS, C.WARC_TYPE, C.HTTP_STATUS, C.CONTENT_TYPE, C.QUARANTINE_REASON)
ROWS_PER_FILE = 50_000


class _RollingParquet:
    """part-00000.parquet, part-00001.parquet, … with ROWS_PER_FILE rows each; atomic renames."""

    def __init__(self, folder: Path, rows_per_file: int):
        self.folder, self.rows_per_file = folder, rows_per_file
        self.folder.mkdir(parents=True, exist_ok=True)
        self.writer: pq.ParquetWriter | None = None
        self.part, self.rows_in_part, self.path = 0, 0, None

    def write(self, table: pa.Table) -> None:
        while table.num_rows:
            if self.writer is None:
                self.path = self.folder / f"part-{self.part:05d}.parquet"
                self.writer = pq.ParquetWriter(f"{self.path}.tmp", table.schema, compression="zstd")
            take = min(table.num_rows, self.rows_per_file - self.rows_in_part)
            self.writer.write_table(table.slice(0, take))
            table = table.slice(take)
            self.rows_in_part += take
            if self.rows_in_part == self.rows_per_file:
                self._finish()

    def _finish(self) -> None:
        if self.writer is not None:
            self.writer.close()
            os.replace(f"{self.path}.tmp", self.path)
            self.writer, self.rows_in_part = None, 0
            self.part += 1

    def close(self) -> None:
        self._finish()


class RunWriter:
    def __init__(self, out_dir: Path, rows_per_file: int = ROWS_PER_FILE):
        self.outputs = {name: _RollingParquet(out_dir / name, rows_per_file) for name in (CURATED, REJECTED, QUARANTINE)}
        self.ledger = Ledger()
        self.scores: dict[str, Summary] = {}
        self.sources: dict[str, Counter] = defaultdict(Counter)

    def write(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        quarantined = pc.is_valid(table[C.QUARANTINE_REASON])
        keep = pc.fill_null(table[C.KEEP], False)
        documents = table.filter(pc.invert(quarantined)).drop_columns([C.QUARANTINE_REASON])
        kept = documents.filter(pc.fill_null(documents[C.KEEP], False))
        rejected = documents.filter(pc.invert(pc.fill_null(documents[C.KEEP], False)))
        quarantine = table.filter(quarantined).select(list(QUARANTINE_COLUMNS))
        self.outputs[CURATED].write(kept)
        self.outputs[REJECTED].write(rejected)
        self.outputs[QUARANTINE].write(quarantine)

        self.ledger += Ledger(
            input=table.num_rows,
            kept=kept.num_rows,
            dropped=Counter(rejected[C.DROP_REASON].to_pylist()),
            quarantined=quarantine.num_rows,
        )
        self._count_sources(table, keep, quarantined)
        for name, column in C.SCORES.items():
            if name in documents.column_names:
                summary = self.scores.setdefault(name, Summary(bounds=(column.low, column.high) if column.high is not None else None))
                summary.add_values(documents[name].to_pylist())

    def _count_sources(self, table: pa.Table, keep, quarantined) -> None:
        is_html = pc.fill_null(pc.and_(pc.equal(table[C.WARC_TYPE], "response"),
                                       pc.match_substring(pc.utf8_lower(table[C.CONTENT_TYPE]), "html")), False)
        for source, warc_type, html, kept, quarantine in zip(
            table[C.SOURCE_FILE].to_pylist(), table[C.WARC_TYPE].to_pylist(), is_html.to_pylist(),
            keep.to_pylist(), quarantined.to_pylist(),
        ):
            counts = self.sources[source]
            counts["rows"] += 1
            counts["records"] += warc_type is not None  # a broken archive's remainder is a row, not a record
            if warc_type is not None:
                counts[f"type:{warc_type}"] += 1
            counts["quarantined"] += quarantine
            counts["html_responses"] += html
            counts["kept"] += kept

    def close(self) -> Ledger:
        for output in self.outputs.values():
            output.close()
        return self.ledger

    def source_counts(self) -> dict[str, dict]:
        return {source: dict(sorted(counts.items())) for source, counts in sorted(self.sources.items())}
