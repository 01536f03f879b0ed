"""The classifier's top-fraction cut: a global step over the run's curated/ documents after the writers.

`classifier.top_fraction` keeps the best-scored share of the run (DCLM keeps its top 10%), which needs
the rank of every score, so it cannot be a per-batch rule. Documents are ranked by
`filters.quality_model.rank_key` (score, highest first; ties by id), and the cut is the `keep`-th key
(`keep_count`): the same Cutoff `percentile_cutoff` computes over every (score, id), found without
holding them. Each key is written as bytes that sort as the rank key does (a flag for a missing score,
the negated score's order-preserving bits, the id's UTF-8), and the k-th key is found by radix selection:
Ray tasks over groups of curated parts count the keys under the current prefix by their next two bytes
(a 66,049-bin histogram, summed on the driver as the tasks end), the driver follows the bin that holds
rank k, and once at most `FETCH_KEYS` keys share the prefix the tasks send those keys and the driver sorts
them. A run of N documents takes about one pass over the (id, score) columns per two bytes of key the
selection must read (one pass when N ≤ FETCH_KEYS); the driver holds one histogram and at most
FETCH_KEYS keys. Then tasks rewrite each curated part without the documents below the cut; those go to
rejected/classifier-KEY.parquet (after curated/part-KEY.parquet) with keep=False and drop_reason
`quality_not_top_fraction`. The population is every document that passed the per-document rules (the
step runs before dedup). The outcome depends on neither worker count nor part layout.
"""

from __future__ import annotations

import math
import struct
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from gristmill.filters.quality_model import Cutoff, keep_count
from gristmill.pipeline.engine.parquet_read import batches, groups_of
from gristmill.pipeline.engine.run_folder import RunFolder
from gristmill.pipeline.engine.tasks import map_tasks
from gristmill.pipeline.steps.move_to_rejected import move_to_rejected
from gristmill.schemas import columns as C
from gristmill.schemas import reasons as R

BATCH_ROWS = 4096


@dataclass
class CutResult:
    cutoff: Cutoff
    removed: int = 0
    removed_by_source: dict[str, int] = field(default_factory=dict)

    @property
    def dropped(self) -> Counter:
        return +Counter({R.QUALITY_NOT_TOP_FRACTION: self.removed})

    def to_dict(self) -> dict:
        return {**self.cutoff.to_dict(), "removed": self.removed,
                "removed_by_source": dict(sorted(self.removed_by_source.items()))}


# Keys the driver sorts itself (the last round of the selection), and documents per task.
FETCH_KEYS = 200_000
ROWS_PER_TASK = 200_000
_SYMBOLS = 257  # a key byte + 1, or 0 past the key's end
_FLIP = (1 << 64) - 1


def rank_bytes(score: float | None, doc_id: str | None) -> bytes:
    """`rank_key(score, doc_id)` as bytes that sort the same way: a missing/NaN flag, the 8 order-preserving
    bytes of -score (0.0 when missing; -0.0 read as 0.0, as the tuple compares them), the id's UTF-8."""
    bad = score is None or math.isnan(score)
    value = 0.0 if bad else -score + 0.0
    bits = struct.unpack(">Q", struct.pack(">d", value))[0]
    bits = bits ^ _FLIP if bits >> 63 else bits | (1 << 63)
    return (b"\x01" if bad else b"\x00") + bits.to_bytes(8, "big") + (doc_id or "").encode("utf-8", "surrogatepass")


_NUMERIC = 9  # key bytes before the id: the missing-score flag and the score's 8


def _batches(paths: list[str]):
    """Each batch of the parts' (id, score) columns, with its keys' first 9 bytes as numbers: the flag
    (uint8) and the order-preserving score bits (uint64), vectorized as rank_bytes computes them."""
    for path in paths:
        for batch in batches(path, BATCH_ROWS * 16, [C.ID, C.QUALITY_MODEL_SCORE]):
            scores = batch.column(C.QUALITY_MODEL_SCORE).to_numpy(zero_copy_only=False).astype(np.float64)  # null → NaN
            bad = np.isnan(scores)
            bits = (np.where(bad, 0.0, -scores) + 0.0).view(np.uint64)
            bits = np.where(bits >> np.uint64(63) == 1, ~bits, bits | np.uint64(1 << 63))
            yield batch, bad.astype(np.int64), bits


