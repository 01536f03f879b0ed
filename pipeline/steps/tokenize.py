"""Tokenize the curated documents into shards (`schemas.shards` format) with a manifest.

A global step, run after the writers and dedup as steps of Ray tasks. The driver plans from Parquet
footers and folds counts; tasks read and write every document byte (DESIGN.md "Scale"):

  1. sample    (when the job names no tokenizer) per group of curated row groups: the text bytes in each
               of 2**20 sample bins, a document's bin being the top bits of xxh3_64("sample:" + id, seed).
               The driver takes the bins in order while their bytes stay within `tokenizer_sample_bytes`
               (at least one bin): a seeded sample of whole documents, chosen by id, so it depends on the
               set of documents and not on how they lie in parts. The same tasks' row groups then write
               their sampled texts to sample/{task}.arrow (a second parallel read).
  2. train     one task: a byte-level BPE on the sampled texts in curated order (every text when the
               curated text is within the bound), read from the sample files only -> shards/tokenizer.json.
  3. encode    per group of row groups (about `encode_task_bytes` of text): encode, end each document with
               eos, key it (pipeline/steps/token_shuffle.py: shuffle key, global position = its ordinal in curated
               order, split-unit keys) and spill it to the group's file, an Arrow IPC file of record batches
               each of one spill bucket (the top key bits; at most half `shuffle_bucket_bytes` pending), then
               its completion record: documents, tokens, the batches' buckets, the split-unit histograms.
  4. plan      the driver, after every encode record is in: the val units from the summed histograms
               (token_shuffle.plan_split), and 2**G shard units, key ranges of about SHARDS_PER_UNIT shards'
               tokens each, G from the exact token total. Both depend on the documents only.
  5. shards    per shard unit: its documents from every spill file, in key order (ties by global position),
               holding at most `shuffle_bucket_bytes` (a larger unit is re-partitioned on disk by the next
               key bits: token_shuffle.GlobalShuffle), each routed to train or val and cut into
               `{split}-{unit:05d}-{k:05d}.bin` shards of `shard_tokens`, each with its `.docs.parquet`.
  6. manifest  the driver: every unit's shard entries, train then val, each in unit (= key) order. Read in
               that order, the train shards hold the documents in one global key order.

Same curated documents and job -> byte-identical shards, whatever the worker count, the part layout, the
task sizes or the memory bound (G depends on shard_tokens and the token total only).
Resume: each task writes its outputs, then its completion record under the work folder; a resumed step
redoes only the groups and units without one (a unit first deletes what an earlier attempt left of it).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import xxhash

from gristmill.pipeline.engine.faults import fault_point
from gristmill.pipeline.engine.process import peak_rss_mib, release_memory
from gristmill.pipeline.steps.token_shuffle import KEY, GlobalShuffle, SplitHistograms, SplitPlan, keyed_batch, plan_split, shuffle_schema
from gristmill.pipeline.engine.run_folder import write_atomic
from gristmill.schemas import columns as C
from gristmill.schemas.job import TokenizeConfig
from gristmill.schemas.shards import (
    EOS_TOKEN, SHUFFLE_KEY_SORT, SPECIAL_TOKENS, Manifest, ShardEntry, ShardError, ShardWriter, read_shard,
    sha256_file, token_dtype, verify_shards,
)

TOKENIZER_NAME = "tokenizer.json"
DOC_TOKENS = "tokens"
_DOCS_SCHEMA = pa.schema([*C.schema_of(C.PROVENANCE_COLUMNS), pa.field(DOC_TOKENS, pa.int64())])
_ENCODE_BATCH = 256  # documents encoded at a time
ROWS_PER_TASK = 50_000  # documents per sample/encode task at most (and about encode_task_bytes of text)
# At most this many encode tasks (their tasks grow past encode_task_bytes beyond): every shard-unit task
# reads each encode task's record and spill file, so the exchange's file operations are tasks x units.
MAX_ENCODE_TASKS = 4096
SAMPLE_BITS = 20  # the tokenizer sample's bins: 2**20, so a bin of a 10 TB corpus holds ~10 MB
SHARDS_PER_UNIT = 8  # a shard unit holds about this many shards' tokens (one partial shard a unit and split)
MAX_UNIT_BITS = 16
# The step's work folder (runner: RUN/.work/tokenize): completion records, spill files, unit spills.
SAMPLE, ENCODED, SPILL, UNITS = "sample", "encoded", "spill", "units"
_MASK64 = (1 << 64) - 1


def train_tokenizer(texts: Iterator[str], vocab_size: int):
    """Byte-level BPE (GPT-2 style) with the special tokens reserved first: eos = id 0."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer)
    return tokenizer


