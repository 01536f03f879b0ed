"""Document sources: JSONL (plain, .gz, .zst) and Parquet with a text field, one row per record.

datatrove's outputs read as they are: `text`, `id` and a `metadata` object (its JsonlWriter and
ParquetWriter layout). A configurable text key, id key (a deterministic id is made when the record
has none) and extra top-level fields carried into `metadata`. A `url`, top-level or in metadata,
fills the url column.

Bad input never stops a run: a line that is not JSON, a record without the text key or whose text is
not a string, an empty file, an unreadable or corrupt file each become a quarantined row with the
reason; the rest of the file is still read where that is possible.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pyarrow as pa

from gristmill.pipeline.sources.base import empty_row, metadata_json, open_input, quarantine_row, to_table
from gristmill.schemas import columns as C


@dataclass
class _DocumentSource:
    paths: list[str]
    text_key: str = "text"
    id_key: str = "id"
    metadata_keys: list[str] = field(default_factory=list)

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


@dataclass
class JsonlSource(_DocumentSource):
    type: str = field(default="jsonl", init=False)

    def read(self, path: str) -> pa.Table:
        rows = []
        line_no = -1
        try:
            with open_input(path, compression="infer") as handle:
                for line_no, line in enumerate(handle):
                    if not line.strip():
                        rows.append(quarantine_row(path, line_no, f"line {line_no}: empty line"))
                        continue
                    try:
                        record = json.loads(line)
                    except ValueError as err:
                        rows.append(quarantine_row(path, line_no, f"line {line_no}: not JSON: {err}"))
                        continue
                    rows.append(self._row(record, path, line_no))
        except Exception as err:  # noqa: BLE001 - a broken file (bad gzip, unreadable) quarantines its remainder
            rows.append(quarantine_row(path, line_no + 1, f"unreadable from line {line_no + 1}: {type(err).__name__}: {err}"))
        if line_no < 0 and not rows:
            rows.append(quarantine_row(path, 0, "empty file: no records"))
        return to_table(rows)


@dataclass
class ParquetSource(_DocumentSource):
    type: str = field(default="parquet", init=False)

    def read(self, path: str) -> pa.Table:
        import pyarrow.parquet as pq

        rows = []
        offset = 0
        try:
            with open_input(path) as handle:
                parquet = pq.ParquetFile(handle)
                for batch in parquet.iter_batches(batch_size=4096):
                    for record in batch.to_pylist():
                        if isinstance(record.get("metadata"), list):  # a map column arrives as key/value pairs
                            record["metadata"] = dict(record["metadata"])
                        rows.append(self._row(record, path, offset))
                        offset += 1
        except Exception as err:  # noqa: BLE001 - a corrupt file quarantines its remainder
            rows.append(quarantine_row(path, offset, f"unreadable Parquet from row {offset}: {type(err).__name__}: {err}"))
        if not rows:
            rows.append(quarantine_row(path, 0, "empty file: no records"))
        return to_table(rows)
