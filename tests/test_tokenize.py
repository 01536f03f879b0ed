"""Tokenization into shards: trained or given tokenizer, PII placeholders as single tokens, determinism."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gristmill.pipeline.tokenize import tokenize_run
from gristmill.schemas import columns as C
from gristmill.schemas.job import TokenizeConfig
from gristmill.schemas.shards import PII_PLACEHOLDERS, read_shard, verify_shards

TEXTS = [
    f"Document {i}: the miller ground {i * 3} sacks of wheat and wrote to |||EMAIL_ADDRESS||| about the river. "
    "The water was high this spring, and the wheel turned day and night." * 3
    for i in range(40)
]


def _curated(folder):
    rows = [{name: None for name in C.PROVENANCE_COLUMNS} | {C.ID: f"{i:04d}", C.URL: f"http://mill.test/{i}", C.TEXT: t}
            for i, t in enumerate(TEXTS)]
    schema = pa.schema([*C.schema_of(C.PROVENANCE_COLUMNS), pa.field(C.TEXT, C.TYPES[C.TEXT])])
    (folder / "curated").mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), folder / "curated" / "part-00000.parquet")
    return folder / "curated"


def test_trained_tokenizer_shards_round_trip_and_are_deterministic(tmp_path):
    curated = _curated(tmp_path)
    config = TokenizeConfig(vocab_size=400, shard_tokens=2000, val_fraction=0.2)
    first = tokenize_run(curated, tmp_path / "a", config)
    second = tokenize_run(curated, tmp_path / "b", config)
    assert first.to_json() == second.to_json()  # same tokenizer sha256, same shard sha256s
    assert verify_shards(tmp_path / "a").vocab_size == first.vocab_size
    assert {s.split for s in first.shards} == {"train", "val"} and len(first.shards) > 2
    assert sum(s.docs for s in first.shards) == len(TEXTS)
    assert set(first.special_tokens) >= set(PII_PLACEHOLDERS)
    email = first.special_tokens["|||EMAIL_ADDRESS|||"]
    shard = read_shard(tmp_path / "a" / first.shards[0].file)
    assert int((shard.document(0) == email).sum()) == 3  # the placeholder is one token, three times


def test_given_tokenizer_gets_missing_placeholders(tmp_path, shared_data):
    tokenizer_file = shared_data / "tokenizer-gpt2-bpe" / "gpt-neox-20b-olmo-tokenizer.json"
    curated = _curated(tmp_path)
    manifest = tokenize_run(curated, tmp_path / "shards", TokenizeConfig(tokenizer_file=str(tokenizer_file), val_fraction=0))
    # OLMo's tokenizer already has three placeholders; the others are added as special tokens.
    assert manifest.special_tokens["|||EMAIL_ADDRESS|||"] < 50280 <= manifest.special_tokens["|||CREDIT_CARD|||"]
    assert manifest.dtype == "uint16" and manifest.eos_id == 50279  # the file's own <|endoftext|>, not an added one
    shard = read_shard(tmp_path / "shards" / manifest.shards[0].file)
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(tmp_path / "shards" / "tokenizer.json"))
    assert tokenizer.decode(shard.document(0)[:-1].tolist(), skip_special_tokens=False) == TEXTS[0]


def test_empty_curated_set_gives_an_empty_manifest(tmp_path):
    (tmp_path / "curated").mkdir()
    manifest = tokenize_run(tmp_path / "curated", tmp_path / "shards", TokenizeConfig())
    assert manifest.shards == [] and verify_shards(tmp_path / "shards")
