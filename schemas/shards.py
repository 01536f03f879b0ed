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
tokens, and every shard with its sha256, token and document counts and its split.
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


def write_shard(path: str | os.PathLike, docs: list[np.ndarray], dtype: np.dtype) -> tuple[int, int]:
    """Write documents (token arrays, each already ending with eos) as one shard.

    Written to a temporary name and renamed, so a shard file either exists whole or not at all.
    Returns (token count, document count).
    """
    dtype = np.dtype(dtype)
    lengths = np.fromiter((len(d) for d in docs), dtype=np.uint64, count=len(docs))
    index = np.zeros(len(docs) + 1, dtype=np.uint64)
    np.cumsum(lengths, out=index[1:])
    n_tokens = int(index[-1])
    tmp = Path(f"{path}.tmp")
    with open(tmp, "wb") as handle:
        handle.write(_HEADER.pack(SHARD_MAGIC, SHARD_VERSION, dtype.itemsize, n_tokens, len(docs)))
        for doc in docs:
            handle.write(np.ascontiguousarray(doc, dtype=dtype).astype(dtype.newbyteorder("<"), copy=False).tobytes())
        handle.write(index.astype("<u8").tobytes())
    os.replace(tmp, path)
    return n_tokens, len(docs)


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


def verify_shards(directory: str | os.PathLike) -> Manifest:
    """Check the tokenizer and every shard against the manifest; raise ShardError naming what differs."""
    directory = Path(directory)
    manifest = Manifest.read(directory)
    tokenizer_path = directory / manifest.tokenizer_file
    if not tokenizer_path.exists():
        raise ShardError(f"{tokenizer_path}: tokenizer named in the manifest is missing")
    if (actual := sha256_file(tokenizer_path)) != manifest.tokenizer_sha256:
        raise ShardError(f"{tokenizer_path}: sha256 {actual} differs from the manifest's {manifest.tokenizer_sha256}")
    for entry in manifest.shards:
        path = directory / entry.file
        if not path.exists():
            raise ShardError(f"{path}: shard listed in the manifest is missing")
        if (actual := sha256_file(path)) != entry.sha256:
            raise ShardError(f"{path}: sha256 {actual} differs from the manifest's {entry.sha256}")
        shard = read_shard(path)
        if len(shard.tokens) != entry.tokens or shard.doc_count != entry.docs:
            raise ShardError(f"{path}: {len(shard.tokens)} tokens / {shard.doc_count} docs, manifest says {entry.tokens} / {entry.docs}")
        if shard.tokens.dtype.name != np.dtype(manifest.dtype).name:
            raise ShardError(f"{path}: token dtype {shard.tokens.dtype} differs from the manifest's {manifest.dtype}")
        if entry.docs_file and sha256_file(directory / entry.docs_file) != entry.docs_sha256:
            raise ShardError(f"{directory / entry.docs_file}: sha256 differs from the manifest's {entry.docs_sha256}")
    return manifest