def load_tokenizer(path: str):
    """A user's tokenizer.json, with eos and the PII placeholders added as special tokens if missing."""
    return load_tokenizer_with_added(path)[0]


def load_tokenizer_with_added(path: str):
    """(tokenizer, the special tokens that were missing from the file and were added)."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(path)
    missing = [t for t in SPECIAL_TOKENS if tokenizer.token_to_id(t) is None]
    if missing:
        tokenizer.add_special_tokens(missing)
    return tokenizer, missing


def check_placeholders(tokenizer) -> None:
    """Every PII placeholder (and eos) must encode to exactly its own id, alone and inside text, so a
    redaction costs one token and decodes back to the placeholder. Raises ShardError otherwise."""
    for token in SPECIAL_TOKENS:
        token_id = tokenizer.token_to_id(token)
        ids = tokenizer.encode(f"a {token} b", add_special_tokens=False).ids
        if token_id is None or ids.count(token_id) != 1 or tokenizer.encode(token, add_special_tokens=False).ids != [token_id]:
            raise ShardError(f"tokenizer does not encode {token!r} as one token (id {token_id}); "
                             "it must be a special (added) token of the tokenizer")


def encode_texts(tokenizer, texts: list[str]) -> list[np.ndarray]:
    """Token ids of each text. The text's own characters never become the document separator: a
    literal eos string in a page ("<|endoftext|>" quoted in a tokenizer tutorial, say) is encoded as the
    ordinary text it is (two pieces, decoding back to the same characters), so only gristmill's own
    separator marks a document boundary."""
    encodings = tokenizer.encode_batch(texts, add_special_tokens=False)
    out = [np.asarray(e.ids, dtype=np.int64) for e in encodings]
    for i, text in enumerate(texts):
        if EOS_TOKEN in text:
            half = len(EOS_TOKEN) // 2
            literal = [tokenizer.encode(piece, add_special_tokens=False).ids
                       for piece in (EOS_TOKEN[:half], EOS_TOKEN[half:])]
            ids: list[int] = []
            for j, part in enumerate(text.split(EOS_TOKEN)):
                if j:
                    ids += literal[0] + literal[1]
                ids += tokenizer.encode(part, add_special_tokens=False).ids if part else []
            out[i] = np.asarray(ids, dtype=np.int64)
    return out


class _ShardSink:
    """One split's shards of one unit: documents stream into the open shard, which closes at `shard_tokens`."""

    def __init__(self, folder: Path, split: str, unit: int, shard_tokens: int, dtype: np.dtype):
        self.folder, self.split, self.unit, self.shard_tokens, self.dtype = folder, split, unit, shard_tokens, dtype
        self.writer: ShardWriter | None = None
        self.provenance: list[dict] = []
        self.entries: list[ShardEntry] = []

    def _name(self) -> str:
        return f"{self.split}-{self.unit:05d}-{len(self.entries):05d}"

    def add(self, doc: np.ndarray, provenance: dict) -> None:
        if self.writer is None:
            self.writer = ShardWriter(self.folder / f"{self._name()}.bin", self.dtype)
        self.writer.add(doc)
        self.provenance.append(provenance)
        if self.writer.tokens >= self.shard_tokens:
            self.flush()

    def flush(self) -> None:
        if self.writer is None:
            return
        name = self._name()
        n_tokens, n_docs = self.writer.close()
        index = pa.Table.from_pylist(self.provenance, schema=_DOCS_SCHEMA)
        pq.write_table(index, self.folder / f"{name}.docs.parquet", compression="zstd")
        self.entries.append(ShardEntry(
            f"{name}.bin", self.split, sha256_file(self.folder / f"{name}.bin"), n_tokens, n_docs,
            f"{name}.docs.parquet", sha256_file(self.folder / f"{name}.docs.parquet"),
        ))
        self.writer, self.provenance = None, []
        fault_point("tokenize:write")  # test-only fault injection (pipeline/engine/faults.py)


