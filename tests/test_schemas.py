"""Contracts in schemas/: job validation, the reason registry, stats that add, the ledger, shards."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from gristmill.schemas import reasons as R
from gristmill.schemas.job import JobError, load_job
from gristmill.schemas.shards import (
    Manifest, ShardEntry, ShardError, read_shard, sha256_file, verify_shards, write_shard,
)
from gristmill.schemas.stats import Ledger, LedgerError, StageStats

from conftest import REPO


def test_demo_archive_job_loads_with_paths_resolved():
    job = load_job(REPO / "jobs" / "demo-archive.yaml")
    assert job.name == "demo-archive"
    assert all(p.startswith(str(REPO / "jobs")) for p in job.sources[0].paths)


def test_quickstart_job_is_a_demo_web_crawl():
    job = load_job(REPO / "jobs" / "quickstart.yaml")
    source = job.sources[0]
    assert (source.type, source.demo_web, source.paths) == ("crawl", True, [])


@pytest.mark.parametrize("source, message", [
    ("{type: crawl, paths: [a.warc]}", "not `paths`"),
    ("{type: crawl, crawl: {seeds: [http://x/], max_pagez: 3}}", "max_pagez"),
    ("{type: crawl}", "seeds"),
    ("{type: warc}", "needs `paths`"),
    ("{type: warc, paths: [a.warc], demo_web: true}", "belong to `type: crawl`"),
])
def test_crawl_source_settings_are_checked_when_the_job_loads(tmp_path, source, message):
    path = tmp_path / "job.yaml"
    path.write_text(f"name: x\nsources: [{source}]\n")
    with pytest.raises(JobError, match=message):
        load_job(path)


def test_unknown_key_is_named_with_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\nsources: [{paths: [a.warc]}]\nquality:\n  min_wrods: 3\n")
    with pytest.raises(JobError) as err:
        load_job(path)
    assert str(path) in str(err.value) and "quality.min_wrods: unknown key" in str(err.value)


def test_bad_value_and_bad_yaml_are_named(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\nsources: [{paths: [a.warc]}]\nextract: {timeout_s: -1}\n")
    with pytest.raises(JobError, match=r"extract\.timeout_s"):
        load_job(path)
    path.write_text("name: [unclosed\n")
    with pytest.raises(JobError, match="not valid YAML"):
        load_job(path)


def test_plugin_reasons_must_be_namespaced():
    with pytest.raises(ValueError, match="namespaced"):
        R.register("too_spammy", "myplugin", "spam")
    reason = R.register("myplugin:too_spammy", "myplugin", "spam score above threshold")
    assert R.get("myplugin:too_spammy") == reason
    with pytest.raises(KeyError):
        R.get("no_such_reason")


def test_stage_stats_sum_and_ledger_check():
    parts = [StageStats("extract", rows_in=3, rows_out=3, seconds=1.0, counts=Counter(a=1)),
             StageStats("extract", rows_in=2, rows_out=2, seconds=0.5, counts=Counter(a=2, b=1))]
    total = sum(parts, StageStats("extract"))
    assert (total.rows_in, total.seconds, total.counts) == (5, 1.5, Counter(a=3, b=1))
    with pytest.raises(ValueError):
        StageStats("extract") + StageStats("decide")
    Ledger(input=4, kept=1, dropped=Counter(x=2), quarantined=1).check(records_read=4)
    with pytest.raises(LedgerError, match="does not sum"):
        Ledger(input=5, kept=1, dropped=Counter(x=2), quarantined=1).check()
    with pytest.raises(LedgerError, match="read 6"):
        Ledger(input=4, kept=1, dropped=Counter(x=2), quarantined=1).check(records_read=6)


def _shards_folder(tmp_path):
    (tmp_path / "tokenizer.json").write_text("{}")
    docs = [np.array([5, 6, 7, 0], dtype=np.uint16), np.array([8, 0], dtype=np.uint16)]
    write_shard(tmp_path / "train-00000.bin", docs, np.uint16)
    Manifest(
        tokenizer_file="tokenizer.json", tokenizer_sha256=sha256_file(tmp_path / "tokenizer.json"), vocab_size=10,
        eos_id=0, dtype="uint16", special_tokens={"<|endoftext|>": 0}, seed=0, val_fraction=0.0,
        shards=[ShardEntry("train-00000.bin", "train", sha256_file(tmp_path / "train-00000.bin"), 6, 2)],
    ).write(tmp_path)
    return tmp_path


def test_shard_round_trip_and_verify(tmp_path):
    folder = _shards_folder(tmp_path)
    shard = read_shard(folder / "train-00000.bin")
    assert shard.document(0).tolist() == [5, 6, 7, 0] and shard.document(1).tolist() == [8, 0]
    assert verify_shards(folder).vocab_size == 10


def test_truncated_or_altered_shard_is_refused(tmp_path):
    folder = _shards_folder(tmp_path)
    path = folder / "train-00000.bin"
    data = bytearray(path.read_bytes())
    data[64] ^= 1  # first token
    path.write_bytes(bytes(data))
    with pytest.raises(ShardError, match="sha256"):
        verify_shards(folder)
    path.write_bytes(bytes(data[:-3]))
    with pytest.raises(ShardError, match="truncated"):
        read_shard(path)
    path.write_bytes(b"NOTASHRD" + bytes(100))
    with pytest.raises(ShardError, match="not a gristmill shard"):
        read_shard(path)


@pytest.mark.parametrize("path", sorted((REPO / "jobs").rglob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_job_validates(path):
    job = load_job(path)
    assert job.sources and job.name


def test_the_demo_archive_job_is_the_quickstart_on_the_archive():
    """Tests run the deterministic twin; it must stay the README's main job in every other respect."""
    quick, archive = (load_job(REPO / "jobs" / name).model_dump() for name in ("quickstart.yaml", "demo-archive.yaml"))
    for key in ("name", "sources", "output"):
        quick.pop(key), archive.pop(key)
    assert quick == archive
