"""The global shuffle of tokenized documents and the train/val split: the global step behind the shards.

Order. Each document gets a shuffle key, xxh3_64(id, seed) (on the id prefixed by "shuffle:"), and the
shards hold the documents in key order (repeated ids in input order). That is a seeded permutation of
the whole corpus, not of a window or a file: it depends on the seed and the set of documents only, not
on the input order, the curated file layout or the memory bound.

Memory. The sort is external and bucketed. Pass 1 (`GlobalShuffle.add`, or `add_batch` for documents
keyed elsewhere by `keyed_batch`) holds documents, tokens and provenance, while they stay within half of
`bucket_bytes`; past that it spills each to the bucket named by the next bits of its key: one Arrow IPC
file per bucket, under a temporary folder. Pass 2 (`GlobalShuffle.documents`) takes the buckets in key
order, loads one, sorts it by (key, position) and hands its documents on. A bucket whose file is larger
than `bucket_bytes` is never loaded: it is re-partitioned by the next bits of the key, batch by batch,
until each part fits or holds a single document. So the shuffle holds at most one bucket of at most
`bucket_bytes` (or a single document larger than that) plus the spill buffers, which are bounded by
`bucket_bytes / 2`; `_load` checks the bound. A shuffle may hold one key range only (`bits`, `prefix`):
pipeline/steps/tokenize.py runs one per shard unit, in a Ray task, over the units' documents spilled by the
encode tasks, so the whole corpus is sorted by many processes and each holds one bucket.

Split. A document's split unit is its registered domain (`split_by="domain"`): the host's label under its
public suffix, from the ICANN section of the Public Suffix List snapshot bundled with tldextract (no
download; the same answer wherever the same tldextract is installed, and its version is in the
manifest's split_rule), so `news.bbc.co.uk` and `www.bbc.co.uk` are both `bbc.co.uk`. A host without a
known public suffix (an IP address, `localhost`, reserved names such as `*.test`) is its own unit; a
document without a URL is its own unit, by id. Each unit has a point u = xxh3_64(unit name, seed) / 2**64
in [0, 1) (the exact hash input is in split_rule), binned on a 2**-20 grid, so the split's memory is two
histograms however many domains there are. The rule (`plan_split`):

  Walk the units' bins in order of u. A bin goes to val when val, with it, stays within
  val_fraction x the documents; bins too large to fit are skipped, i.e. stay in train. If no bin fits,
  val takes the smallest bin (the first in u order among equals). Train always keeps at least one bin.

Every unit is therefore wholly on one side: near-copies on one site cannot sit on both. With many
domains the bins are small and val holds val_fraction of the documents to within one bin (about
n / 2**20 documents), its units a seeded random sample; with few domains val is still at least one whole
site (the quickstart's four hosts put the smallest one in val); a site larger than val_fraction of the
corpus always trains. When all documents share one unit (a single-site crawl) a domain split is
impossible, and the unit becomes the document (its URL, or its id), recorded as split_by "url"; with a
single document, or val_fraction 0, there is no val split.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pyarrow as pa
import xxhash

from gristmill.schemas import columns as C
from gristmill.schemas.shards import SPLIT_BY_DOMAIN, SPLIT_BY_URL, SPLIT_NONE

KEY = "shuffle_key"
SEQ = "input_position"
DOMAIN_KEY = "domain_key"
DOC_KEY = "doc_key"
TOKENS = "tokens"

SPLIT_BITS = 20
SPLIT_BINS = 1 << SPLIT_BITS
_SPLIT_SHIFT = np.uint64(64 - SPLIT_BITS)
# At most 2**8 bucket files open at once, well under the usual 1024 file descriptors.
MAX_FANOUT_BITS = 8
_PROVENANCE_ROWS = 1024  # provenance rows turned into Python objects at a time
_MASK64 = (1 << 64) - 1


# --- split units ---------------------------------------------------------------------------------

@lru_cache(maxsize=1)
def _suffix_extractor():
    import tldextract

    # suffix_list_urls=() and cache_dir=None: the snapshot in the wheel, never the network or a cache
    # that differs between machines. Private suffixes (github.io, ...) are off: their users' sites
    # group under the operator's domain, the cautious side for keeping copies apart.
    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None, include_psl_private_domains=False)


def _tldextract_version() -> str:
    from importlib.metadata import version

    return version("tldextract")


def _is_ip(host: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def registered_domain(url: str | None) -> str | None:
    """The registered domain of `url` (eTLD+1), the host for hosts without a public suffix, None without a host."""
    if not url:
        return None
    try:
        host = urlsplit(url.strip()).hostname
    except ValueError:
        return None
    if not host:
        return None
    host = host.rstrip(".")
    if _is_ip(host):
        # An address is no registrable name; its sites are its origins (ports), as on a demo web or an
        # intranet: each origin is one split unit.
        try:
            port = urlsplit(url.strip()).port
        except ValueError:
            port = None
        return f"{host}:{port}" if port else host
    parts = _suffix_extractor()(host)
    if parts.suffix and parts.domain:
        return f"{parts.domain}.{parts.suffix}"
    return host


def _hash(text: str, seed: int) -> int:
    return xxhash.xxh3_64_intdigest(text.encode("utf-8", "surrogatepass"), seed=seed & _MASK64)


def split_unit_keys(url: str | None, doc_id: str, seed: int) -> tuple[int, int]:
    """(domain unit key, document unit key): the seeded 64-bit points the split rule bins."""
    domain = registered_domain(url)
    domain_key = _hash(f"domain:{domain}" if domain else f"id:{doc_id}", seed)
    doc_key = _hash(f"url:{url}" if url else f"id:{doc_id}", seed)
    return domain_key, doc_key


def shuffle_key(doc_id: str, seed: int) -> int:
    return _hash(f"shuffle:{doc_id}", seed)


# --- the split -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class SplitPlan:
    """Which split-unit bins are val. `split_by`: domain, url or none; `rule`: the rule in words."""

    split_by: str
    val_bins: np.ndarray  # bool, SPLIT_BINS
    rule: str

    def is_val(self, domain_key: int, doc_key: int) -> bool:
        if self.split_by == SPLIT_NONE:
            return False
        key = domain_key if self.split_by == SPLIT_BY_DOMAIN else doc_key
        return bool(self.val_bins[key >> (64 - SPLIT_BITS)])


def _val_bins(hist: np.ndarray, val_fraction: float) -> np.ndarray:
    """The rule of the module docstring over one histogram of documents per bin (>= 2 bins non-empty)."""
    nonempty = np.flatnonzero(hist)
    budget = val_fraction * int(hist.sum())
    chosen = np.zeros(len(hist), dtype=bool)
    taken = 0
    for b in nonempty[:-1].tolist():  # never the last non-empty bin: train keeps one
        if taken + int(hist[b]) <= budget:
            chosen[b] = True
            taken += int(hist[b])
    if not taken:
        # No bin fits the budget: the smallest one (the earliest in u order among equals), unless
        # that would take every bin.
        smallest = nonempty[np.argmin(hist[nonempty])]
        chosen[smallest] = True
        if chosen[nonempty].all():
            chosen[smallest] = False
    return chosen


def plan_split(domain_hist: np.ndarray, doc_hist: np.ndarray, val_fraction: float, split_by: str = SPLIT_BY_DOMAIN,
               seed: int = 0) -> SplitPlan:
    """Choose the val units from the per-bin document counts of pass 1 (see the module docstring)."""
    none = SplitPlan(SPLIT_NONE, np.zeros(SPLIT_BINS, dtype=bool), "no val split")
    if val_fraction <= 0:
        return none
    candidates = [(SPLIT_BY_DOMAIN, domain_hist), (SPLIT_BY_URL, doc_hist)] if split_by == SPLIT_BY_DOMAIN \
        else [(SPLIT_BY_URL, doc_hist)]
    for unit, hist in candidates:
        if np.count_nonzero(hist) >= 2:
            if unit == SPLIT_BY_DOMAIN:
                unit_text = (f'registered domain (public suffixes of tldextract {_tldextract_version()}): '
                             f'u = xxh3_64("domain:" + domain, or "id:" + id without a url, seed={seed}) / 2**64')
            else:
                unit_text = ("document" + (" (a single domain: no domain split possible)" if split_by == SPLIT_BY_DOMAIN else "")
                             + f': u = xxh3_64("url:" + url, or "id:" + id without a url, seed={seed}) / 2**64')
            rule = (f"split unit {unit_text}; units binned on a 2**-{SPLIT_BITS} grid of u; bins in u order go to val "
                    f"while val stays within val_fraction={val_fraction:g} of the documents (larger bins stay in "
                    "train); if none fits, the smallest bin; train keeps at least one bin")
            return SplitPlan(unit, _val_bins(hist, val_fraction), rule)
    return none


# --- the shuffle ---------------------------------------------------------------------------------

def shuffle_schema(token_dtype: np.dtype) -> pa.Schema:
    """A keyed document: shuffle key, global position, split-unit keys, provenance, tokens."""
    return pa.schema([
        pa.field(KEY, pa.uint64()), pa.field(SEQ, pa.uint64()),
        pa.field(DOMAIN_KEY, pa.uint64()), pa.field(DOC_KEY, pa.uint64()),
        *C.schema_of(C.PROVENANCE_COLUMNS), pa.field(TOKENS, pa.large_list(pa.from_numpy_dtype(np.dtype(token_dtype)))),
    ])


def keyed_batch(schema: pa.Schema, docs: list[np.ndarray], provenance: dict[str, list], positions: np.ndarray,
                seed: int, token_dtype: np.dtype) -> pa.RecordBatch:
    """Documents (token arrays, each ending with eos) with their shuffle and split-unit keys, provenance and
    global positions, as one record batch of `schema` (`shuffle_schema`)."""
    n = len(docs)
    ids, urls = provenance[C.ID], provenance[C.URL]
    keys = np.fromiter((shuffle_key(i, seed) for i in ids), dtype=np.uint64, count=n)
    units = [split_unit_keys(u, i, seed) for u, i in zip(urls, ids)]
    domain_keys = np.fromiter((d for d, _ in units), dtype=np.uint64, count=n)
    doc_keys = np.fromiter((d for _, d in units), dtype=np.uint64, count=n)
    lengths = np.fromiter((len(d) for d in docs), dtype=np.int64, count=n)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    values = np.concatenate(docs).astype(token_dtype, copy=False) if offsets[-1] else np.zeros(0, token_dtype)
    tokens = pa.LargeListArray.from_arrays(pa.array(offsets), pa.array(values))
    columns = [pa.array(keys), pa.array(np.asarray(positions, dtype=np.uint64)), pa.array(domain_keys), pa.array(doc_keys),
               *(pa.array(provenance[name], type=C.TYPES[name]) for name in C.PROVENANCE_COLUMNS), tokens]
    return pa.RecordBatch.from_arrays(columns, schema=schema)


class SplitHistograms:
    """Documents per split-unit bin (domain and document units): all the split rule needs of pass 1."""

    def __init__(self):
        self.domain = np.zeros(SPLIT_BINS, dtype=np.int64)
        self.doc = np.zeros(SPLIT_BINS, dtype=np.int64)

    def add(self, batch: pa.RecordBatch) -> None:
        for hist, column in ((self.domain, DOMAIN_KEY), (self.doc, DOC_KEY)):
            np.add.at(hist, (batch.column(column).to_numpy() >> _SPLIT_SHIFT).astype(np.intp), 1)

    def sparse(self) -> dict[str, np.ndarray]:
        """The non-empty bins and their counts (for a file or a message)."""
        out = {}
        for name, hist in (("domain", self.domain), ("doc", self.doc)):
            bins = np.flatnonzero(hist)
            out[f"{name}_bins"], out[f"{name}_counts"] = bins.astype(np.int64), hist[bins]
        return out

    def add_sparse(self, sparse) -> None:
        for name, hist in (("domain", self.domain), ("doc", self.doc)):
            np.add.at(hist, np.asarray(sparse[f"{name}_bins"], dtype=np.intp), np.asarray(sparse[f"{name}_counts"]))


@dataclass
class ShuffleStats:
    documents: int = 0
    spilled_bytes: int = 0
    initial_buckets: int = 0
    resplits: int = 0  # buckets re-partitioned because they exceeded the bound
    buckets_loaded: int = 0
    max_bucket_bytes: int = 0  # the largest bucket held in memory (Arrow bytes), single documents aside
    max_bucket_docs: int = 0
    # Documents larger than the bound by themselves: each was held alone, as its own bucket.
    oversized_documents: int = 0


@dataclass
class _Bucket:
    path: Path
    bits: int  # key bits that name it
    prefix: int  # their value
    docs: int = 0
    file_bytes: int = 0


@dataclass
class ShuffledDocument:
    tokens: np.ndarray
    provenance: dict
    domain_key: int
    doc_key: int


class _Partition:
    """Spills record batches of the bucket (bits, prefix) into its 2**sub_bits children by the next key bits."""

    def __init__(self, folder: Path, schema: pa.Schema, bits: int, prefix: int, sub_bits: int, flush_bytes: int):
        self.schema, self.bits, self.sub_bits, self.flush_bytes = schema, bits, sub_bits, flush_bytes
        self.children = [_Bucket(folder / f"b{bits + sub_bits:02d}-{(prefix << sub_bits) | j:016x}.arrow",
                                 bits + sub_bits, (prefix << sub_bits) | j) for j in range(1 << sub_bits)]
        self._writers: dict[int, pa.ipc.RecordBatchStreamWriter] = {}
        self._pending: dict[int, list[pa.RecordBatch]] = {}
        self._pending_bytes: dict[int, int] = {}

    def add(self, batch: pa.RecordBatch) -> None:
        if not batch.num_rows:
            return
        keys = batch.column(KEY).to_numpy()
        if self.sub_bits:
            child = (keys >> np.uint64(64 - self.bits - self.sub_bits)) & np.uint64((1 << self.sub_bits) - 1)
        else:
            child = np.zeros(len(keys), dtype=np.uint64)
        order = np.argsort(child, kind="stable")
        sorted_child = child[order]
        starts = np.flatnonzero(np.r_[True, sorted_child[1:] != sorted_child[:-1]])
        for begin, end in zip(starts.tolist(), [*starts[1:].tolist(), len(order)]):
            j = int(sorted_child[begin])
            part = batch.take(pa.array(order[begin:end]))
            self._pending.setdefault(j, []).append(part)
            self._pending_bytes[j] = self._pending_bytes.get(j, 0) + part.nbytes
            self.children[j].docs += part.num_rows
            if self._pending_bytes[j] >= self.flush_bytes:
                self._flush(j)

    def _flush(self, j: int) -> None:
        batches = self._pending.pop(j, [])
        self._pending_bytes.pop(j, None)
        if not batches:
            return
        if j not in self._writers:
            self._writers[j] = pa.ipc.new_stream(pa.OSFile(str(self.children[j].path), "wb"), self.schema)
        self._writers[j].write_table(pa.Table.from_batches(batches, self.schema).combine_chunks())

    def close(self) -> list[_Bucket]:
        for j in list(self._pending):
            self._flush(j)
        for writer in self._writers.values():
            writer.close()
        for child in self.children:
            child.file_bytes = child.path.stat().st_size if child.docs else 0
        return self.children


def _fanout_bits(total_bytes: int, bucket_bytes: int) -> int:
    """Bits for a partition whose parts should come out at about half the bound (uniform keys)."""
    if total_bytes <= bucket_bytes // 2:
        return 0
    return min(MAX_FANOUT_BITS, max(1, math.ceil(math.log2(2 * total_bytes / bucket_bytes))))


class GlobalShuffle:
    """Pass 1: `add` documents; pass 2: `documents()` yields them in shuffle-key order. Use as a context
    manager, so the spill folder goes whatever happens.

    `expected_bytes` (an estimate of the spill, e.g. from the curated Parquet's metadata) sets the first
    partition's fan-out; a wrong estimate costs an extra re-partition of the buckets, never the bound.
    """

    def __init__(self, work_dir: Path, seed: int, token_dtype: np.dtype, bucket_bytes: int, expected_bytes: int = 0,
                 bits: int = 0, prefix: int = 0):
        if bucket_bytes < 4096:
            raise ValueError(f"shuffle bucket bound of {bucket_bytes} bytes is below the 4096-byte minimum")
        self.work_dir, self.seed, self.bucket_bytes = Path(work_dir), seed, bucket_bytes
        self.expected_bytes, self.bits, self.prefix = expected_bytes, bits, prefix  # the key range (bits, prefix) it holds
        self.stats = ShuffleStats()
        self.token_dtype = np.dtype(token_dtype)
        self.schema = shuffle_schema(self.token_dtype)
        self.histograms = SplitHistograms()
        shutil.rmtree(self.work_dir, ignore_errors=True)
        self.work_dir.mkdir(parents=True)
        self._held: list[pa.RecordBatch] = []
        self._held_bytes = 0
        self._root: _Partition | None = None
        self._buckets: list[_Bucket] | None = None

    @property
    def domain_hist(self) -> np.ndarray:
        return self.histograms.domain

    @property
    def doc_hist(self) -> np.ndarray:
        return self.histograms.doc

    def _flush_bytes(self, sub_bits: int) -> int:
        # All children's buffers together stay within half the bound.
        return max(1, self.bucket_bytes // (2 << sub_bits))

    def __enter__(self) -> "GlobalShuffle":
        return self

    def __exit__(self, *exc) -> None:
        shutil.rmtree(self.work_dir, ignore_errors=True)

    def add(self, docs: list[np.ndarray], provenance: dict[str, list], positions: np.ndarray | None = None) -> None:
        """Spill a batch: token arrays (each ending with eos), their provenance columns, and their global
        positions (the tie-break among equal keys; default: the order of `add` calls)."""
        if positions is None:
            positions = np.arange(self.stats.documents, self.stats.documents + len(docs), dtype=np.uint64)
        batch = keyed_batch(self.schema, docs, provenance, positions, self.seed, self.token_dtype)
        self.histograms.add(batch)
        self.add_batch(batch)

    def add_batch(self, batch: pa.RecordBatch) -> None:
        """Spill documents already keyed (`keyed_batch`, this shuffle's schema)."""
        if self._buckets is not None:
            raise RuntimeError("GlobalShuffle.add after documents(): pass 1 is over")
        if not batch.num_rows:
            return
        self.stats.documents += batch.num_rows
        if self._root is None:  # held in memory while within half the bound
            self._held.append(batch)
            self._held_bytes += batch.nbytes
            if self._held_bytes <= self.bucket_bytes // 2:
                return
            bits = _fanout_bits(max(self.expected_bytes, 2 * self._held_bytes), self.bucket_bytes)
            self.stats.initial_buckets = 1 << bits
            self._root = _Partition(self.work_dir, self.schema, self.bits, self.prefix, min(bits, 64 - self.bits),
                                    self._flush_bytes(bits))
            held, self._held = self._held, []
            for part in held:
                self._root.add(part)
            return
        self._root.add(batch)

    def documents(self) -> Iterator[ShuffledDocument]:
        """Pass 2: every document once, in shuffle-key order, one bucket in memory at a time. Once:
        each bucket file is deleted as it is read."""
        if self._buckets is not None:
            raise RuntimeError("GlobalShuffle.documents() runs once: its buckets are consumed")
        if self._root is None:  # it all fitted in memory: one bucket, never written
            self._buckets = []
            if self._held:
                table = pa.Table.from_batches(self._held, self.schema)
                self._held = []
                yield from self._ordered(table, self.stats.documents)
            return
        self._buckets = self._root.close()
        self.stats.spilled_bytes = sum(b.file_bytes for b in self._buckets)
        for bucket in self._buckets:
            yield from self._emit(bucket)

    def _emit(self, bucket: _Bucket) -> Iterator[ShuffledDocument]:
        if not bucket.docs:
            return
        if bucket.file_bytes > self.bucket_bytes and bucket.docs > 1 and bucket.bits < 64:
            sub_bits = min(64 - bucket.bits, max(1, _fanout_bits(bucket.file_bytes, self.bucket_bytes)))
            partition = _Partition(self.work_dir, self.schema, bucket.bits, bucket.prefix, sub_bits,
                                   self._flush_bytes(sub_bits))
            with pa.ipc.open_stream(pa.OSFile(str(bucket.path), "rb")) as reader:
                for batch in reader:
                    partition.add(batch)
            children = partition.close()
            bucket.path.unlink()
            self.stats.resplits += 1
            for child in children:
                yield from self._emit(child)
            return
        yield from self._load(bucket)

    def _load(self, bucket: _Bucket) -> Iterator[ShuffledDocument]:
        with pa.ipc.open_stream(pa.OSFile(str(bucket.path), "rb")) as reader:
            table = reader.read_all()
        bucket.path.unlink()
        splittable = bucket.docs > 1 and bucket.bits < 64
        if table.nbytes > self.bucket_bytes and splittable:
            raise RuntimeError(f"shuffle bucket {bucket.path.name} holds {table.nbytes} bytes, over the "
                               f"{self.bucket_bytes}-byte bound: the bucketing is broken")
        yield from self._ordered(table, bucket.docs)

    def _ordered(self, table: pa.Table, docs: int) -> Iterator[ShuffledDocument]:
        """One bucket's documents, sorted by (key, position)."""
        self.stats.buckets_loaded += 1
        self.stats.max_bucket_docs = max(self.stats.max_bucket_docs, table.num_rows)
        if table.nbytes > self.bucket_bytes and docs == 1:
            self.stats.oversized_documents += 1
        else:
            self.stats.max_bucket_bytes = max(self.stats.max_bucket_bytes, table.nbytes)

        order = np.lexsort((table.column(SEQ).to_numpy(), table.column(KEY).to_numpy()))
        domain_keys = table.column(DOMAIN_KEY).to_numpy()[order].tolist()
        doc_keys = table.column(DOC_KEY).to_numpy()[order].tolist()
        chunks = table.column(TOKENS).chunks
        chunk_starts = np.cumsum([0] + [len(c) for c in chunks])
        values = [c.values.to_numpy() for c in chunks]
        offsets = [c.offsets.to_numpy() for c in chunks]
        provenance = table.select(list(C.PROVENANCE_COLUMNS)).take(pa.array(order))
        which = np.searchsorted(chunk_starts, order, side="right") - 1
        for begin in range(0, len(order), _PROVENANCE_ROWS):
            rows = provenance.slice(begin, _PROVENANCE_ROWS).to_pylist()
            for k, row in enumerate(rows, start=begin):
                c = int(which[k])
                local = int(order[k]) - int(chunk_starts[c])
                doc = values[c][offsets[c][local] : offsets[c][local + 1]]
                yield ShuffledDocument(doc, row, domain_keys[k], doc_keys[k])