# --- the plan: groups of row groups ------------------------------------------------------------------

@dataclass(frozen=True)
class RowGroup:
    path: str
    group: int
    position: int  # the global position (ordinal in curated order) of its first document
    rows: int


def plan_groups(curated_dir: Path, task_bytes: int) -> tuple[list[list[RowGroup]], int, int]:
    """The curated row groups, in order, cut into tasks of consecutive row groups holding at most
    `task_bytes` of text (by the footers; a larger row group is a task of its own) and ROWS_PER_TASK
    documents, merged in runs when that makes more than MAX_ENCODE_TASKS; and the documents and text bytes
    in all (the footers' uncompressed text size)."""
    tasks: list[list[RowGroup]] = []
    position = text_bytes = 0
    size = rows = task_bytes + 1
    for part in sorted(curated_dir.glob("part-*.parquet")):
        path, meta = str(part), pq.ParquetFile(part).metadata  # one path string per file, shared by its row groups
        for g in range(meta.num_row_groups):
            group = meta.row_group(g)
            n = group.num_rows
            if not n:
                continue
            text = sum(group.column(c).total_uncompressed_size for c in range(group.num_columns)
                       if group.column(c).path_in_schema == C.TEXT)
            if size + text > task_bytes or rows + n > ROWS_PER_TASK:
                tasks.append([])
                size = rows = 0
            tasks[-1].append(RowGroup(path, g, position, n))
            size, rows, position, text_bytes = size + text, rows + n, position + n, text_bytes + text
    if len(tasks) > MAX_ENCODE_TASKS:  # a big corpus: larger tasks, so unit tasks read fewer spill files
        per = math.ceil(len(tasks) / MAX_ENCODE_TASKS)
        tasks = [[rg for task in tasks[i:i + per] for rg in task] for i in range(0, len(tasks), per)]
    return tasks, position, text_bytes


def _read(task: list[RowGroup], columns: list[str]) -> Iterator[tuple[int, dict]]:
    """(global position of the batch's first row, the batch as a dict of lists), in batches of _ENCODE_BATCH
    rows: a task's row groups of one file are read together (a task holds about encode_task_bytes of text;
    a file's last row group, and any row group of a part rewritten by dedup, can be a few documents)."""
    runs: list[list[RowGroup]] = []
    for rg in task:  # consecutive row groups of one file
        if runs and runs[-1][-1].path == rg.path:
            runs[-1].append(rg)
        else:
            runs.append([rg])
    for run in runs:
        table = pq.ParquetFile(run[0].path).read_row_groups([rg.group for rg in run], columns=columns).combine_chunks()
        position = run[0].position
        for batch in table.to_batches(max_chunksize=_ENCODE_BATCH):
            yield position, batch.to_pydict()
            position += batch.num_rows
        del table


# --- 1-2. the tokenizer sample and training ----------------------------------------------------------

def _sample_bins(ids: list[str], seed: int) -> np.ndarray:
    return np.fromiter((xxhash.xxh3_64_intdigest(f"sample:{i}".encode("utf-8", "surrogatepass"), seed=seed & _MASK64)
                        >> (64 - SAMPLE_BITS) for i in ids), dtype=np.int64, count=len(ids))


def _sample_task(task: list[RowGroup], seed: int) -> dict:
    """Text bytes per sample bin of the task's documents (sparse)."""
    hist = np.zeros(1 << SAMPLE_BITS, dtype=np.int64)
    for _, batch in _read(task, [C.ID, C.TEXT]):
        lengths = np.fromiter((len(t.encode("utf-8", "surrogatepass")) for t in batch[C.TEXT]), dtype=np.int64,
                              count=len(batch[C.TEXT]))
        np.add.at(hist, _sample_bins(batch[C.ID], seed), lengths)
    bins = np.flatnonzero(hist)
    return {"bins": bins, "bytes": hist[bins], "peak_rss_mib": peak_rss_mib()}