def _numeric_match(flag: np.ndarray, bits: np.ndarray, prefix: bytes) -> np.ndarray:
    """Rows whose key starts with the prefix's first (at most 9) bytes."""
    mask = np.ones(len(flag), bool)
    if prefix:
        mask &= flag == prefix[0]
    if len(prefix) > 1:
        k = min(len(prefix), _NUMERIC) - 1  # score bytes the prefix fixes
        mask &= (bits >> np.uint64(8 * (8 - k))) == np.uint64(int.from_bytes(prefix[1:1 + k], "big"))
    return mask


def _symbols(flag: np.ndarray, bits: np.ndarray, position: int) -> np.ndarray:
    """The symbol (byte + 1) at a key position inside the numeric part."""
    if position == 0:
        return flag + 1
    return ((bits >> np.uint64(8 * (8 - position))) & np.uint64(0xFF)).astype(np.int64) + 1


def _matches(key: bytes, prefix: bytes, ended: bool) -> bool:
    return key == prefix if ended else key.startswith(prefix)


def _keys(batch, rows: np.ndarray):
    """(rank bytes, score, id) of the given rows of a batch."""
    if not len(rows):
        return
    taken = batch.take(pa.array(rows))
    for score, doc_id in zip(taken.column(C.QUALITY_MODEL_SCORE).to_pylist(), taken.column(C.ID).to_pylist()):
        yield rank_bytes(score, doc_id), score, doc_id


def _histogram_task(paths: list[str], prefix: bytes, ended: bool) -> np.ndarray:
    """Keys under the prefix, counted by their next two symbols (symbol: byte + 1, 0 past the end). While
    both symbols lie in the keys' first 9 bytes this is numpy over the score column; past them, the keys
    the numbers match are built one by one."""
    depth = len(prefix)
    counts = np.zeros(_SYMBOLS * _SYMBOLS, np.int64)
    for batch, flag, bits in _batches(paths):
        mask = _numeric_match(flag, bits, prefix)
        if not ended and depth + 2 <= _NUMERIC:
            bins = _symbols(flag[mask], bits[mask], depth) * _SYMBOLS + _symbols(flag[mask], bits[mask], depth + 1)
            counts += np.bincount(bins, minlength=_SYMBOLS * _SYMBOLS)
            continue
        for key, _, _ in _keys(batch, np.flatnonzero(mask)):
            if _matches(key, prefix, ended):
                first = key[depth] + 1 if depth < len(key) else 0
                second = key[depth + 1] + 1 if depth + 1 < len(key) else 0
                counts[first * _SYMBOLS + second] += 1
    return counts


def _fetch_task(paths: list[str], prefix: bytes, ended: bool) -> list[tuple]:
    """The (key, score, id) of the keys under the prefix; of a complete key (all alike), the first only."""
    out = []
    for batch, flag, bits in _batches(paths):
        for entry in _keys(batch, np.flatnonzero(_numeric_match(flag, bits, prefix))):
            if _matches(entry[0], prefix, ended):
                out.append(entry)
                if ended:
                    return out
    return out


def _rewrite_task(parts: list[tuple[str, str]], cutoff: Cutoff) -> dict:
    """Each part of a group without the documents below the cut. Safe to run again (a retried task): a
    part already cut moves nothing the second time, and its rejected file (written before the part is
    replaced) is counted instead."""
    def below_cut(table: pa.Table, first: int) -> tuple[pa.Table, list]:
        return table, [None if cutoff.kept(score, doc_id) else R.QUALITY_NOT_TOP_FRACTION
                       for score, doc_id in zip(table[C.QUALITY_MODEL_SCORE].to_pylist(), table[C.ID].to_pylist())]

    removed, by_source = 0, Counter()
    for path, rejected in parts:  # rejected/classifier-KEY.parquet, named after its curated part
        moved = move_to_rejected(path, rejected, below_cut, batch_rows=BATCH_ROWS)
        if moved.removed:
            removed += moved.removed
            by_source.update(moved.by_source)
        elif Path(rejected).exists():  # cut by an earlier try of this task
            done = pq.read_table(rejected, columns=[C.SOURCE_FILE])
            removed += done.num_rows
            by_source.update(done[C.SOURCE_FILE].to_pylist())
    return {"removed": removed, "by_source": by_source}


