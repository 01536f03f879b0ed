"""Tokenize the curated documents into shards (`schemas.shards` format) with a manifest.

Global step, run once after the writers. Phases:
  1. tokenizer: train a byte-level BPE on the curated text (a first read) unless the job names one;
  2. spill: read the curated Parquet in order, encode in batches, end each document with eos, and
     spill it to its shuffle bucket (pipeline/shuffle.py), counting documents per split unit;
  3. split: choose the val units (whole registered domains, see pipeline/shuffle.py) from those counts;
  4. write: take the documents in global shuffle order, one bucket in memory at a time, route each to
     its split, and cut `train-NNNNN.bin` / `val-NNNNN.bin` shards at `shard_tokens`, each with a
     `.docs.parquet` of its documents' provenance in shard order.
Same curated input and job -> byte-identical shards, whatever the memory bound.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from gristmill.pipeline.faults import fault_point
from gristmill.pipeline.parquet_read import batches
from gristmill.pipeline.shuffle import GlobalShuffle, plan_split
from gristmill.schemas import columns as C
from gristmill.schemas.job import TokenizeConfig
from gristmill.schemas.shards import (
    EOS_TOKEN, SHUFFLE_KEY_SORT, SPECIAL_TOKENS, Manifest, ShardEntry, ShardError, ShardWriter, read_shard,
    sha256_file, token_dtype, verify_shards,
)

TOKENIZER_NAME = "tokenizer.json"
DOC_TOKENS = "tokens"
_DOCS_SCHEMA = pa.schema([*C.schema_of(C.PROVENANCE_COLUMNS), pa.field(DOC_TOKENS, pa.int64())])
_ENCODE_BATCH = 256


def iter_curated(curated_dir: Path, columns: list[str], batch_rows: int = 1024) -> Iterator[dict]:
    for path in sorted(curated_dir.glob("part-*.parquet")):
        for batch in batches(path, batch_rows, columns):
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
    """One split's shards: documents stream into the open shard, which closes at `shard_tokens`."""

    def __init__(self, folder: Path, split: str, shard_tokens: int, dtype: np.dtype):
        self.folder, self.split, self.shard_tokens, self.dtype = folder, split, shard_tokens, dtype
        self.writer: ShardWriter | None = None
        self.provenance: list[dict] = []
        self.entries: list[ShardEntry] = []

    def _name(self) -> str:
        return f"{self.split}-{len(self.entries):05d}"

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
        fault_point("tokenize:shard")  # test-only fault injection (pipeline/faults.py)


def _expected_spill_bytes(curated_dir: Path, itemsize: int) -> int:
    """A cheap estimate of the shuffle's spill from the curated Parquet footers: about one token per
    two bytes of text is generous for a BPE, plus the provenance."""
    text_bytes = rows = 0
    for path in sorted(curated_dir.glob("part-*.parquet")):
        meta = pq.ParquetFile(path).metadata
        rows += meta.num_rows
        for g in range(meta.num_row_groups):
            group = meta.row_group(g)
            for c in range(group.num_columns):
                if group.column(c).path_in_schema == C.TEXT:
                    text_bytes += group.column(c).total_uncompressed_size
    return text_bytes // 2 * itemsize + rows * 256


def tokenize_run(curated_dir: Path, shards_dir: Path, config: TokenizeConfig) -> Manifest:
    """Replace `shards_dir` with the shards of the curated documents (the phases of the module docstring)."""
    if shards_dir.exists():
        shutil.rmtree(shards_dir)
    shards_dir.mkdir(parents=True)
    added: list[str] = []
    if config.tokenizer_file:
        tokenizer, added = load_tokenizer_with_added(config.tokenizer_file)
    else:
        texts = (t for batch in iter_curated(curated_dir, [C.TEXT]) for t in batch[C.TEXT])
        tokenizer = train_tokenizer(texts, config.vocab_size)
    check_placeholders(tokenizer)
    tokenizer_path = shards_dir / TOKENIZER_NAME
    tokenizer.save(str(tokenizer_path))
    vocab_size = tokenizer.get_vocab_size(with_added_tokens=True)
    eos_id = tokenizer.token_to_id(EOS_TOKEN)
    dtype = token_dtype(vocab_size)

    with GlobalShuffle(shards_dir / ".shuffle", config.seed, dtype, config.shuffle_bucket_bytes,
                       expected_bytes=_expected_spill_bytes(curated_dir, dtype.itemsize)) as shuffle:
        for batch in iter_curated(curated_dir, [*C.PROVENANCE_COLUMNS, C.TEXT], batch_rows=_ENCODE_BATCH):
            docs = [np.append(ids, eos_id).astype(dtype) for ids in encode_texts(tokenizer, batch[C.TEXT])]
            shuffle.add(docs, {name: batch[name] for name in C.PROVENANCE_COLUMNS})

        fault_point("tokenize:spill")  # test-only fault injection (pipeline/faults.py)
        plan = plan_split(shuffle.domain_hist, shuffle.doc_hist, config.val_fraction, config.split_by, config.seed)
        sinks = {split: _ShardSink(shards_dir, split, config.shard_tokens, dtype) for split in ("train", "val")}
        for doc in shuffle.documents():
            provenance = doc.provenance | {DOC_TOKENS: len(doc.tokens)}
            sinks["val" if plan.is_val(doc.domain_key, doc.doc_key) else "train"].add(doc.tokens, provenance)
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
        shuffle_method=SHUFFLE_KEY_SORT,
        split_by=plan.split_by,
        split_rule=plan.rule,
        added_special_tokens=added,
    )
    manifest.write(shards_dir)
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
