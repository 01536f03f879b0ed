"""Export a verified shards folder to the formats other trainers read: Megatron-LM and datatrove.

Both keep gristmill's order (train and val apart, the global shuffle inside each) and its tokens as
they are: the token bytes are copied, never re-encoded, so an export holds exactly the shards' tokens.
Each export also gets the tokenizer and an `export.json` naming the source manifest and the files.

Megatron-LM (`megatron/core/datasets/indexed_dataset.py`, the "MMIDIDX" indexed dataset): per split a
prefix `OUT/train` with
    OUT/train.bin   the tokens of every document, one after the other, no header
    OUT/train.idx   b"MMIDIDX\\x00\\x00" | uint64 version 1 | uint8 dtype code | uint64 sequence count S |
                    uint64 document-index length D | int32 sequence lengths [S] |
                    int64 sequence byte offsets into .bin [S] | int64 document index [D]
                    (all little-endian). One sequence per document, so D = S + 1 and the document index
                    is 0, 1, ..., S. Dtype codes: 8 uint16, 4 int32 (Megatron has no uint32; ids are
                    below 2**31, so uint32 token bytes are the same int32 bytes).
Train with `--train-data-path OUT/train --valid-data-path OUT/val` (or `--data-path OUT/train`).

datatrove (`pipeline/tokens/tokenizer.py` TokenizedFile, read by `utils/dataset.py`
DatatroveFolderDataset): per gristmill shard, in a folder per split, `OUT/train/train-00000.ds` with
    .ds           the tokens, little-endian uint16 (token_size 2) or uint32 (token_size 4), no header
    .ds.index     uint64 end offset (in tokens) of every document, no leading 0, no count
    .ds.metadata  text: "TOKENIZER|TOKEN_SIZE", the token count, the count in words (humanize)
File names sort in manifest order, which is the order DatatroveFolderDataset reads them.
"""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

import numpy as np

from gristmill.pipeline.steps.tokenize import verify_run_shards
from gristmill.schemas.shards import HEADER_BYTES, MANIFEST_NAME, SPLITS, Manifest, read_shard, sha256_file

FORMATS = ("megatron", "datatrove")
EXPORT_MANIFEST = "export.json"
MEGATRON_INDEX_HEADER = b"MMIDIDX\x00\x00"
MEGATRON_VERSION = 1
# Megatron's DType codes for the token dtypes gristmill writes.
MEGATRON_DTYPE_CODES = {"uint16": 8, "uint32": 4}  # uint32 tokens are written as int32 (code 4)
_COPY_BYTES = 64 << 20
_INDEX_CHUNK = 1 << 20


class ExportError(ValueError):
    """An export that cannot be made (unknown format, output folder inside the shards folder)."""


def _copy_tokens(shard_path: Path, n_tokens: int, itemsize: int, out) -> None:
    """Stream the token bytes of a shard into the open file `out`."""
    remaining = n_tokens * itemsize
    with open(shard_path, "rb") as handle:
        handle.seek(HEADER_BYTES)
        while remaining:
            chunk = handle.read(min(_COPY_BYTES, remaining))
            if not chunk:
                raise OSError(f"{shard_path}: ended {remaining} bytes early while copying tokens")
            out.write(chunk)
            remaining -= len(chunk)


