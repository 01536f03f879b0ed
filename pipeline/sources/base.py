"""What every source shares: opening local paths and URIs, rows with every source column, quarantine rows,
and cutting a stream of rows into bounded batches.

A source is a small object with `paths` (paths, globs or URIs) and `rows(path)`, a generator that turns
one input file into rows of `columns.SOURCE_SCHEMA`, one per record, reading the file as a stream (never
the whole file, never a record past the source's size cap), and never raises on bad input: what cannot
be read becomes a row with a `quarantine_reason`. `batches(source, path, rows, bytes)` groups those rows
into tables bounded by rows and by bytes; that is what a worker reads (pipeline/engine/input_task.py).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import pyarrow as pa
import xxhash

from gristmill.schemas import columns as C

MAX_REASON_CHARS = 500


def open_input(path: str, compression: str | None = None):
    """A binary file object for a local path or any fsspec URI (s3://, gs://, http://…); with
    compression="infer", .gz/.bz2/.xz/.zst are decompressed by their suffix."""
    import fsspec

    if compression == "infer" and path.endswith((".zst", ".zstd")):
        import io

        import zstandard

        # fsspec's zstd reader cannot iterate lines; a buffered stream reader can.
        raw = fsspec.open(path, "rb").open()
        return io.BufferedReader(zstandard.ZstdDecompressor().stream_reader(raw, closefd=True))
    return fsspec.open(path, "rb", compression=compression).open()


def generated_id(source_file: str, offset: int) -> str:
    """A deterministic id for a record without one: the same on every machine and worker count."""
    return xxhash.xxh3_64_hexdigest(f"{os.path.basename(source_file)}\0{offset}".encode("utf-8", "surrogatepass"))


def empty_row(source_file: str, offset: int) -> dict:
    row = dict.fromkeys(C.SOURCE_COLUMNS)
    row[C.ID] = generated_id(source_file, offset)
    row[C.SOURCE_FILE] = source_file
    row[C.RECORD_OFFSET] = offset
    return row


def quarantine_row(source_file: str, offset: int, reason: str) -> dict:
    row = empty_row(source_file, offset)
    row[C.QUARANTINE_REASON] = " ".join(reason.split())[:MAX_REASON_CHARS]
    return row


def metadata_json(metadata: dict | None) -> str | None:
    """Metadata as canonical JSON (sorted keys), so equal metadata gives equal bytes."""
    if not metadata:
        return None
    return json.dumps(metadata, sort_keys=True, ensure_ascii=False, default=str)


@dataclass(frozen=True)
class SplitRange:
    """The part of an input file a split owns: the records whose first byte (JSONL, WARC) or whose row
    group (Parquet) lies in [start, end); `end` None: to the end of the file. `first`: the line number
    (JSONL) or row number (Parquet) of the range's first record, so provenance is the unsplit file's."""

    start: int = 0
    end: int | None = None
    first: int = 0


@dataclass
class SplitReport:
    """What a split's reader found, for the runner's chain check (runner.check_chain): where it synced
    on its first record (None: it owns none), the offset of the first record past its end (None when it
    reached the end of the file instead), and whether it met a break (a framing error: a corrupt member,
    an unparseable record, a cut-off tail), after which a file is read whole instead of split."""

    sync: int | None = None
    crossed: int | None = None
    reached_end: bool = False
    broke: bool = False

    def to_dict(self) -> dict:
        return {"sync": self.sync, "crossed": self.crossed, "reached_end": self.reached_end, "broke": self.broke}


WHOLE = SplitRange()


def to_table(rows: list[dict]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=C.SOURCE_SCHEMA)


def row_bytes(row: dict) -> int:
    """What a row weighs in a batch: its body's bytes plus its text's characters."""
    return len(row.get(C.CONTENT) or b"") + len(row.get(C.TEXT) or "")


def batched(rows: Iterable[dict], max_rows: int, max_bytes: int) -> Iterator[pa.Table]:
    """Tables of at most `max_rows` rows and `max_bytes` (row_bytes); a row heavier than `max_bytes` is a
    batch of its own. The cut depends on the rows alone, so the same input gives the same batches."""
    batch: list[dict] = []
    size = 0
    for row in rows:
        weight = row_bytes(row)
        if batch and size + weight > max_bytes:
            yield to_table(batch)
            batch, size = [], 0
        batch.append(row)
        size += weight
        if len(batch) >= max_rows:
            yield to_table(batch)
            batch, size = [], 0
    if batch:
        yield to_table(batch)


def read_all(source, path: str) -> pa.Table:
    """A whole input file as one table: for tests and small files only (runs read `batched`)."""
    return to_table(list(source.rows(path)))


LINE_CHUNK = 1 << 20


def capped_lines(handle, max_bytes: int) -> Iterator[tuple[bytes | None, int]]:
    """(line, length) for each line of a binary stream, without its newline, read LINE_CHUNK bytes at a
    time; a line longer than `max_bytes` comes as (None, its length) and is never held whole (its bytes
    are read and dropped). An empty last line after the final newline is no line, as for `for line in f`."""
    buffer = bytearray()
    length, too_long = 0, False
    # read1: what the stream has decoded so far (at most LINE_CHUNK), so the lines before a broken end
    # of a compressed file are still yielded before its error is raised.
    read = getattr(handle, "read1", handle.read)
    while chunk := read(LINE_CHUNK):
        start = 0
        while True:
            newline = chunk.find(b"\n", start)
            end = newline if newline >= 0 else len(chunk)
            length += end - start
            if not too_long:
                if length > max_bytes:
                    too_long = True
                    buffer.clear()
                else:
                    buffer += chunk[start:end]
            if newline < 0:
                break
            yield (None if too_long else bytes(buffer)), length
            buffer.clear()
            length, too_long, start = 0, False, newline + 1
    if length:
        yield (None if too_long else bytes(buffer)), length