def select_cutoff(groups: list[list[str]], documents: int, top_fraction: float, fetch_keys: int = FETCH_KEYS,
                  workers: int | None = None) -> tuple[Cutoff, int]:
    """The Cutoff of the module docstring over the parts in `groups` (`documents` rows in all), and the
    passes over them it took."""
    keep = keep_count(documents, top_fraction)
    if keep == 0:
        return Cutoff(documents, 0, top_fraction, None, None), 0
    prefix, ended, below, count, passes = b"", False, 0, documents, 0
    while count > fetch_keys and not ended:
        total = np.zeros(_SYMBOLS * _SYMBOLS, np.int64)

        map_tasks(_histogram_task, [(group, prefix, ended) for group in groups],
                  lambda _, counts: np.add(total, counts, out=total), workers)
        passes += 1
        if int(total.sum()) != count:
            raise RuntimeError(f"classifier cut: a pass counted {int(total.sum())} keys under the selected prefix, "
                               f"expected {count}: did curated/ change during the step?")
        cumulative = np.cumsum(total)
        b = int(np.searchsorted(cumulative, keep - below))  # the first bin holding rank `keep`
        below += int(cumulative[b - 1]) if b else 0
        count = int(total[b])
        first, second = divmod(b, _SYMBOLS)
        prefix += bytes(s - 1 for s in (first, second) if s)
        ended = first == 0 or second == 0
    found: list[tuple] = []
    map_tasks(_fetch_task, [(group, prefix, ended) for group in groups], lambda _, entries: found.extend(entries), workers)
    passes += 1
    if (not found) if ended else len(found) != count:  # (ended: at most one key from each task)
        raise RuntimeError(f"classifier cut: {len(found)} keys fetched under the selected prefix, expected "
                           f"{count}: did curated/ change during the step?")
    if ended:  # every key under the prefix is the same key: any one is the cut
        _, score, doc_id = found[0]
    else:
        found.sort(key=lambda entry: entry[0])  # stable: equal keys stay in part order
        _, score, doc_id = found[keep - below - 1]
    return Cutoff(documents, keep, top_fraction, score, doc_id), passes


def cut_run(run_dir, top_fraction: float, log=print, fetch_keys: int = FETCH_KEYS, workers: int | None = None) -> CutResult:
    """`run_dir`: a RunFolder or its path. With Ray initialized the passes and the rewrite are Ray tasks
    over groups of parts; without, they run here. The same result either way."""
    folder = RunFolder.of(run_dir)
    files = folder.parts()
    rows = [pq.ParquetFile(f).metadata.num_rows for f in files]
    groups = [[str(files[i]) for i in group] for group in groups_of(rows, ROWS_PER_TASK)]
    cutoff, passes = select_cutoff(groups, sum(rows), top_fraction, fetch_keys, workers)
    result = CutResult(cutoff)
    by_source: Counter = Counter()
    folder.rejected.mkdir(parents=True, exist_ok=True)

    def add(_, moved):
        result.removed += moved["removed"]
        by_source.update(moved["by_source"])

    rewrites = [([(path, str(folder.rejected_by("classifier", Path(path)))) for path in group], cutoff) for group in groups]
    map_tasks(_rewrite_task, rewrites, add, workers)
    if result.removed != cutoff.documents - cutoff.keep:
        raise RuntimeError(f"classifier cut removed {result.removed} documents, expected "
                           f"{cutoff.documents - cutoff.keep}: are document ids unique?")
    result.removed_by_source = dict(by_source)
    log(f"gristmill: classifier kept the top {top_fraction:g} of {cutoff.documents} documents "
        f"({cutoff.keep}; cut at score {cutoff.score}, {passes} pass(es) to find it), removed {result.removed}")
    return result