def _write_megatron_split(shards_dir: Path, manifest: Manifest, split: str, prefix: Path) -> dict:
    entries = [e for e in manifest.shards if e.split == split]
    itemsize = np.dtype(manifest.dtype).itemsize
    n_docs = sum(e.docs for e in entries)
    with open(f"{prefix}.bin", "wb") as out:
        for entry in entries:
            _copy_tokens(shards_dir / entry.file, entry.tokens, itemsize, out)
    with open(f"{prefix}.idx", "wb") as out:
        out.write(MEGATRON_INDEX_HEADER)
        out.write(struct.pack("<Q", MEGATRON_VERSION))
        out.write(struct.pack("<B", MEGATRON_DTYPE_CODES[manifest.dtype]))
        out.write(struct.pack("<Q", n_docs))
        out.write(struct.pack("<Q", n_docs + 1))
        # Three streaming passes over the shards' indexes: lengths, then byte offsets, then documents.
        for entry in entries:
            lengths = np.diff(read_shard(shards_dir / entry.file).index.astype(np.int64))
            if len(lengths) and lengths.max() >= 2**31:
                raise ExportError(f"{entry.file}: a document of {lengths.max()} tokens does not fit Megatron's int32 lengths")
            out.write(lengths.astype("<i4").tobytes())
        base = 0
        for entry in entries:
            starts = read_shard(shards_dir / entry.file).index[:-1].astype(np.int64)
            out.write(((starts + base) * itemsize).astype("<i8").tobytes())
            base += entry.tokens
        for begin in range(0, n_docs + 1, _INDEX_CHUNK):
            out.write(np.arange(begin, min(begin + _INDEX_CHUNK, n_docs + 1), dtype="<i8").tobytes())
    return {"prefix": prefix.name, "bin": f"{prefix.name}.bin", "idx": f"{prefix.name}.idx",
            "documents": n_docs, "tokens": sum(e.tokens for e in entries)}


def _write_datatrove_split(shards_dir: Path, manifest: Manifest, split: str, folder: Path, tokenizer_name: str) -> dict:
    import humanize

    itemsize = np.dtype(manifest.dtype).itemsize
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for i, entry in enumerate(e for e in manifest.shards if e.split == split):
        name = f"{split}-{i:05d}.ds"
        with open(folder / name, "wb") as out:
            _copy_tokens(shards_dir / entry.file, entry.tokens, itemsize, out)
        ends = read_shard(shards_dir / entry.file).index[1:]
        (folder / f"{name}.index").write_bytes(np.asarray(ends, dtype="<u8").tobytes())
        (folder / f"{name}.metadata").write_text(
            "\n".join([f"{tokenizer_name}|{itemsize}", str(entry.tokens), humanize.metric(entry.tokens, unit="T")]))
        files.append({"file": f"{split}/{name}", "source": entry.file, "documents": entry.docs, "tokens": entry.tokens})
    return {"folder": split, "token_size": itemsize, "files": files}


def export_shards(shards_dir: str | Path, out_dir: str | Path, fmt: str) -> dict:
    """Verify `shards_dir` (ShardError if it does not check out), then write it to `out_dir` in `fmt`.

    Returns the contents of the `export.json` written beside the export.
    """
    shards_dir, out_dir = Path(shards_dir).resolve(), Path(out_dir).resolve()
    if fmt not in FORMATS:
        raise ExportError(f"unknown export format {fmt!r}; expected one of {', '.join(FORMATS)}")
    if out_dir == shards_dir or shards_dir in out_dir.parents:
        raise ExportError(f"{out_dir}: the export folder must be outside the shards folder {shards_dir}")
    manifest = verify_run_shards(shards_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = out_dir / "tokenizer.json"
    shutil.copyfile(shards_dir / manifest.tokenizer_file, tokenizer)
    splits = {}
    for split in SPLITS:
        if not any(e.split == split for e in manifest.shards):
            continue
        if fmt == "megatron":
            splits[split] = _write_megatron_split(shards_dir, manifest, split, out_dir / split)
        else:
            splits[split] = _write_datatrove_split(shards_dir, manifest, split, out_dir / split, str(tokenizer))
    summary = {
        "format": fmt,
        "source": str(shards_dir),
        "source_manifest_sha256": sha256_file(shards_dir / MANIFEST_NAME),
        "tokenizer": tokenizer.name,
        "tokenizer_sha256": manifest.tokenizer_sha256,
        "vocab_size": manifest.vocab_size,
        "eos_id": manifest.eos_id,
        "dtype": manifest.dtype,
        "seed": manifest.seed,
        "shuffle_method": manifest.shuffle_method,
        "split_by": manifest.split_by,
        "splits": splits,
    }
    (out_dir / EXPORT_MANIFEST).write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return summary
