"""Tokenized shard format and manifest: the hand-off between curation and training.

This module needs numpy and the standard library only, so the trainer can read shards on a GPU box
that has nothing but torch and numpy.

A shard file (`*.bin`) is:

    header   64 bytes, little-endian:
             magic     8 bytes  b"GRISTSHD"
             version   uint32   SHARD_VERSION
             itemsize  uint32   2 (uint16 tokens) or 4 (uint32 tokens)
             tokens    uint64   number of tokens
             docs      uint64   number of documents
             reserved  32 bytes (zero)
    tokens   `tokens` items of the dtype; each document ends with the eos token
    index    `docs + 1` uint64 token offsets (index[0] == 0, index[-1] == tokens)

`manifest.json` beside the shards names the tokenizer (file and sha256), vocab size, eos id, special
tokens, every shard with its sha256, token and document counts and its split, and how the documents
were ordered and split (`shuffle_method`, `split_by`, `split_rule`, `seed`; see pipeline/steps/token_shuffle.py).
Manifests written before those fields existed read with the values that describe them: input order,
split by a hash of the URL.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

SHARD_MAGIC = b"GRISTSHD"
SHARD_VERSION = 1
HEADER_BYTES = 64
_HEADER = struct.Struct("<8sIIQQ32x")
MANIFEST_NAME = "manifest.json"
MANIFEST_VERSION = 1

EOS_TOKEN = "<|endoftext|>"
# Typed PII placeholders, reserved as single special tokens from the first shard format on, so text
# redacted by the PII stage tokenizes to one token per placeholder. Spelled as Dolma/OLMo spell them.
PII_PLACEHOLDERS = (
    "|||EMAIL_ADDRESS|||",
    "|||PHONE_NUMBER|||",
    "|||IP_ADDRESS|||",
    "|||CREDIT_CARD|||",
    "|||IBAN_CODE|||",
    "|||US_SSN|||",
    "|||URL_CREDENTIALS|||",
    "|||CRYPTO|||",
    "|||PERSON|||",
    "|||LOCATION|||",
)
SPECIAL_TOKENS = (EOS_TOKEN, *PII_PLACEHOLDERS)

SPLITS = ("train", "val")
# How documents were ordered across the shards (Manifest.shuffle_method).
SHUFFLE_NONE = "none"  # input order (manifests from before the global shuffle)
SHUFFLE_KEY_SORT = "xxh3-key-sort/v1"  # sorted by xxh3_64(id, seed): a seeded permutation of the whole corpus
# What the train/val split hashes (Manifest.split_by).
SPLIT_BY_DOMAIN = "domain"  # registered domain of the URL (the id for a document without one)
SPLIT_BY_URL = "url"  # the document itself: its URL, or its id
SPLIT_NONE = "none"  # no val split (val_fraction 0, or a single document)

# verify_shards scans token ids in chunks of this many (a uint16 chunk is 32 MiB).
_SCAN_CHUNK_TOKENS = 1 << 24


class ShardError(ValueError):
    """A shard or manifest that does not match its declared format or checksums."""


def token_dtype(vocab_size: int) -> np.dtype:
    """uint16 while every id fits, else uint32."""
    return np.dtype(np.uint16) if vocab_size <= 65536 else np.dtype(np.uint32)


def sha256_file(path: str | os.PathLike, chunk_bytes: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


class ShardWriter:
    """Streams documents into one shard file: tokens are written as they come, the index at close.

    Writes to `PATH.tmp` and renames at close, so a shard file exists whole or not at all. Holds only
    the document lengths (8 bytes a document) in memory.
    """

    def __init__(self, path: str | os.PathLike, dtype: np.dtype):
        self.path = Path(path)
        self.dtype = np.dtype(dtype)
        self._wire = self.dtype.newbyteorder("<")
        self._tmp = Path(f"{path}.tmp")
        self._handle = open(self._tmp, "wb")
        self._handle.write(bytes(HEADER_BYTES))  # placeholder until the counts are known
        self._lengths: list[int] = []
        self.tokens = 0

    def add(self, doc: np.ndarray) -> None:
        """Append one document (a token array that already ends with eos)."""
        self._handle.write(np.ascontiguousarray(doc).astype(self._wire, copy=False).tobytes())
        self._lengths.append(len(doc))
        self.tokens += len(doc)

    @property
    def docs(self) -> int:
        return len(self._lengths)

    def close(self) -> tuple[int, int]:
        """Write the index and the header, rename into place; (token count, document count)."""
        index = np.zeros(len(self._lengths) + 1, dtype="<u8")
        np.cumsum(np.asarray(self._lengths, dtype=np.uint64), out=index[1:])
        self._handle.write(index.tobytes())
        self._handle.seek(0)
        self._handle.write(_HEADER.pack(SHARD_MAGIC, SHARD_VERSION, self.dtype.itemsize, self.tokens, self.docs))
        self._handle.close()
        os.replace(self._tmp, self.path)
        return self.tokens, self.docs


def write_shard(path: str | os.PathLike, docs: list[np.ndarray], dtype: np.dtype) -> tuple[int, int]:
    """Write documents (token arrays, each already ending with eos) as one shard.

    Written to a temporary name and renamed, so a shard file either exists whole or not at all.
    Returns (token count, document count).
    """
    writer = ShardWriter(path, dtype)
    for doc in docs:
        writer.add(doc)
    return writer.close()


@dataclass(frozen=True)
class Shard:
    """A memory-mapped shard: `tokens` (1-D array) and `index` (docs + 1 offsets)."""

    path: str
    tokens: np.ndarray
    index: np.ndarray

    @property
    def doc_count(self) -> int:
        return len(self.index) - 1

    def document(self, i: int) -> np.ndarray:
        return self.tokens[int(self.index[i]) : int(self.index[i + 1])]


def read_shard(path: str | os.PathLike) -> Shard:
    """Memory-map a shard after checking its header against its size and its index."""
    path = str(path)
    size = os.path.getsize(path)
    if size < HEADER_BYTES:
        raise ShardError(f"{path}: {size} bytes is shorter than the {HEADER_BYTES}-byte shard header")
    with open(path, "rb") as handle:
        magic, version, itemsize, n_tokens, n_docs = _HEADER.unpack(handle.read(HEADER_BYTES))
    if magic != SHARD_MAGIC:
        raise ShardError(f"{path}: not a gristmill shard (magic {magic!r}, expected {SHARD_MAGIC!r})")
    if version != SHARD_VERSION:
        raise ShardError(f"{path}: shard version {version}, this reader knows {SHARD_VERSION}")
    if itemsize not in (2, 4):
        raise ShardError(f"{path}: token item size {itemsize}, expected 2 or 4")
    expected = HEADER_BYTES + n_tokens * itemsize + (n_docs + 1) * 8
    if size != expected:
        raise ShardError(f"{path}: {size} bytes, header promises {expected} ({n_tokens} tokens, {n_docs} docs): truncated or padded")
    dtype = np.dtype("<u2" if itemsize == 2 else "<u4")
    tokens = np.memmap(path, dtype=dtype, mode="r", offset=HEADER_BYTES, shape=(n_tokens,))
    index = np.memmap(path, dtype="<u8", mode="r", offset=HEADER_BYTES + n_tokens * itemsize, shape=(n_docs + 1,))
    if n_docs and (index[0] != 0 or index[-1] != n_tokens or np.any(np.diff(index.astype(np.int64)) < 0)):
        raise ShardError(f"{path}: document index is not monotone from 0 to the token count")
    return Shard(path=path, tokens=tokens, index=index)


@dataclass
class ShardEntry:
    file: str
    split: str  # "train" or "val"
    sha256: str
    tokens: int
    docs: int
    # Parquet beside the shard: one row per document in shard order, with its provenance (id, url,
    # source file, offset, WARC-Record-ID, digest, fetch date). Read with pyarrow; the trainer ignores it.
    docs_file: str | None = None
    docs_sha256: str | None = None


@dataclass
class Manifest:
    """manifest.json: what a trainer needs to trust a folder of shards."""

    tokenizer_file: str
    tokenizer_sha256: str
    vocab_size: int
    eos_id: int
    dtype: str
    special_tokens: dict[str, int]
    seed: int
    val_fraction: float
    shards: list[ShardEntry] = field(default_factory=list)
    version: int = MANIFEST_VERSION
    # How documents were ordered and split; the defaults describe manifests written before these
    # fields: input order, split by a hash of the URL. `split_rule` says the rule in words.
    shuffle_method: str = SHUFFLE_NONE
    split_by: str = SPLIT_BY_URL
    split_rule: str = "val if xxh3_64(url or id, seed) / 2**64 < val_fraction"
    # Special tokens (eos, PII placeholders) that a given tokenizer.json lacked and gristmill added to
    # the saved copy; empty for a tokenizer trained by the run (they are reserved there from the start).
    added_special_tokens: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    def write(self, directory: str | os.PathLike) -> Path:
        path = Path(directory) / MANIFEST_NAME
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(self.to_json())
        os.replace(tmp, path)
        return path

    @classmethod
    def read(cls, directory: str | os.PathLike) -> "Manifest":
        path = Path(directory) / MANIFEST_NAME
        if not path.exists():
            raise ShardError(f"{directory}: no {MANIFEST_NAME}; is this a gristmill shards folder?")
        try:
            raw = json.loads(path.read_text())
            raw["shards"] = [ShardEntry(**s) for s in raw["shards"]]
            manifest = cls(**raw)
        except (ValueError, TypeError, KeyError) as err:
            raise ShardError(f"{path}: unreadable manifest: {err}") from err
        if manifest.version != MANIFEST_VERSION:
            raise ShardError(f"{path}: manifest version {manifest.version}, this reader knows {MANIFEST_VERSION}")
        return manifest

    def split_files(self, split: str) -> list[str]:
        return [s.file for s in self.shards if s.split == split]

    def split_totals(self) -> dict[str, dict[str, int]]:
        """{split: {"shards", "tokens", "docs"}} for train and val (zeros for an empty split)."""
        totals = {split: {"shards": 0, "tokens": 0, "docs": 0} for split in SPLITS}
        for entry in self.shards:
            row = totals.setdefault(entry.split, {"shards": 0, "tokens": 0, "docs": 0})
            row["shards"] += 1
            row["tokens"] += entry.tokens
            row["docs"] += entry.docs
        return totals


def check_shard_contents(shard: Shard, vocab_size: int, eos_id: int) -> None:
    """Every document is non-empty and ends with eos, and every token id is below vocab_size."""
    if not shard.doc_count:
        return
    ends = shard.index[1:].astype(np.int64)
    if np.any(np.diff(shard.index.astype(np.int64)) < 1):
        raise ShardError(f"{shard.path}: an empty document in the index (every document holds at least its eos)")
    not_eos = np.flatnonzero(shard.tokens[ends - 1] != eos_id)
    if len(not_eos):
        raise ShardError(f"{shard.path}: document {int(not_eos[0])} does not end with the eos token {eos_id} "
                         f"({len(not_eos)} such documents)")
    for begin in range(0, len(shard.tokens), _SCAN_CHUNK_TOKENS):
        top = int(shard.tokens[begin : begin + _SCAN_CHUNK_TOKENS].max())
        if top >= vocab_size:
            raise ShardError(f"{shard.path}: token id {top} is outside the manifest's vocabulary of {vocab_size}")


def verify_shards(directory: str | os.PathLike) -> Manifest:
    """Check the tokenizer and every shard against the manifest; raise ShardError naming what differs.

    Per shard: the file exists, its sha256, its header against its size and its index, its counts and
    dtype against the manifest, every document ending with eos and every id inside the vocabulary,
    and the sha256 of its documents index.
    """
    directory = Path(directory)
    manifest = Manifest.read(directory)
    tokenizer_path = directory / manifest.tokenizer_file
    if not tokenizer_path.exists():
        raise ShardError(f"{tokenizer_path}: tokenizer named in the manifest is missing")
    if (actual := sha256_file(tokenizer_path)) != manifest.tokenizer_sha256:
        raise ShardError(f"{tokenizer_path}: sha256 {actual} differs from the manifest's {manifest.tokenizer_sha256}")
    seen: set[str] = set()
    for entry in manifest.shards:
        path = directory / entry.file
        if entry.split not in SPLITS:
            raise ShardError(f"{path}: split {entry.split!r} in the manifest; expected one of {', '.join(SPLITS)}")
        if entry.file in seen:
            raise ShardError(f"{path}: listed twice in the manifest")
        seen.add(entry.file)
        if not path.exists():
            raise ShardError(f"{path}: shard listed in the manifest is missing")
        if (actual := sha256_file(path)) != entry.sha256:
            raise ShardError(f"{path}: sha256 {actual} differs from the manifest's {entry.sha256}")
        shard = read_shard(path)
        if len(shard.tokens) != entry.tokens or shard.doc_count != entry.docs:
            raise ShardError(f"{path}: {len(shard.tokens)} tokens / {shard.doc_count} docs, manifest says {entry.tokens} / {entry.docs}")
        if shard.tokens.dtype.name != np.dtype(manifest.dtype).name:
            raise ShardError(f"{path}: token dtype {shard.tokens.dtype} differs from the manifest's {manifest.dtype}")
        check_shard_contents(shard, manifest.vocab_size, manifest.eos_id)
        if entry.docs_file:
            if not (directory / entry.docs_file).exists():
                raise ShardError(f"{directory / entry.docs_file}: documents index listed in the manifest is missing")
            if sha256_file(directory / entry.docs_file) != entry.docs_sha256:
                raise ShardError(f"{directory / entry.docs_file}: sha256 differs from the manifest's {entry.docs_sha256}")
    return manifest
