"""RunWriter: routes every row to exactly one of curated/, rejected/ or quarantine/, and counts it.

Outputs are partitioned by INPUT FILE, not by arrival: the rows of input file i (its position in the
sorted input list) go to `part-{i:05d}-{k:03d}.parquet` (k rolls every `rows_per_file` rows) under
`parts/curated`, `parts/rejected` and `parts/quarantine` of the work folder. A file's name and bytes
therefore depend only on that input and the job, never on which inputs ran before it, how many
workers there were, or whether the run was resumed.

Rows arrive in input order (the runner preserves order), so when a row of input j arrives every input
before j is complete: its part files are closed (written as `NAME.tmp`, then renamed) and then its
completion record `done/{i:05d}.json` is written (also temp + rename) with what was counted from its
rows: its ledger, its per-source counts and its score summaries. A record exists only if all of the
input's part files do; `--resume` skips the inputs that have one (runner.py) and sums the records of
every input for stats.json, so the totals do not depend on which invocation wrote which input.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections import Counter, defaultdict
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from gristmill.pipeline.faults import fault_point
from gristmill.schemas import columns as C
from gristmill.schemas.stats import Ledger, Summary

CURATED, REJECTED, QUARANTINE = "curated", "rejected", "quarantine"
OUTPUTS = (CURATED, REJECTED, QUARANTINE)
PARTS, DONE = "parts", "done"
QUARANTINE_COLUMNS = (*C.PROVENANCE_COLUMNS, C.WARC_TYPE, C.HTTP_STATUS, C.CONTENT_TYPE, C.QUARANTINE_REASON)
ROWS_PER_FILE = 50_000


def write_atomic(path: Path, text: str) -> None:
    """Write `text` to `path` through `path.tmp` and a rename: readers see the old file or the new one."""
    tmp = Path(f"{path}.tmp")
    with open(tmp, "w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


class _RollingParquet:
    """PREFIX-000.parquet, PREFIX-001.parquet, … with rows_per_file rows each; atomic renames."""

    def __init__(self, folder: Path, prefix: str, rows_per_file: int):
        self.folder, self.prefix, self.rows_per_file = folder, prefix, rows_per_file
        self.writer: pq.ParquetWriter | None = None
        self.part, self.rows_in_part, self.path = 0, 0, None

    def write(self, table: pa.Table) -> None:
        while table.num_rows:
            if self.writer is None:
                self.folder.mkdir(parents=True, exist_ok=True)
                self.path = self.folder / f"{self.prefix}-{self.part:03d}.parquet"
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


def _summary_state(summary: Summary) -> dict:
    state = dataclasses.asdict(summary)
    for key in ("low", "high"):  # JSON has no infinities; an empty summary keeps None
        state[key] = None if math.isinf(state[key]) else state[key]
    return state


def _summary_from_state(state: dict) -> Summary:
    return Summary(state["n"], state["total"], math.inf if state["low"] is None else state["low"],
                   -math.inf if state["high"] is None else state["high"],
                   tuple(state["bounds"]) if state["bounds"] is not None else None, state["histogram"])


class _InputOutputs:
    """What one input file's rows became: its three rolling outputs and what was counted."""

    def __init__(self, work_dir: Path, index: int, path: str, rows_per_file: int):
        self.work_dir, self.index, self.path = work_dir, index, path
        prefix = f"part-{index:05d}"
        self.outputs = {name: _RollingParquet(work_dir / PARTS / name, prefix, rows_per_file) for name in OUTPUTS}
        self.ledger = Ledger()
        self.scores: dict[str, Summary] = {}
        self.sources: dict[str, Counter] = defaultdict(Counter)

    def write(self, table: pa.Table) -> None:
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

    def finish(self) -> None:
        """Close the part files (renamed into place), then write the completion record."""
        for output in self.outputs.values():
            output.close()
        done = self.work_dir / DONE
        done.mkdir(parents=True, exist_ok=True)
        record = {
            "input": self.path,
            "ledger": self.ledger.to_dict(),
            "sources": {s: dict(sorted(c.items())) for s, c in sorted(self.sources.items())},
            "scores": {name: _summary_state(s) for name, s in sorted(self.scores.items())},
        }
        write_atomic(done / f"{self.index:05d}.json", json.dumps(record, sort_keys=True))


@dataclasses.dataclass
class InputRecord:
    """An input's completion record, read back."""

    input: str
    ledger: Ledger
    sources: dict[str, dict]
    scores: dict[str, Summary]


def read_done(work_dir: Path, index: int) -> InputRecord | None:
    path = Path(work_dir) / DONE / f"{index:05d}.json"
    if not path.exists():
        return None
    d = json.loads(path.read_text())
    return InputRecord(d["input"], Ledger.from_dict(d["ledger"]), d["sources"],
                       {name: _summary_from_state(s) for name, s in d["scores"].items()})


def merge_records(records: list[InputRecord]) -> tuple[Ledger, dict[str, Summary], dict[str, dict]]:
    """The ledger, score summaries and per-source counts of the whole run, summed in input order."""
    ledger, scores, sources = Ledger(), {}, defaultdict(Counter)
    for record in records:
        ledger += record.ledger
        for name, summary in record.scores.items():
            scores[name] = scores[name] + summary if name in scores else summary
        for source, counts in record.sources.items():
            sources[source].update(counts)
    return ledger, scores, {s: dict(sorted(c.items())) for s, c in sorted(sources.items())}


class RunWriter:
    """Writes the rows of the inputs `todo` (indexes into `inputs`) under `work_dir`, input by input.

    Rows are attributed to their input by their source_file column; they must arrive in input order."""

    def __init__(self, work_dir: Path, inputs: list[str], todo: list[int], rows_per_file: int = ROWS_PER_FILE):
        self.work_dir, self.inputs, self.rows_per_file = Path(work_dir), inputs, rows_per_file
        self.index_of = {path: i for i, path in enumerate(inputs)}
        self.todo = sorted(todo)
        self.next = 0  # position in self.todo of the first input not yet finished
        self.current: _InputOutputs | None = None

    def _advance_to(self, index: int) -> None:
        """Finish every input before `index` (inputs that gave no row get an empty record)."""
        if self.current is not None and self.current.index == index:
            return
        while self.next < len(self.todo) and self.todo[self.next] < index:
            i = self.todo[self.next]
            outputs = self.current if self.current is not None and self.current.index == i else \
                _InputOutputs(self.work_dir, i, self.inputs[i], self.rows_per_file)
            outputs.finish()
            fault_point("write:input")
            self.current = None
            self.next += 1
        if index < len(self.inputs):
            if self.next >= len(self.todo) or self.todo[self.next] != index:
                raise RuntimeError(f"rows of input {self.inputs[index]!r} arrived out of order or were not expected")
            self.current = _InputOutputs(self.work_dir, index, self.inputs[index], self.rows_per_file)

    def write(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        sources = table[C.SOURCE_FILE].to_pylist()
        try:
            indexes = [self.index_of[s] for s in sources]
        except KeyError as err:
            raise RuntimeError(f"a row's source_file {err.args[0]!r} is none of the run's inputs") from None
        start = 0
        for end in range(1, len(indexes) + 1):
            if end == len(indexes) or indexes[end] != indexes[start]:
                self._advance_to(indexes[start])
                self.current.write(table.slice(start, end - start))
                start = end
        fault_point("write:batch")

    def close(self) -> None:
        self._advance_to(len(self.inputs))
