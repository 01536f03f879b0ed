"""What every source shares: opening local paths and URIs, rows with every source column, quarantine rows.

A source is a small object with `paths` (paths, globs or URIs) and `read(path) -> pyarrow.Table` that
turns one input file into rows of `columns.SOURCE_SCHEMA`, one per record, and never raises on bad
input: what cannot be read becomes a row with a `quarantine_reason`.
"""

from __future__ import annotations

import json
import os

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


def to_table(rows: list[dict]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=C.SOURCE_SCHEMA)
