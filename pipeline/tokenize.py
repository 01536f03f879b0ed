"""Tokenize the curated documents into shards (`schemas.shards` format) with a manifest.

Global step, run once after the writers: it needs the whole curated set to train a tokenizer when the
job names none. Documents stream from the curated Parquet in order; each goes to the train or val
split by a hash of its URL (so a rerun splits identically), is encoded in batches and ends with eos.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import xxhash

from gristmill.schemas import columns as C
from gristmill.schemas.job import TokenizeConfig
from gristmill.schemas.shards import (
    EOS_TOKEN, SPECIAL_TOKENS, Manifest, ShardEntry, sha256_file, token_dtype, write_shard,
)

TOKENIZER_NAME = "tokenizer.json"
DOC_TOKENS = "tokens"
_DOCS_SCHEMA = pa.schema([*C.schema_of(C.PROVENANCE_COLUMNS), pa.field(DOC_TOKENS, pa.int64())])
_ENCODE_BATCH = 256


def iter_curated(curated_dir: Path, columns: list[str], batch_rows: int = 1024) -> Iterator[dict]:
    for path in sorted(curated_dir.glob("part-*.parquet")):
        for batch in pq.ParquetFile(path).iter_batches(batch_size=batch_rows, columns=columns):
            yield batch.to_pydict()


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
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(path)
    missing = [t for t in SPECIAL_TOKENS if tokenizer.token_to_id(t) is None]
    if missing:
        tokenizer.add_special_tokens(missing)
    return tokenizer


def in_val_split(url: str | None, doc_id: str, val_fraction: float, seed: int) -> bool:
    key = (url or doc_id).encode("utf-8", "surrogatepass")
    return xxhash.xxh3_64_intdigest(key, seed=seed) / 2**64 < val_fraction


class _ShardSink:
    def __init__(self, folder: Path, split: str, shard_tokens: int, dtype: np.dtype):
        self.folder, self.split, self.shard_tokens, self.dtype = folder, split, shard_tokens, dtype
        self.docs: list[np.ndarray] = []
        self.provenance: list[dict] = []
        self.tokens = 0
        self.entries: list[ShardEntry] = []

    def add(self, doc: np.ndarray, provenance: dict) -> None:
        self.docs.append(doc)
        self.provenance.append(provenance)
        self.tokens += len(doc)
        if self.tokens >= self.shard_tokens:
            self.flush()

    def flush(self) -> None:
        if not self.docs:
            return
        name = f"{self.split}-{len(self.entries):05d}"
        n_tokens, n_docs = write_shard(self.folder / f"{name}.bin", self.docs, self.dtype)
        index = pa.Table.from_pylist(self.provenance, schema=_DOCS_SCHEMA)
        pq.write_table(index, self.folder / f"{name}.docs.parquet", compression="zstd")
        self.entries.append(ShardEntry(
            f"{name}.bin", self.split, sha256_file(self.folder / f"{name}.bin"), n_tokens, n_docs,
            f"{name}.docs.parquet", sha256_file(self.folder / f"{name}.docs.parquet"),
        ))
        self.docs, self.provenance, self.tokens = [], [], 0


def tokenize_run(curated_dir: Path, shards_dir: Path, config: TokenizeConfig) -> Manifest:
    if shards_dir.exists():
        shutil.rmtree(shards_dir)
    shards_dir.mkdir(parents=True)
    if config.tokenizer_file:
        tokenizer = load_tokenizer(config.tokenizer_file)
    else:
        texts = (t for batch in iter_curated(curated_dir, [C.TEXT]) for t in batch[C.TEXT])
        tokenizer = train_tokenizer(texts, config.vocab_size)
    tokenizer_path = shards_dir / TOKENIZER_NAME
    tokenizer.save(str(tokenizer_path))
    vocab_size = tokenizer.get_vocab_size(with_added_tokens=True)
    eos_id = tokenizer.token_to_id(EOS_TOKEN)
    dtype = token_dtype(vocab_size)
    sinks = {split: _ShardSink(shards_dir, split, config.shard_tokens, dtype) for split in ("train", "val")}

    for batch in iter_curated(curated_dir, [*C.PROVENANCE_COLUMNS, C.TEXT], batch_rows=_ENCODE_BATCH):
        encodings = tokenizer.encode_batch(batch[C.TEXT], add_special_tokens=False)
        for i, encoding in enumerate(encodings):
            doc = np.append(np.asarray(encoding.ids, dtype=np.int64), eos_id).astype(dtype)
            provenance = {name: batch[name][i] for name in C.PROVENANCE_COLUMNS}
            provenance[DOC_TOKENS] = len(doc)
            split = "val" if in_val_split(provenance[C.URL], provenance[C.ID], config.val_fraction, config.seed) else "train"
            sinks[split].add(doc, provenance)
    for sink in sinks.values():
        sink.flush()

    manifest = Manifest(
        tokenizer_file=TOKENIZER_NAME,
        tokenizer_sha256=sha256_file(tokenizer_path),
        vocab_size=vocab_size,
        eos_id=eos_id,
        dtype=dtype.name,
        special_tokens={t: tokenizer.token_to_id(t) for t in SPECIAL_TOKENS},
        seed=config.seed,
        val_fraction=config.val_fraction,
        shards=sinks["train"].entries + sinks["val"].entries,
    )
    manifest.write(shards_dir)
    return manifest