def sample_limit(hist: np.ndarray, sample_bytes: int) -> int:
    """The sample is every document whose bin is below this: bins in order while their bytes stay within
    `sample_bytes`, and at least the first non-empty bin."""
    cumulative = np.cumsum(hist)
    within = int(np.searchsorted(cumulative, sample_bytes, side="right"))  # bins [0, within) fit
    if within >= len(hist):
        return len(hist)
    first = int(np.flatnonzero(hist)[0]) if hist.any() else 0
    return max(within, first + 1)


_SAMPLE_SCHEMA = pa.schema([pa.field(C.TEXT, pa.large_string())])


def _gather_task(index: int, task: list[RowGroup], seed: int, limit: int, work: str) -> dict:
    """The task's sampled texts (bin below `limit`), in curated order, to sample/{index}.arrow: the train
    task then reads the sample only (at most tokenizer_sample_bytes), never the whole curated text."""
    path = Path(work) / SAMPLE / f"{index:05d}.arrow"
    with pa.ipc.new_file(pa.OSFile(f"{path}.tmp", "wb"), _SAMPLE_SCHEMA) as writer:
        for _, batch in _read(task, [C.ID, C.TEXT]):
            keep = _sample_bins(batch[C.ID], seed) < limit
            texts = [t for t, k in zip(batch[C.TEXT], keep) if k]
            if texts:
                writer.write_batch(pa.record_batch([pa.array(texts, pa.large_string())], schema=_SAMPLE_SCHEMA))
    os.replace(f"{path}.tmp", path)
    return {"peak_rss_mib": peak_rss_mib()}


def _train_task(tasks: int, work: str, vocab_size: int, path: str) -> dict:
    def texts():
        for index in range(tasks):
            with pa.memory_map(str(Path(work) / SAMPLE / f"{index:05d}.arrow")) as source:
                reader = pa.ipc.open_file(source)
                for i in range(reader.num_record_batches):
                    yield from reader.get_batch(i).column(0).to_pylist()

    tokenizer = train_tokenizer(texts(), vocab_size)
    check_placeholders(tokenizer)
    tokenizer.save(f"{path}.tmp")
    os.replace(f"{path}.tmp", path)
    return {"peak_rss_mib": peak_rss_mib()}


# --- 3. encode and spill -----------------------------------------------------------------------------

class _Spill:
    """One encode task's spill file: keyed batches pend until half the shuffle bound, then are written as
    record batches of one spill bucket each (stable in position order), listed in `batches`."""

    def __init__(self, path: Path, schema: pa.Schema, bits: int, flush_bytes: int):
        self.path, self.schema, self.bits, self.flush_bytes = path, schema, bits, flush_bytes
        self.writer = pa.ipc.new_file(pa.OSFile(f"{path}.tmp", "wb"), schema)
        self.pending: list[pa.RecordBatch] = []
        self.pending_bytes = 0
        self.batches: list[list[int]] = []  # [bucket, rows, bytes] per record batch of the file

    def add(self, batch: pa.RecordBatch) -> None:
        self.pending.append(batch)
        self.pending_bytes += batch.nbytes
        if self.pending_bytes >= self.flush_bytes:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        table = pa.Table.from_batches(self.pending, self.schema).combine_chunks()
        self.pending, self.pending_bytes = [], 0
        buckets = table.column(KEY).to_numpy() >> np.uint64(64 - self.bits) if self.bits else np.zeros(table.num_rows, np.uint64)
        order = np.argsort(buckets, kind="stable")
        sorted_buckets = buckets[order]
        starts = np.flatnonzero(np.r_[True, sorted_buckets[1:] != sorted_buckets[:-1]])
        for begin, end in zip(starts.tolist(), [*starts[1:].tolist(), len(order)]):
            part = table.take(pa.array(order[begin:end])).combine_chunks().to_batches()[0]
            self.writer.write_batch(part)
            self.batches.append([int(sorted_buckets[begin]), part.num_rows, part.nbytes])

    def close(self) -> None:
        self.flush()
        self.writer.close()
        os.replace(f"{self.path}.tmp", self.path)


