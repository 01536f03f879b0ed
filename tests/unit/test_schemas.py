"""Contracts in schemas/: job validation, the reason registry, stats that add, the ledger, shards."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import yaml

from gristmill.schemas import reasons as R
from gristmill.schemas.job import JobError, load_job
from gristmill.schemas.shards import (
    Manifest, ShardEntry, ShardError, read_shard, sha256_file, verify_shards, write_shard,
)
from gristmill.schemas.stats import Ledger, LedgerError, StageStats

from support.repo import REPO


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
    """Tests run the deterministic twin (it `extends:` the quickstart); it must stay the README's main job in
    every other respect, so it may set nothing but its name, input and output."""
    quick, archive = (load_job(REPO / "jobs" / name).model_dump() for name in ("quickstart.yaml", "demo-archive.yaml"))
    for key in ("name", "sources", "output"):
        quick.pop(key), archive.pop(key)
    assert quick == archive


@pytest.mark.parametrize("name", ["quickstart", "demo-archive"])
def test_shipped_jobs_resolve_to_the_job_they_always_were(name):
    """The resolved jobs as the files gave them before they stated only what differs from the defaults
    (frozen from the old files): the same job.resolved.yaml, so every run's outputs are the same bytes."""
    expected = (REPO / "tests" / "data" / "jobs" / f"{name}.resolved.yaml").read_text().replace("REPO", str(REPO))
    assert load_job(REPO / "jobs" / f"{name}.yaml").to_yaml() == expected


def _write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_extends_merges_mappings_and_the_extending_file_wins(tmp_path):
    _write(tmp_path / "base" / "base.yaml", (
        "name: base\nsources: [{paths: [in/*.warc.gz]}]\nbatch_size: 8\n"
        "tokenize: {vocab_size: 1024, shard_tokens: 5000, tokenizer_file: tok.json}\n"
        "language: {keep: [en, de], min_score: 0.5}\ntoxicity: {max_score: 0.3}\n"))
    child = _write(tmp_path / "jobs" / "child.yaml", (
        "extends: ../base/base.yaml\nname: child\ntokenize: {shard_tokens: 7000}\n"
        "language: {keep: [fr]}\ntoxicity: null\nquality: {c4_bad_words_file: words.txt}\n"))
    job = load_job(child)
    assert (job.name, job.batch_size) == ("child", 8)
    assert (job.tokenize.vocab_size, job.tokenize.shard_tokens) == (1024, 7000)  # mappings merge key by key
    assert (job.language.keep, job.language.min_score) == (["fr"], 0.5)        # a list is replaced, not joined
    assert job.toxicity is None                                                  # null replaces a section
    # Each file's relative paths resolve against its own folder.
    assert job.sources[0].paths == [str(tmp_path / "base" / "in" / "*.warc.gz")]
    assert job.tokenize.tokenizer_file == str(tmp_path / "base" / "tok.json")
    assert job.quality.c4_bad_words_file == str(tmp_path / "jobs" / "words.txt")
    assert "extends" not in yaml.safe_load(job.to_yaml())


def test_extends_chains_and_refuses_a_cycle_naming_the_files(tmp_path):
    _write(tmp_path / "a.yaml", "name: a\nsources: [{paths: [x.warc]}]\nbatch_size: 2\n")
    _write(tmp_path / "b.yaml", "extends: a.yaml\nname: b\n")
    assert load_job(_write(tmp_path / "c.yaml", "extends: b.yaml\nname: c\n")).batch_size == 2
    _write(tmp_path / "a.yaml", "extends: c.yaml\nname: a\nsources: [{paths: [x.warc]}]\n")
    with pytest.raises(JobError, match="cycle") as err:
        load_job(tmp_path / "c.yaml")
    assert all(str(tmp_path / name) in str(err.value) for name in ("a.yaml", "b.yaml", "c.yaml"))
    with pytest.raises(JobError, match="cycle"):
        load_job(_write(tmp_path / "self.yaml", "extends: self.yaml\nname: s\n"))


def test_extends_errors_name_the_file_that_wrote_the_key(tmp_path):
    _write(tmp_path / "base.yaml", "name: base\nsources: [{paths: [x.warc]}]\nquality: {min_wrods: 3}\n")
    child = _write(tmp_path / "child.yaml", "extends: base.yaml\nname: child\nextract: {timeout_s: -1}\n")
    with pytest.raises(JobError) as err:
        load_job(child)
    assert f"{tmp_path / 'base.yaml'}: quality.min_wrods: unknown key" in str(err.value)
    assert f"{child}: extract.timeout_s" in str(err.value)
    with pytest.raises(JobError, match="missing.yaml: cannot read job file"):
        load_job(_write(tmp_path / "orphan.yaml", "extends: missing.yaml\nname: o\n"))
    with pytest.raises(JobError, match="extends: a job file path"):
        load_job(_write(tmp_path / "odd.yaml", "extends: [base.yaml]\nname: o\n"))
