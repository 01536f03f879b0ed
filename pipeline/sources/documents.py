"""Document sources: JSONL (plain, .gz, .zst) and Parquet with a text field, one row per record.

datatrove's outputs read as they are: `text`, `id` and a `metadata` object (its JsonlWriter and
ParquetWriter layout). A configurable text key, id key (a deterministic id is made when the record
has none) and extra top-level fields carried into `metadata`. A `url`, top-level or in metadata,
fills the url column.

Bad input never stops a run: a line that is not JSON, a record without the text key or whose text is
not a string, a record over `max_record_bytes`, an empty file, an unreadable or corrupt file each become
a quarantined row with the reason; the rest of the file is still read where that is possible. Both read
as streams: JSONL a line at a time (an oversized line is read through in chunks and never held), Parquet
a row group at a time in slices.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from gristmill.pipeline.sources.base import (LINE_CHUNK, WHOLE, SplitRange, SplitReport, capped_lines, empty_row,
                                             metadata_json, open_input, quarantine_row, read_all)
from gristmill.schemas import columns as C
from gristmill.schemas.job import ExtractConfig


@dataclass
class _DocumentSource:
    paths: list[str]
    text_key: str = "text"
    id_key: str = "id"
    metadata_keys: list[str] = field(default_factory=list)
    # A record (a JSONL line, a Parquet text cell) over this many bytes is quarantined as it is read.
    max_record_bytes: int = ExtractConfig().max_page_bytes

    def _row(self, record, source_file: str, offset: int) -> dict:
        if not isinstance(record, dict):
            return quarantine_row(source_file, offset, f"record {offset}: a {type(record).__name__}, not an object")
        if self.text_key not in record:
            return quarantine_row(source_file, offset, f"record {offset}: no {self.text_key!r} field")
        text = record[self.text_key]
        if not isinstance(text, str):
            return quarantine_row(source_file, offset, f"record {offset}: {self.text_key!r} is a {type(text).__name__}, not a string")
        row = empty_row(source_file, offset)
        if record.get(self.id_key) is not None:
            row[C.ID] = str(record[self.id_key])
        metadata = dict(record["metadata"]) if isinstance(record.get("metadata"), dict) else {}
        metadata.update({key: record[key] for key in self.metadata_keys if key in record})
        url = record.get("url") or metadata.get("url")
        row[C.URL] = str(url) if url is not None else None
        row[C.METADATA] = metadata_json(metadata)
        row[C.CONTENT_BYTES] = len(text.encode("utf-8", "surrogatepass"))
        row[C.TEXT] = text
        return row

    def read(self, path: str) -> pa.Table:
        """The whole file as one table (tests and small files; a run reads bounded batches)."""
        return read_all(self, path)


@dataclass
class JsonlSource(_DocumentSource):
    type: str = field(default="jsonl", init=False)

    def rows(self, path: str, split: SplitRange = WHOLE, report: SplitReport | None = None) -> Iterator[dict]:
        """One row per line, read as a stream; a line over `max_record_bytes` is quarantined unread.
        A split (plain files only, runner.plan_splits) owns the lines whose first byte lies in
        [start, end): it skips the line that straddles `start` and reads past `end` to finish its last."""
        report = report if report is not None else SplitReport()
        line_no = split.first - 1
        position = split.start
        try:
            with open_input(path, compression=None if split.start or split.end is not None else "infer") as handle:
                size = None
                if split.end is not None:  # a split of a plain file: its size tells a crossing from the end
                    size = handle.seek(0, 2)
                    handle.seek(0)
                if split.start > 0:
                    handle.seek(split.start - 1)
                    if handle.read(1) != b"\n":  # inside a line the previous split owns: skip to its end
                        skipped = _skip_line(handle)
                        if skipped is None:
                            report.reached_end = True
                            return
                        position += skipped
                        line_no += 1
                lines = capped_lines(handle, self.max_record_bytes)
                while True:
                    if split.end is not None and position >= split.end:  # before reading the next line
                        if position >= size:  # nothing follows: this split read to the end of the file
                            break
                        report.crossed = position
                        return
                    item = next(lines, None)
                    if item is None:
                        break
                    line, length = item
                    if report.sync is None:
                        report.sync = position  # the first line this split owns
                    line_no += 1
                    position += length + 1
                    if line is None:
                        yield quarantine_row(path, line_no, f"line {line_no}: record too large: {length} bytes, over "
                                                            f"the {self.max_record_bytes}-byte cap (max_record_bytes)")
                    elif not line.strip():
                        yield quarantine_row(path, line_no, f"line {line_no}: empty line")
                    else:
                        try:
                            record = json.loads(line)
                        except ValueError as err:
                            yield quarantine_row(path, line_no, f"line {line_no}: not JSON: {err}")
                            continue
                        yield self._row(record, path, line_no)
                report.reached_end = True
        except Exception as err:  # noqa: BLE001 - a broken file (bad gzip, unreadable) quarantines its remainder
            report.broke = True
            yield quarantine_row(path, line_no + 1, f"unreadable from line {line_no + 1}: {type(err).__name__}: {err}")
            return
        if line_no < 0:
            yield quarantine_row(path, 0, "empty file: no records")


def _skip_line(handle) -> int | None:
    """Read through the next newline; the bytes read (newline included), or None at the end of the file."""
    skipped = 0
    while chunk := handle.read(LINE_CHUNK):
        newline = chunk.find(b"\n")
        if newline >= 0:
            handle.seek(handle.tell() - len(chunk) + newline + 1)
            return skipped + newline + 1
        skipped += len(chunk)
    return None


@dataclass
class ParquetSource(_DocumentSource):
    type: str = field(default="parquet", init=False)

    def rows(self, path: str, split: SplitRange = WHOLE, report: SplitReport | None = None) -> Iterator[dict]:
        """One row per Parquet row, a row group at a time in slices of bounded size (a split: the row
        groups [start, end), its first row numbered `first`). A text cell over
        `max_record_bytes` is quarantined: its length is taken from the Arrow array, never as a Python
        string; a row group of one row whose text column is over the cap is quarantined without reading
        that column at all (a page is the smallest unit Parquet decodes, so a big cell that shares its
        row group with others is decoded once, then dropped)."""
        import pyarrow.parquet as pq

        report = report if report is not None else SplitReport()
        offset = split.first
        try:
            with open_input(path) as handle:
                # pre_buffer off: a row group's column chunks are read as they are decoded, not all at once.
                parquet = pq.ParquetFile(handle, pre_buffer=False, buffer_size=LINE_CHUNK)
                names = parquet.schema_arrow.names
                text_at = names.index(self.text_key) if self.text_key in names else None
                groups = range(split.start, parquet.num_row_groups if split.end is None else split.end)
                report.sync = split.start
                for group in groups:
                    meta = parquet.metadata.row_group(group)
                    text_bytes = meta.column(text_at).total_uncompressed_size if text_at is not None else 0
                    if text_at is not None and meta.num_rows == 1 and text_bytes > self.max_record_bytes:
                        yield quarantine_row(path, offset, f"row {offset}: record too large: its {self.text_key!r} "
                                                           f"column chunk is {text_bytes} bytes, over the "
                                                           f"{self.max_record_bytes}-byte cap (max_record_bytes)")
                        offset += 1
                        continue
                    # Slices of about max_record_bytes of text each (at least one row).
                    per_row = max(text_bytes // max(meta.num_rows, 1), 1)
                    size = max(1, min(4096, self.max_record_bytes // per_row))
                    for batch in parquet.iter_batches(batch_size=size, row_groups=[group]):
                        yield from self._batch_rows(batch, path, offset)
                        offset += batch.num_rows
                report.reached_end = groups.stop == parquet.num_row_groups
                report.crossed = None if report.reached_end else groups.stop
        except Exception as err:  # noqa: BLE001 - a corrupt file quarantines its remainder
            report.broke = True
            yield quarantine_row(path, offset, f"unreadable Parquet from row {offset}: {type(err).__name__}: {err}")
            return
        if offset == 0 and split.start == 0:
            yield quarantine_row(path, 0, "empty file: no records")

    def _batch_rows(self, batch: pa.RecordBatch, path: str, offset: int) -> Iterator[dict]:
        too_large: list[int] = []
        if self.text_key in batch.schema.names and _is_text(batch.schema.field(self.text_key).type):
            column = batch.column(self.text_key)
            lengths = pc.fill_null(pc.binary_length(column), 0)
            over = pc.greater(lengths, self.max_record_bytes)
            if pc.any(over).as_py():
                too_large = [i for i, flag in enumerate(over.to_pylist()) if flag]
                sizes = lengths.to_pylist()
                batch = batch.set_column(batch.schema.get_field_index(self.text_key), self.text_key,
                                         pc.if_else(over, pa.scalar(None, column.type), column))
        too_large_set = set(too_large)
        for i, record in enumerate(batch.to_pylist()):
            if i in too_large_set:
                yield quarantine_row(path, offset + i, f"row {offset + i}: record too large: {sizes[i]} bytes of "
                                                       f"{self.text_key!r}, over the {self.max_record_bytes}-byte cap "
                                                       "(max_record_bytes)")
                continue
            if isinstance(record.get("metadata"), list):  # a map column arrives as key/value pairs
                record["metadata"] = dict(record["metadata"])
            yield self._row(record, path, offset + i)


def _is_text(arrow_type: pa.DataType) -> bool:
    return pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type) or \
        pa.types.is_binary(arrow_type) or pa.types.is_large_binary(arrow_type)
