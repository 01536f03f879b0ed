"""The evaluation-set n-gram index: every set of `decontaminate.eval_sets` read once, on the driver,
into one compact structure the decontaminate stage ships to its workers once.

    keys   sorted unique uint64 n-gram hashes (filters/ngrams.py) of every item of every set
    masks  uint64 per key: bit i set when set i (job order) holds that n-gram (so at most 64 sets)

    filter a bitmap over the top `filter_bits` bits of the keys (at least 8 bits per key, 2 MB for a
           million keys): most n-grams of a web page are in no evaluation set, and a gather in a bitmap
           that stays in cache rejects them before the binary search, which then sees only the few
           candidates (about keys / 2^filter_bits of the misses, plus the hits)

About 17 bytes per distinct n-gram: 10 MB of evaluation text (about 1.7 M words) is about 20 MB. A lookup
is one bitmap gather and one `np.searchsorted` over a batch's n-grams.

Reading: JSONL (plain or .gz/.zst via fsspec's compression inference), Parquet, or plain text whose items
are separated by blank lines. In JSONL/Parquet each of `text_keys` is indexed on its own (a list value,
e.g. MMLU's choices: each element), so no n-gram spans two fields. Items with fewer than n words add
no n-gram and are counted (`items_too_short`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from gristmill.filters.ngrams import WordHasher, ngram_hashes_batch
from gristmill.schemas.job import DecontaminateConfig, EvalSetConfig

_READ_BATCH = 2048


class EvalSetError(ValueError):
    """An evaluation set that cannot be read; the message names the file and, where known, the line."""


@dataclass
class EvalIndex:
    names: list[str]
    n: int
    keys: np.ndarray  # sorted unique uint64
    masks: np.ndarray  # uint64 bitmask of the sets holding each key
    sets: dict[str, dict] = field(default_factory=dict)  # per set: items, items_too_short, ngrams, bytes
    filter_bits: int = 0
    filter: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint8))

    def __post_init__(self):
        if not len(self.filter) and len(self.keys):
            self.filter_bits = int(min(32, max(16, np.ceil(np.log2(len(self.keys) * 8)))))
            self.filter = np.zeros(1 << (self.filter_bits - 3), dtype=np.uint8)
            top = self.keys >> np.uint64(64 - self.filter_bits)
            np.bitwise_or.at(self.filter, (top >> np.uint64(3)).astype(np.int64),
                             (np.uint8(1) << (top & np.uint64(7)).astype(np.uint8)))

    def lookup(self, hashes: np.ndarray) -> np.ndarray:
        """The set bitmask of each hash (0: in no evaluation set)."""
        out = np.zeros(len(hashes), dtype=np.uint64)
        if not len(self.keys) or not len(hashes):
            return out
        top = hashes >> np.uint64(64 - self.filter_bits)
        maybe = np.flatnonzero((self.filter[(top >> np.uint64(3)).astype(np.int64)] >> (top & np.uint64(7)).astype(np.uint8)) & 1)
        if not len(maybe):
            return out
        candidates = hashes[maybe]
        position = np.searchsorted(self.keys, candidates)
        position[position == len(self.keys)] = 0
        found = self.keys[position] == candidates
        out[maybe[found]] = self.masks[position[found]]
        return out

    def first_set(self, mask: int) -> str:
        """The first set (job order) in a bitmask."""
        mask = int(mask)
        return self.names[(mask & -mask).bit_length() - 1]

    def set_names(self, mask: int) -> list[str]:
        return [name for i, name in enumerate(self.names) if int(mask) >> i & 1]

    @property
    def nbytes(self) -> int:
        return int(self.keys.nbytes + self.masks.nbytes + self.filter.nbytes)


def _format_of(config: EvalSetConfig) -> str:
    if config.format != "auto":
        return config.format
    path = config.path.lower()
    for suffix in (".gz", ".zst", ".bz2", ".xz"):
        path = path.removesuffix(suffix)
    if path.endswith((".jsonl", ".json", ".ndjson")):
        return "jsonl"
    if path.endswith(".parquet"):
        return "parquet"
    return "text"


def _values(value) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for element in value:
            yield from _values(element)
    elif value is not None and not isinstance(value, dict):
        yield str(value)


def read_eval_items(config: EvalSetConfig) -> Iterator[str]:
    """Every text item of one evaluation set, in file order."""
    import fsspec

    kind = _format_of(config)
    try:
        if kind == "parquet":
            import pyarrow.parquet as pq

            with fsspec.open(config.path, "rb") as handle:
                table = pq.read_table(handle, columns=list(config.text_keys))
            for key in config.text_keys:
                for value in table[key].to_pylist():
                    yield from _values(value)
            return
        with fsspec.open(config.path, "rt", encoding="utf-8", compression="infer") as handle:
            if kind == "text":
                for item in re.split(r"\n\s*\n", handle.read()):
                    if item.strip():
                        yield item
                return
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as err:
                    raise EvalSetError(f"{config.path}:{number}: not valid JSON: {err}") from None
                if not isinstance(record, dict):
                    raise EvalSetError(f"{config.path}:{number}: expected a JSON object")
                if not any(key in record for key in config.text_keys):
                    raise EvalSetError(f"{config.path}:{number}: none of the text keys {list(config.text_keys)} present")
                for key in config.text_keys:
                    yield from _values(record.get(key))
    except (OSError, KeyError) as err:
        raise EvalSetError(f"{config.path}: cannot read evaluation set {config.name!r}: {err}") from err
    except Exception as err:  # pyarrow's errors for a malformed Parquet file
        if isinstance(err, EvalSetError):
            raise
        raise EvalSetError(f"{config.path}: cannot read evaluation set {config.name!r}: {err}") from err


def _batches(items: Iterator[str], size: int) -> Iterator[list[str]]:
    batch: list[str] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def build_index(config: DecontaminateConfig) -> EvalIndex:
    """Read every evaluation set and build the index (see the module docstring)."""
    hasher = WordHasher()
    keys_per_set, sets = [], {}
    for eval_set in config.eval_sets:
        parts, stats = [], {"items": 0, "items_too_short": 0, "ngrams": 0, "bytes": 0}
        for batch in _batches(read_eval_items(eval_set), _READ_BATCH):
            hashes, doc = ngram_hashes_batch(batch, config.n, hasher)
            parts.append(hashes)
            stats["items"] += len(batch)
            stats["items_too_short"] += len(batch) - len(np.unique(doc))
            stats["bytes"] += sum(len(item.encode("utf-8")) for item in batch)
        unique = np.unique(np.concatenate(parts)) if parts else np.empty(0, np.uint64)
        stats["ngrams"] = int(len(unique))
        keys_per_set.append(unique)
        sets[eval_set.name] = stats
    all_keys = np.concatenate(keys_per_set) if keys_per_set else np.empty(0, np.uint64)
    bits = np.concatenate([np.full(len(k), np.uint64(1) << np.uint64(i), dtype=np.uint64)
                           for i, k in enumerate(keys_per_set)]) if keys_per_set else np.empty(0, np.uint64)
    keys, inverse = np.unique(all_keys, return_inverse=True)
    masks = np.zeros(len(keys), dtype=np.uint64)
    np.bitwise_or.at(masks, inverse, bits)
    return EvalIndex([s.name for s in config.eval_sets], config.n, keys, masks, sets)