def _encode_task(index: int, task: list[RowGroup], tokenizer_path: str, work: str, seed: int, dtype_name: str,
                 bits: int, flush_bytes: int) -> dict:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(tokenizer_path)
    eos_id = tokenizer.token_to_id(EOS_TOKEN)
    dtype = np.dtype(dtype_name)
    schema = shuffle_schema(dtype)
    histograms = SplitHistograms()
    spill = _Spill(Path(work) / SPILL / f"{index:05d}.arrow", schema, bits, flush_bytes)
    docs = tokens = 0
    for position, batch in _read(task, [*C.PROVENANCE_COLUMNS, C.TEXT]):
        encoded = [np.append(ids, eos_id).astype(dtype) for ids in encode_texts(tokenizer, batch[C.TEXT])]
        n = len(encoded)
        keyed = keyed_batch(schema, encoded, batch, np.arange(position, position + n, dtype=np.uint64), seed, dtype)
        histograms.add(keyed)
        spill.add(keyed)
        docs, tokens = docs + n, tokens + sum(len(d) for d in encoded)
    spill.close()
    np.savez(Path(work) / ENCODED / f"{index:05d}.npz", **histograms.sparse())
    fault_point("tokenize:encode")  # test-only fault injection (pipeline/engine/faults.py)
    record = {"docs": docs, "tokens": tokens, "batches": spill.batches}
    write_atomic(Path(work) / ENCODED / f"{index:05d}.json", json.dumps(record))
    release_memory(collect_garbage=True)
    return {"docs": docs, "tokens": tokens, "peak_rss_mib": peak_rss_mib()}


# --- 5. shard units ---------------------------------------------------------------------------------

def unit_bits(tokens: int, shard_tokens: int) -> int:
    """G: 2**G shard units of about SHARDS_PER_UNIT shards each."""
    units = tokens / (SHARDS_PER_UNIT * shard_tokens)
    return 0 if units <= 1 else min(MAX_UNIT_BITS, math.ceil(math.log2(units)))


def _unit_batches(work: Path, encode_tasks: int, spill_bits: int, g: int, unit: int) -> Iterator[pa.RecordBatch]:
    """The unit's documents from every spill file (any order: the unit sorts)."""
    if g >= spill_bits:
        wanted = {unit >> (g - spill_bits)}
    else:
        wanted = set(range(unit << (spill_bits - g), (unit + 1) << (spill_bits - g)))
    for index in range(encode_tasks):
        record = json.loads((work / ENCODED / f"{index:05d}.json").read_text())
        picks = [i for i, (bucket, _, _) in enumerate(record["batches"]) if bucket in wanted]
        if not picks:
            continue
        with pa.memory_map(str(work / SPILL / f"{index:05d}.arrow")) as source:
            reader = pa.ipc.open_file(source)
            for i in picks:
                batch = reader.get_batch(i)
                if g > spill_bits:
                    keys = batch.column(KEY).to_numpy()
                    batch = batch.filter(pa.array((keys >> np.uint64(64 - g)) == np.uint64(unit)))
                if batch.num_rows:
                    yield batch


def _unit_task(unit: int, g: int, work: str, shards_dir: str, encode_tasks: int, spill_bits: int, expected_bytes: int,
               config: TokenizeConfig, dtype_name: str, plan: SplitPlan) -> dict:
    work, shards_dir, dtype = Path(work), Path(shards_dir), np.dtype(dtype_name)
    for split in ("train", "val"):  # what an earlier attempt at this unit left
        for stale in shards_dir.glob(f"{split}-{unit:05d}-*"):
            stale.unlink()
    sinks = {split: _ShardSink(shards_dir, split, unit, config.shard_tokens, dtype) for split in ("train", "val")}
    with GlobalShuffle(work / UNITS / f"{unit:05d}.spill", config.seed, dtype, config.shuffle_bucket_bytes,
                       expected_bytes=expected_bytes, bits=g, prefix=unit) as shuffle:
        for batch in _unit_batches(work, encode_tasks, spill_bits, g, unit):
            shuffle.add_batch(batch)
        for doc in shuffle.documents():
            provenance = doc.provenance | {DOC_TOKENS: len(doc.tokens)}
            sinks["val" if plan.is_val(doc.domain_key, doc.doc_key) else "train"].add(doc.tokens, provenance)
        for sink in sinks.values():
            sink.flush()
        stats = dataclasses.asdict(shuffle.stats)
    record = {"train": [dataclasses.asdict(e) for e in sinks["train"].entries],
              "val": [dataclasses.asdict(e) for e in sinks["val"].entries], "shuffle": stats}
    write_atomic(work / UNITS / f"{unit:05d}.json", json.dumps(record))
    release_memory(collect_garbage=True)
    return record | {"peak_rss_mib": peak_rss_mib()}


