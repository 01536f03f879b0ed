"""Part files and completion records: routes every row to exactly one of curated/, rejected/ or
quarantine/, counts it, and records what was written. Runs on the worker that processed the rows.

Outputs are partitioned by INPUT SPLIT, not by arrival: the rows of split s of input file i (i: its
position in the sorted input list) go to `part-{i:07d}-{s:05d}-{k:03d}.parquet` (k rolls every
`rows_per_file` rows; no empty file) under `parts/curated`, `parts/rejected` and `parts/quarantine` of the
work folder. A file's name and bytes therefore depend only on that split and the job, never on which
splits ran before it, on which worker or node, how many workers there were, or whether the run resumed.

When the split's last row is written, its part files are closed and then its completion record
`done/{i:07d}-{s:05d}.json` is written, LAST: every part file (name, rows, bytes, sha256), the ledger, the
per-source counts, the score summaries, the stages' counters and the Ray node. A part file counts only
if a completion record lists it (`read_done` checks each one's size and Parquet frame, not its sha256: see
there why), so a worker killed mid-write (or a store without atomic renames) leaves nothing a resume takes
as done; a retried split rewrites the same names. The driver receives the record itself, never a row.
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

from gristmill.pipeline.engine.run_folder import CURATED, DONE, OUTPUTS, PARTS, QUARANTINE, REJECTED, write_atomic
from gristmill.schemas import columns as C
from gristmill.schemas.shards import sha256_file
from gristmill.schemas.stats import Ledger, StageStats, Summary

QUARANTINE_COLUMNS = (*C.PROVENANCE_COLUMNS, C.WARC_TYPE, C.HTTP_STATUS, C.CONTENT_TYPE, C.QUARANTINE_REASON)
ROWS_PER_FILE = 50_000
# A part file's row groups (_RollingParquet): this many rows, or fewer when their Arrow data reaches
# GROUP_BYTES first. Bounds the writer's footer (rows_per_file / ROWS_PER_GROUP row groups, ~60 KB each
# in memory) and what it buffers (a row group), and what the global steps decode at once (parquet_read.py).
ROWS_PER_GROUP = 1024
GROUP_BYTES = 16 * 1024 * 1024
# A written slice this big (a batch's rows holding a page near max_page_bytes) shares its row group with
# no other such slice.
BIG_SLICE_BYTES = 1 << 20


def split_name(input_index: int, split: int) -> str:
    """`{input:07d}-{split:05d}`: the completion record's name and its part files' prefix (after "part-")."""
    return f"{input_index:07d}-{split:05d}"


def part_key(name: str) -> str:
    """What follows "part-" in a part file's name, without ".parquet": `{input}-{split}-{k}`. The global
    steps name what they move to rejected/ after the part it came from (`dedup-{part_key}.parquet`)."""
    return name.removeprefix("part-").removesuffix(".parquet")


class _RollingParquet:
    """PREFIX-000.parquet, PREFIX-001.parquet, … with rows_per_file rows each; atomic renames. Rows are
    gathered into row groups of rows_per_group rows (fewer when their Arrow data reaches group_bytes first,
    before a second slice of BIG_SLICE_BYTES, and at the end of a file), not one per written batch: the writer keeps every row group's metadata (a
    column chunk's offsets, sizes and statistics, for all ~70 columns) in memory until the file closes,
    and every reader parses the whole footer, so with a row group per 32-row batch both grew with the
    file (~60 KB a row group: 8,000 pages made a 3.2 MB footer in curated/ alone)."""

    def __init__(self, folder: Path, prefix: str, rows_per_file: int, rows_per_group: int = ROWS_PER_GROUP,
                 group_bytes: int = GROUP_BYTES):
        self.folder, self.prefix, self.rows_per_file = folder, prefix, rows_per_file
        self.rows_per_group, self.group_bytes = rows_per_group, group_bytes
        self.writer: pq.ParquetWriter | None = None
        self.part, self.rows_in_part, self.path = 0, 0, None
        self.pending: list[pa.Table | pa.Buffer] = []  # the rows of the row group being gathered (`_held`)
        self.pending_rows = self.pending_bytes = 0
        self.pending_big = False  # whether the pending rows hold a slice of BIG_SLICE_BYTES or more
        self.written: list[tuple[Path, int]] = []  # (file, rows) of every closed part

    def write(self, table: pa.Table) -> None:
        while table.num_rows:
            if self.writer is None:
                self.folder.mkdir(parents=True, exist_ok=True)
                self.path = self.folder / f"{self.prefix}-{self.part:03d}.parquet"
                self.writer = pq.ParquetWriter(f"{self.path}.tmp", table.schema, compression="zstd")
            take = min(table.num_rows, self.rows_per_file - self.rows_in_part, self.rows_per_group - self.pending_rows)
            rows = table.slice(0, take)
            big = rows.nbytes >= BIG_SLICE_BYTES
            if big and self.pending_big:
                # One big slice (a page near max_page_bytes) a row group: writing a group decodes its held
                # slices and encodes them at once, ~4 bytes a byte of text (three such pages in one group
                # raised a worker's peak by 44 MiB; bench/RESULTS.md, issue 21).
                self._flush()
            self.pending_rows, self.pending_bytes = self.pending_rows + take, self.pending_bytes + rows.nbytes
            self.pending_big = self.pending_big or big
            self.pending.append(_held(rows))
            table = table.slice(take)
            self.rows_in_part += take
            if self.rows_in_part == self.rows_per_file:
                self._finish()
            elif self.pending_rows == self.rows_per_group or self.pending_bytes >= self.group_bytes:
                self._flush()

    def _flush(self) -> None:
        """Write the gathered rows as one row group."""
        if self.pending_rows:
            group = pa.concat_tables([_unheld(rows) for rows in self.pending])
            self.writer.write_table(group, row_group_size=group.num_rows)
        self.pending, self.pending_rows, self.pending_bytes, self.pending_big = [], 0, 0, False

    def _finish(self) -> None:
        if self.writer is not None:
            self._flush()
            self.writer.close()
            os.replace(f"{self.path}.tmp", self.path)
            self.written.append((self.path, self.rows_in_part))
            self.writer, self.rows_in_part = None, 0
            self.part += 1

    def close(self) -> None:
        self._finish()


_HELD_OPTIONS = pa.ipc.IpcWriteOptions(compression="zstd")
# Rows of at least this many bytes of Arrow data are held compressed (`_held`): a page near max_page_bytes
# is ~5 MB; an ordinary batch's rows (~100 KB) are not worth the codec's scratch (in one process, holding
# every batch compressed raised the worker's peak by ~6 MiB; bench/RESULTS.md, issue 21).
HOLD_COMPRESSED_BYTES = 1 << 20


def _held(rows: pa.Table) -> pa.Table | pa.Buffer:
    """`rows` as the pending row group keeps them until it is written: an Arrow IPC stream compressed with
    zstd, one record batch per chunk. A row group waits for ROWS_PER_GROUP rows or GROUP_BYTES, so a page
    near max_page_bytes (dropped, in rejected/'s group) sat there as ~5 MB of Arrow data, several of them
    at once, under every later batch's peak; compressed, its repeated paragraphs take a fraction of that.
    `_unheld` gives back the same table chunk for chunk (the Parquet writer's pages follow the chunks), so
    the part files' bytes do not change. Rows under HOLD_COMPRESSED_BYTES, or whose columns are chunked
    differently, are kept as they are."""
    if rows.nbytes < HOLD_COMPRESSED_BYTES:
        return rows
    batches = rows.to_batches()
    lengths = [len(batch) for batch in batches]
    if not lengths or any([len(chunk) for chunk in column.chunks] != lengths for column in rows.columns):
        return rows
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, rows.schema, options=_HELD_OPTIONS) as stream:
        for batch in batches:
            stream.write_batch(batch)
    return sink.getvalue()


def _unheld(rows: pa.Table | pa.Buffer) -> pa.Table:
    return rows if isinstance(rows, pa.Table) else pa.ipc.open_stream(rows).read_all()


def _summary_state(summary: Summary) -> dict:
    state = dataclasses.asdict(summary)
    for key in ("low", "high"):  # JSON has no infinities; an empty summary keeps None
        state[key] = None if math.isinf(state[key]) else state[key]
    return state


def _summary_from_state(state: dict) -> Summary:
    return Summary(state["n"], state["total"], math.inf if state["low"] is None else state["low"],
                   -math.inf if state["high"] is None else state["high"],
                   tuple(state["bounds"]) if state["bounds"] is not None else None, state["histogram"],
                   state.get("partials"))


class SplitOutputs:
    """What one input split's rows became: its three rolling outputs and what was counted."""

    def __init__(self, work_dir: Path, index: int, split: int, path: str, rows_per_file: int = ROWS_PER_FILE):
        self.work_dir, self.index, self.split, self.path = Path(work_dir), index, split, path
        self.name = split_name(index, split)
        self.outputs = {name: _RollingParquet(self.work_dir / PARTS / name, f"part-{self.name}", rows_per_file)
                        for name in OUTPUTS}
        self.ledger = Ledger()
        self.scores: dict[str, Summary] = {}
        self.sources: dict[str, Counter] = defaultdict(Counter)
        self.documents = self.text_bytes = 0

    def clear(self) -> None:
        """Remove what an earlier attempt at this split left: its record first, then its part files."""
        remove_outputs(self.work_dir, self.name)

    def write(self, table: pa.Table) -> None:
        quarantined = pc.is_valid(table[C.QUARANTINE_REASON])
        keep = pc.fill_null(table[C.KEEP], False)
        # Each output filtered from the batch once (a filter copies its rows: a page near max_page_bytes
        # went through a copy of all documents first).
        rows = table.drop_columns([C.QUARANTINE_REASON])
        kept = rows.filter(pc.and_(pc.invert(quarantined), keep))
        rejected = rows.filter(pc.and_(pc.invert(quarantined), pc.invert(keep)))
        del rows
        quarantine = table.filter(quarantined).select(list(QUARANTINE_COLUMNS))
        for name, rows in ((CURATED, kept), (REJECTED, rejected), (QUARANTINE, quarantine)):
            if rows.num_rows:
                self.outputs[name].write(rows)

        self.ledger += Ledger(
            input=table.num_rows,
            kept=kept.num_rows,
            dropped=Counter(rejected[C.DROP_REASON].to_pylist()),
            quarantined=quarantine.num_rows,
        )
        if C.TEXT in table.column_names and table.num_rows:
            self.documents += table.num_rows - table[C.TEXT].null_count
            self.text_bytes += int(pc.sum(pc.binary_length(table[C.TEXT])).as_py() or 0)
        self._count_sources(table, keep, quarantined)
        documents = pc.invert(quarantined)
        for name, column in C.SCORES.items():
            if name in table.column_names:
                summary = self.scores.setdefault(name, Summary(bounds=(column.low, column.high) if column.high is not None else None))
                summary.add_values(table[name].filter(documents).to_pylist())

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

    def finish(self, stages: list[StageStats] = (), node: str | None = None, split: dict | None = None) -> str:
        """Close the part files (renamed into place), then write the completion record, last. Returns the
        record as written (JSON): all the driver receives of this split."""
        parts = []
        for name in OUTPUTS:
            self.outputs[name].close()
            for path, rows in self.outputs[name].written:
                parts.append({"file": f"{name}/{path.name}", "rows": rows, "bytes": path.stat().st_size,
                              "sha256": sha256_file(path)})
        done = self.work_dir / DONE
        done.mkdir(parents=True, exist_ok=True)
        record = {
            "input": self.path,
            "index": self.index,
            "split": self.split,
            "node": node,
            "parts": parts,
            "ledger": self.ledger.to_dict(),
            "sources": {s: dict(sorted(c.items())) for s, c in sorted(self.sources.items())},
            "scores": {name: _summary_state(s) for name, s in sorted(self.scores.items())},
            "stages": [s.to_dict() for s in stages],
            "documents": self.documents,
            "text_bytes": self.text_bytes,
            # how many splits the file has (1: read whole) and what this split's reader found (splits.py)
            "split_report": split or {"count": 1},
        }
        text = json.dumps(record, sort_keys=True)
        write_atomic(done / f"{self.name}.json", text)
        return text


@dataclasses.dataclass
class SplitRecord:
    """A split's completion record, read back."""

    input: str
    index: int
    split: int
    node: str | None
    parts: list[dict]
    ledger: Ledger
    sources: dict[str, dict]
    scores: dict[str, Summary]
    stages: list[StageStats]
    documents: int = 0
    text_bytes: int = 0
    split_report: dict = dataclasses.field(default_factory=lambda: {"count": 1})

    @property
    def count(self) -> int:
        """How many splits its input file was read in (1: whole)."""
        return self.split_report.get("count", 1)

    @classmethod
    def from_json(cls, text: str) -> "SplitRecord":
        d = json.loads(text)
        return cls(d["input"], d["index"], d["split"], d.get("node"), d["parts"], Ledger.from_dict(d["ledger"]),
                   d["sources"], {name: _summary_from_state(s) for name, s in d["scores"].items()},
                   [StageStats.from_dict(s) for s in d.get("stages", [])], d.get("documents", 0), d.get("text_bytes", 0),
                   d.get("split_report", {"count": 1}))


def read_done(work_dir: Path, index: int, split: int = 0) -> SplitRecord | None:
    """The split's completion record, if it exists and every part file it lists is there, at its size
    and framed as Parquet at both ends (`part_looks_whole`); else None (the split is redone).

    The sha256 each record lists is not recomputed here: a resume would read every finished part on
    the driver (sha256 runs at ~1.7 GB/s a core on the development machine, so ~3 hours for 20 TB of
    finished parts at Common Crawl scale), and the driver never carries data (DESIGN.md, Scale); nothing
    later reads the parts' raw bytes whole either (publish hard-links them, the global steps read
    columns). The checks here cost 12 bytes read per part and catch what a crash leaves: a missing or
    torn file, or one of the right size whose tail was never written. The sha256 stays in the record
    for an audit of the bytes."""
    path = Path(work_dir) / DONE / f"{split_name(index, split)}.json"
    if not path.exists():
        return None
    record = SplitRecord.from_json(path.read_text())
    for part in record.parts:
        if not part_looks_whole(Path(work_dir) / PARTS / part["file"], part["bytes"]):
            return None
    return record


_PARQUET_MAGIC = b"PAR1"


def part_looks_whole(file: Path, size: int) -> bool:
    """`file` has `size` bytes, starts and ends with Parquet's magic, and its footer length fits."""
    try:
        if file.stat().st_size != size or size < 12:
            return False
        with open(file, "rb") as handle:
            head = handle.read(4)
            handle.seek(size - 8)
            tail = handle.read(8)
    except OSError:
        return False
    footer = int.from_bytes(tail[:4], "little")
    return head == _PARQUET_MAGIC and tail[4:] == _PARQUET_MAGIC and footer + 12 <= size


class RecordSums:
    """Completion records summed: the ledger, score summaries, per-source counts and stage counters. All
    are sums (the summaries' exactly), so the totals do not depend on the order records are added in."""

    def __init__(self, stage_names: list[str] = ()):
        self.ledger, self.scores, self.sources = Ledger(), {}, defaultdict(Counter)
        self.stages = {name: StageStats(name) for name in stage_names}

    def add(self, record: SplitRecord) -> None:
        self.ledger += record.ledger
        for name, summary in record.scores.items():
            self.scores[name] = self.scores[name] + summary if name in self.scores else summary
        for source, counts in record.sources.items():
            self.sources[source].update(counts)
        for stats in record.stages:
            self.stages[stats.stage] = self.stages[stats.stage] + stats if stats.stage in self.stages else stats

    def source_counts(self) -> dict[str, dict]:
        return {s: dict(sorted(c.items())) for s, c in sorted(self.sources.items())}


def merge_records(records: list[SplitRecord]) -> tuple[Ledger, dict[str, Summary], dict[str, dict]]:
    """The ledger, score summaries and per-source counts of the whole run."""
    sums = RecordSums()
    for record in records:
        sums.add(record)
    return sums.ledger, sums.scores, sums.source_counts()


def remove_outputs(work_dir: Path, name_glob: str) -> None:
    """Remove the completion records and part files of the splits whose `split_name` matches `name_glob`:
    records first, so no record outlives a part it lists."""
    for record in (Path(work_dir) / DONE).glob(f"{name_glob}.json*"):
        record.unlink(missing_ok=True)
    for name in OUTPUTS:
        for part in (Path(work_dir) / PARTS / name).glob(f"part-{name_glob}-*"):
            part.unlink(missing_ok=True)


def discard_input(work_dir: Path, index: int) -> None:
    """Remove every split's completion record and part files of input `index`."""
    remove_outputs(work_dir, f"{index:07d}-*")


def write_rows(work_dir: Path, inputs: list[str], table: pa.Table, rows_per_file: int = ROWS_PER_FILE) -> list[SplitRecord]:
    """Write rows already decided (rethreshold) as each input's split 0, in one process: the same part
    names and records a run writes. Rows are attributed to their input by their source_file column."""
    index_of = {path: i for i, path in enumerate(inputs)}
    sources = table[C.SOURCE_FILE].to_pylist() if table.num_rows else []
    missing = set(sources) - set(index_of)
    if missing:
        raise RuntimeError(f"a row's source_file {sorted(missing)[0]!r} is none of the run's inputs")
    records = []
    for i, path in enumerate(inputs):
        outputs = SplitOutputs(work_dir, i, 0, path, rows_per_file)
        mask = pc.equal(table[C.SOURCE_FILE], path) if table.num_rows else None
        rows = table.filter(mask) if mask is not None else table
        if rows.num_rows:
            outputs.write(rows)
        records.append(SplitRecord.from_json(outputs.finish()))
    return records
