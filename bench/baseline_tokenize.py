"""The tokenize step as it was before issue 22 (main 557a19f), kept to measure the distributed step against:
everything in one process — the BPE trained on all curated text, every document encoded, spilled to the
bucketed shuffle (pipeline/steps/token_shuffle.py, in the same process) and cut into shards. Its tokenizer encodes with
the tokenizers library's own threads (all cores), as the driver did. Not used by gristmill itself.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from gristmill.pipeline.engine.parquet_read import batches
from gristmill.pipeline.steps.token_shuffle import GlobalShuffle, plan_split
from gristmill.pipeline.steps.tokenize import _ShardSink, check_placeholders, encode_texts, train_tokenizer
from gristmill.schemas import columns as C
from gristmill.schemas.job import TokenizeConfig
from gristmill.schemas.shards import EOS_TOKEN, token_dtype


def _curated(curated_dir: Path, columns: list[str], batch_rows: int = 1024):
    for path in sorted(curated_dir.glob("part-*.parquet")):
        for batch in batches(path, batch_rows, columns):
            yield batch.to_pydict()


def _expected_spill_bytes(curated_dir: Path, itemsize: int) -> int:
    text_bytes = rows = 0
    for path in sorted(curated_dir.glob("part-*.parquet")):
        meta = pq.ParquetFile(path).metadata
        rows += meta.num_rows
        for g in range(meta.num_row_groups):
            group = meta.row_group(g)
            text_bytes += sum(group.column(c).total_uncompressed_size for c in range(group.num_columns)
                              if group.column(c).path_in_schema == C.TEXT)
    return text_bytes // 2 * itemsize + rows * 256


def baseline_tokenize(curated_dir: Path, shards_dir: Path, config: TokenizeConfig) -> dict:
    """Shards of the curated documents, one process; {tokens, documents, shards}."""
    shutil.rmtree(shards_dir, ignore_errors=True)
    shards_dir.mkdir(parents=True)
    tokenizer = train_tokenizer((t for b in _curated(curated_dir, [C.TEXT]) for t in b[C.TEXT]), config.vocab_size)
    check_placeholders(tokenizer)
    tokenizer.save(str(shards_dir / "tokenizer.json"))
    eos_id = tokenizer.token_to_id(EOS_TOKEN)
    dtype = token_dtype(tokenizer.get_vocab_size(with_added_tokens=True))
    tokens = documents = 0
    with GlobalShuffle(shards_dir / ".shuffle", config.seed, dtype, config.shuffle_bucket_bytes,
                       expected_bytes=_expected_spill_bytes(curated_dir, dtype.itemsize)) as shuffle:
        for batch in _curated(curated_dir, [*C.PROVENANCE_COLUMNS, C.TEXT], batch_rows=256):
            docs = [np.append(ids, eos_id).astype(dtype) for ids in encode_texts(tokenizer, batch[C.TEXT])]
            shuffle.add(docs, {name: batch[name] for name in C.PROVENANCE_COLUMNS})
            tokens, documents = tokens + sum(map(len, docs)), documents + len(docs)
        plan = plan_split(shuffle.domain_hist, shuffle.doc_hist, config.val_fraction, config.split_by, config.seed)
        sinks = {split: _ShardSink(shards_dir, split, 0, config.shard_tokens, dtype) for split in ("train", "val")}
        for doc in shuffle.documents():
            sinks["val" if plan.is_val(doc.domain_key, doc.doc_key) else "train"].add(
                doc.tokens, doc.provenance | {"tokens": len(doc.tokens)})
        for sink in sinks.values():
            sink.flush()
    return {"tokens": tokens, "documents": documents, "shards": sum(len(s.entries) for s in sinks.values())}