# --- the step ---------------------------------------------------------------------------------------

class _Tasks:
    """Ray tasks, at most `workers` at once, each reserving cpus/workers CPUs and running the tokenizers
    library on that many threads (its own default is every core of the node); results come back as each
    task ends."""

    def __init__(self, workers: int | None):
        from gristmill.pipeline.engine.cluster import task_cpus

        self.workers, self.cpus = task_cpus(workers)
        # the one train task: every worker's CPUs, as many as one node has
        self.train_cpus = task_cpus(1)[1] if self.workers > 1 else self.cpus
        self.peaks: dict[str, float] = {}  # step → the largest peak RSS (MiB) a task of it reported

    def run(self, fn, calls: list[tuple], on_result=None, cpus: float | None = None) -> None:
        """`fn(*args)` for each of `calls` (each reserving `cpus`, default cpus/workers, and running that many
        tokenizer threads); `on_result(i, result)` as each ends (results are not kept). The peak RSS the
        tasks report (their processes' VmHWM) is kept by step in `peaks`."""
        import ray

        cpus = cpus or self.cpus
        threads = str(max(1, int(cpus)))
        env = {"env_vars": {"RAYON_NUM_THREADS": threads, "RAYON_RS_NUM_CPUS": threads}}
        remote = ray.remote(fn).options(num_cpus=cpus, runtime_env=env, max_retries=3)
        # A bounded window in flight (not every task at once): the driver's bookkeeping and each wait stay
        # small however many tasks a step has.
        calls, index, window = iter(enumerate(calls)), {}, 4 * self.workers
        while True:
            for i, args in calls:
                index[remote.remote(*args)] = i
                if len(index) >= window:
                    break
            if not index:
                return
            done, _ = ray.wait(list(index), num_returns=1)
            for ref in done:
                i, result = index.pop(ref), ray.get(ref)
                step = fn.__name__.strip("_").removesuffix("_task")
                self.peaks[step] = max(self.peaks.get(step, 0.0), result.get("peak_rss_mib") or 0.0)
                if on_result is not None:
                    on_result(i, result)


def _load_record(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def tokenize_run(curated_dir: Path, shards_dir: Path, config: TokenizeConfig, work: Path | None = None,
                 workers: int | None = None, report: dict | None = None) -> Manifest:
    """Write `shards_dir` from the curated documents (the steps of the module docstring); Ray must be
    initialized. `work`: the step's work folder, kept between attempts so a rerun resumes (None: a fresh
    one beside `shards_dir`, removed at the end). `workers` caps the tasks at once (default: the cluster's
    CPUs); the outcome is the same for any value. `report` (a dict) receives the phases' seconds and counts."""
    curated_dir, shards_dir = Path(curated_dir), Path(shards_dir)
    own_work = work is None
    work = Path(work) if work is not None else shards_dir.with_name(shards_dir.name + "-tokenize-work")
    if own_work:
        shutil.rmtree(work, ignore_errors=True)
    tokenizer_record = work / "tokenizer-record.json"
    if not tokenizer_record.exists():  # nothing of this step is kept: start clean
        shutil.rmtree(shards_dir, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)
    shards_dir.mkdir(parents=True, exist_ok=True)
    for folder in (SAMPLE, ENCODED, SPILL, UNITS):
        (work / folder).mkdir(parents=True, exist_ok=True)
    report = report if report is not None else {}
    seconds = report.setdefault("seconds", {})
    clock = [time.perf_counter()]

    def phase(name: str) -> None:
        now = time.perf_counter()
        seconds[name] = round(seconds.get(name, 0) + now - clock[0], 3)
        clock[0] = now

    tasks, documents, text_bytes = plan_groups(curated_dir, config.encode_task_bytes)
    runner = _Tasks(workers)
    report.update(workers=runner.workers, documents=documents, encode_tasks=len(tasks))
    tokenizer_path = shards_dir / TOKENIZER_NAME

    # 1-2. the tokenizer
    if (saved := _load_record(tokenizer_record)) is not None and tokenizer_path.exists():
        added = saved["added"]
    else:
        added = []
        if config.tokenizer_file:
            tokenizer, added = load_tokenizer_with_added(config.tokenizer_file)
            check_placeholders(tokenizer)
            tokenizer.save(str(tokenizer_path))
        else:
            hist = np.zeros(1 << SAMPLE_BITS, dtype=np.int64)

            def fold(_, result):
                np.add.at(hist, result["bins"], result["bytes"])

            runner.run(_sample_task, [(task, config.seed) for task in tasks], fold)
            limit = sample_limit(hist, config.tokenizer_sample_bytes)
            report["sample"] = {"text_bytes": int(hist.sum()), "sample_bytes": int(hist[:limit].sum()),
                                "bins": limit, "of_bins": len(hist)}
            runner.run(_gather_task, [(i, task, config.seed, limit, str(work)) for i, task in enumerate(tasks)])
            phase("sample")
            # One task, so it gets the whole of `workers` (BPE training is multi-threaded).
            runner.run(_train_task, [(len(tasks), str(work), config.vocab_size, str(tokenizer_path))],
                       cpus=runner.train_cpus)
        write_atomic(tokenizer_record, json.dumps({"added": added, "sample": report.get("sample")}))
        phase("train")
        fault_point("tokenize:tokenizer")  # test-only fault injection (pipeline/engine/faults.py)
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(tokenizer_path))
    vocab_size = tokenizer.get_vocab_size(with_added_tokens=True)
    eos_id = tokenizer.token_to_id(EOS_TOKEN)
    dtype = token_dtype(vocab_size)

    # 3. encode and spill
    spill_bits = unit_bits(text_bytes // 2, config.shard_tokens) + 1 if text_bytes else 0  # ~1 token per 2 bytes, generously
    totals = {"docs": 0, "tokens": 0}
    histograms = SplitHistograms()

    def encoded(index: int, result: dict) -> None:
        totals["docs"] += result["docs"]
        totals["tokens"] += result["tokens"]
        with np.load(work / ENCODED / f"{index:05d}.npz") as sparse:
            histograms.add_sparse(sparse)
        fault_point("tokenize:encoded")  # test-only fault injection (pipeline/engine/faults.py)

    todo = []
    for index, task in enumerate(tasks):
        if (record := _load_record(work / ENCODED / f"{index:05d}.json")) is not None:
            encoded(index, record)
        else:
            todo.append(index)
    report["encode_tasks_run"] = len(todo)
    runner.run(_encode_task, [(i, tasks[i], str(tokenizer_path), str(work), config.seed, dtype.name, spill_bits,
                               max(1, config.shuffle_bucket_bytes // 2)) for i in todo],
               lambda k, result: encoded(todo[k], result))
    if totals["docs"] != documents:
        raise RuntimeError(f"tokenization encoded {totals['docs']} documents of the {documents} in {curated_dir}")
    report.update(tokens=totals["tokens"], spill_bits=spill_bits,
                  spill_bytes=sum((work / SPILL / f"{i:05d}.arrow").stat().st_size for i in range(len(tasks))))
    phase("encode")
    fault_point("tokenize:spill")  # test-only fault injection (pipeline/engine/faults.py)

    # 4. plan
    plan = plan_split(histograms.domain, histograms.doc, config.val_fraction, config.split_by, config.seed)
    g = unit_bits(totals["tokens"], config.shard_tokens) if documents else 0
    report.update(unit_bits=g, units=(1 << g) if documents else 0)

    # 5. shard units
    unit_bytes = report["spill_bytes"] >> g
    units: dict[int, dict] = {}

    def unit_done(unit: int, record: dict) -> None:
        units[unit] = record
        for _ in record["train"] + record["val"]:
            fault_point("tokenize:shard")  # test-only fault injection (pipeline/engine/faults.py)

    todo = []
    for unit in range((1 << g) if documents else 0):
        if (record := _load_record(work / UNITS / f"{unit:05d}.json")) is not None:
            unit_done(unit, record)
        else:
            todo.append(unit)
    report["units_run"] = len(todo)
    import ray

    plan_ref = ray.put(plan)  # the val bins (1 MB) once in the object store, not once per task
    runner.run(_unit_task, [(u, g, str(work), str(shards_dir), len(tasks), spill_bits, unit_bytes, config, dtype.name,
                             plan_ref) for u in todo], lambda k, record: unit_done(todo[k], record))
    phase("shards")
    shuffles = [units[u]["shuffle"] for u in sorted(units)]
    report["task_peak_rss_mib"] = runner.peaks
    report["largest_unit_bytes"] = max((s["max_bucket_bytes"] for s in shuffles), default=0)
    report["unit_resplits"] = sum(s["resplits"] for s in shuffles)

    entries = [ShardEntry(**e) for split in ("train", "val") for u in sorted(units) for e in units[u][split]]
    manifest = Manifest(
        tokenizer_file=TOKENIZER_NAME,
        tokenizer_sha256=sha256_file(tokenizer_path),
        vocab_size=vocab_size,
        eos_id=eos_id,
        dtype=dtype.name,
        special_tokens={t: tokenizer.token_to_id(t) for t in SPECIAL_TOKENS},
        seed=config.seed,
        val_fraction=config.val_fraction,
        shards=entries,
        shuffle_method=SHUFFLE_KEY_SORT,
        split_by=plan.split_by,
        split_rule=plan.rule,
        added_special_tokens=added,
    )
    manifest.write(shards_dir)
    if own_work:  # else the caller removes the work folder (the runner: with .work, once stats.json is written)
        shutil.rmtree(work, ignore_errors=True)
    return manifest


def verify_run_shards(shards_dir: Path) -> Manifest:
    """Everything `schemas.shards.verify_shards` checks, plus what needs the tokenizer and pyarrow:
    the tokenizer file loads and matches the manifest (vocab size, eos id, every special token's id),
    and each shard's `.docs.parquet` has one row per document whose token count is the index's.
    Raises ShardError naming the first mismatch."""
    from tokenizers import Tokenizer

    manifest = verify_shards(shards_dir)
    tokenizer_path = Path(shards_dir) / manifest.tokenizer_file
    try:
        tokenizer = Tokenizer.from_file(str(tokenizer_path))
    except Exception as err:  # tokenizers raises its own Exception type for a malformed file
        raise ShardError(f"{tokenizer_path}: not a loadable tokenizers file: {err}") from err
    if (vocab := tokenizer.get_vocab_size(with_added_tokens=True)) != manifest.vocab_size:
        raise ShardError(f"{tokenizer_path}: vocabulary of {vocab} tokens, the manifest says {manifest.vocab_size}")
    for token, token_id in {EOS_TOKEN: manifest.eos_id, **manifest.special_tokens}.items():
        if (actual := tokenizer.token_to_id(token)) != token_id:
            raise ShardError(f"{tokenizer_path}: {token!r} is id {actual}, the manifest says {token_id}")
    for entry in manifest.shards:
        if not entry.docs_file:
            continue
        path = Path(shards_dir) / entry.docs_file
        try:
            counts = pq.read_table(path, columns=[DOC_TOKENS])[DOC_TOKENS].to_numpy()
        except (OSError, pa.ArrowException, KeyError) as err:
            raise ShardError(f"{path}: unreadable documents index: {err}") from err
        lengths = np.diff(read_shard(Path(shards_dir) / entry.file).index.astype(np.int64))
        if len(counts) != len(lengths) or not np.array_equal(counts, lengths):
            raise ShardError(f"{path}: {len(counts)} rows whose token counts differ from {entry.file}'s index "
                             f"({len(lengths)} documents)")
    return manifest
