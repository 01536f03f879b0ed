"""Tokenization into shards: trained or given tokenizer, PII placeholders as single tokens, the global
shuffle (seeded, deterministic, every document once, independent of the memory bound) and the
domain-level train/val split."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from gristmill.pipeline.steps.token_shuffle import registered_domain
from gristmill.pipeline.steps.tokenize import tokenize_run
from gristmill.schemas import columns as C
from gristmill.schemas.job import TokenizeConfig
from gristmill.schemas.shards import PII_PLACEHOLDERS, SHUFFLE_KEY_SORT, read_shard, verify_shards
from support.curated import web_rows, write_curated


@pytest.fixture(autouse=True)
def _ray(ray_local):
    """tokenize_run's steps are Ray tasks."""


TEXTS = [
    f"Document {i}: the miller ground {i * 3} sacks of wheat and wrote to |||EMAIL_ADDRESS||| about the river. "
    "The water was high this spring, and the wheel turned day and night." * 3
    for i in range(40)
]
def _curated(folder):
    return write_curated(folder, [{C.ID: f"{i:04d}", C.URL: f"http://mill.test/{i}", C.TEXT: t} for i, t in enumerate(TEXTS)])


def shard_documents(shards_dir: Path):
    """[(split, shard file, position, id, url, tokens)] over the manifest's shards, in order."""
    manifest = verify_shards(shards_dir)
    out = []
    for entry in manifest.shards:
        shard = read_shard(shards_dir / entry.file)
        docs = pq.read_table(shards_dir / entry.docs_file).to_pylist()
        assert len(docs) == shard.doc_count
        for i, row in enumerate(docs):
            out.append((entry.split, entry.file, i, row[C.ID], row[C.URL], shard.document(i).tolist()))
    return manifest, out


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


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
    assert not (tmp_path / "a" / ".shuffle").exists()  # the spill folder goes


def test_given_tokenizer_gets_missing_placeholders(tmp_path, shared_data):
    tokenizer_file = shared_data / "tokenizer-gpt2-bpe" / "gpt-neox-20b-olmo-tokenizer.json"
    curated = _curated(tmp_path)
    manifest = tokenize_run(curated, tmp_path / "shards", TokenizeConfig(tokenizer_file=str(tokenizer_file), val_fraction=0))
    # OLMo's tokenizer already has three placeholders; the others are added as special tokens.
    assert manifest.special_tokens["|||EMAIL_ADDRESS|||"] < 50280 <= manifest.special_tokens["|||CREDIT_CARD|||"]
    assert manifest.dtype == "uint16" and manifest.eos_id == 50279  # the file's own <|endoftext|>, not an added one
    assert manifest.split_by == "none" and {s.split for s in manifest.shards} == {"train"}
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(tmp_path / "shards" / "tokenizer.json"))
    _, docs = shard_documents(tmp_path / "shards")
    by_id = {doc_id: tokenizer.decode(tokens[:-1], skip_special_tokens=False) for _, _, _, doc_id, _, tokens in docs}
    assert by_id == {f"{i:04d}": t for i, t in enumerate(TEXTS)}


def test_empty_curated_set_gives_an_empty_manifest(tmp_path):
    (tmp_path / "curated").mkdir()
    manifest = tokenize_run(tmp_path / "curated", tmp_path / "shards", TokenizeConfig())
    assert manifest.shards == [] and verify_shards(tmp_path / "shards")


@pytest.fixture(scope="module")
def web_curated(tmp_path_factory):
    folder = tmp_path_factory.mktemp("web")
    rows = web_rows()
    return write_curated(folder, rows, files=3), rows


def test_global_shuffle_is_seeded_and_keeps_every_document_once(web_curated, tmp_path):
    curated, rows = web_curated
    config = TokenizeConfig(vocab_size=400, shard_tokens=1500, val_fraction=0.1, seed=3)
    manifest = tokenize_run(curated, tmp_path / "a", config)
    _, docs = shard_documents(tmp_path / "a")
    input_ids = [r[C.ID] for r in rows]
    assert sorted(d[3] for d in docs) == sorted(input_ids)  # every document exactly once, over both splits
    train_order = [d[3] for d in docs if d[0] == "train"]
    assert train_order != [i for i in input_ids if i in set(train_order)]  # not the input order
    # Documents move across shards and curated files: the first train shard mixes all three input files.
    first_shard = {d[3] for d in docs if d[1] == manifest.split_files("train")[0]}
    thirds = [set(input_ids[k * len(rows) // 3 : (k + 1) * len(rows) // 3]) for k in range(3)]
    assert all(first_shard & third for third in thirds)
    assert manifest.shuffle_method == SHUFFLE_KEY_SORT and manifest.seed == 3

    again = tokenize_run(curated, tmp_path / "b", config)
    assert _files(tmp_path / "a") == _files(tmp_path / "b") and again.to_json() == manifest.to_json()
    other = tokenize_run(curated, tmp_path / "c", config.model_copy(update={"seed": 4}))
    _, other_docs = shard_documents(tmp_path / "c")
    assert [d[3] for d in other_docs if d[0] == "train"] != train_order
    assert sorted(d[3] for d in other_docs) == sorted(input_ids)
    assert other.seed == 4


def test_shards_do_not_depend_on_the_shuffle_memory_bound(web_curated, tmp_path):
    curated, _ = web_curated
    config = TokenizeConfig(vocab_size=400, shard_tokens=1500, val_fraction=0.1)
    big, small = {}, {}
    tokenize_run(curated, tmp_path / "big", config, report=big)
    # 4 KiB buckets: each unit task re-partitions its documents on disk and holds one 4 KiB bucket at a
    # time (the encode tasks flush at 2 KiB); the shards are the same bytes.
    tokenize_run(curated, tmp_path / "small", config.model_copy(update={"shuffle_bucket_bytes": 4096}), report=small)
    assert _files(tmp_path / "big") == _files(tmp_path / "small")
    assert big["unit_resplits"] == 0 and small["unit_resplits"] > 0
    assert 0 < small["largest_unit_bytes"] <= 4096 < big["largest_unit_bytes"]


def test_split_keeps_each_registered_domain_on_one_side(web_curated, tmp_path):
    curated, rows = web_curated
    manifest = tokenize_run(curated, tmp_path / "s", TokenizeConfig(vocab_size=400, shard_tokens=1500, val_fraction=0.2))
    assert manifest.split_by == "domain" and "registered domain" in manifest.split_rule
    _, docs = shard_documents(tmp_path / "s")
    sides: dict[str, set[str]] = {}
    for split, _, _, doc_id, url, _ in docs:
        sides.setdefault(registered_domain(url) or doc_id, set()).add(split)
    assert all(len(s) == 1 for s in sides.values()), {d: s for d, s in sides.items() if len(s) > 1}
    val_docs = sum(1 for d in docs if d[0] == "val")
    assert 0 < val_docs <= 0.2 * len(rows)  # whole sites, within the budget
    # www., blog. and the bare host of one site are one unit.
    assert len({registered_domain(r[C.URL]) for r in rows if r[C.URL]}) == 24


def test_split_by_url_when_asked(web_curated, tmp_path):
    curated, rows = web_curated
    manifest = tokenize_run(curated, tmp_path / "u", TokenizeConfig(vocab_size=400, val_fraction=0.2, split_by="url"))
    assert manifest.split_by == "url"
    val_docs = sum(s.docs for s in manifest.shards if s.split == "val")
    assert val_docs == int(0.2 * len(rows))  # one-document units fill the budget exactly


def test_a_literal_eos_string_in_a_page_is_text_not_a_document_boundary(tmp_path):
    text = 'GPT-2 ends each document with "<|endoftext|>"; so do we.<|endoftext|>'
    rows = [{C.ID: "eos", C.URL: "http://mill.test/eos", C.TEXT: text},
            {C.ID: "plain", C.URL: "http://mill.test/plain", C.TEXT: "A plain page about millstones."}]
    manifest = tokenize_run(write_curated(tmp_path, rows), tmp_path / "shards",
                            TokenizeConfig(vocab_size=300, val_fraction=0))
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(tmp_path / "shards" / "tokenizer.json"))
    _, docs = shard_documents(tmp_path / "shards")
    by_id = {doc_id: tokens for _, _, _, doc_id, _, tokens in docs}
    assert [tokens.count(manifest.eos_id) for tokens in by_id.values()] == [1, 1]  # only the separator
    assert all(tokens[-1] == manifest.eos_id for tokens in by_id.values())
    assert tokenizer.decode(by_id["eos"][:-1], skip_special_tokens=False) == text


# --- the distributed step: workers, part layout, the tokenizer sample ---------------------------------------


def _exchange_config(**changes) -> TokenizeConfig:
    # 1 KB of text per encode task: a task per row group; shard_tokens 1024: several shard units.
    return TokenizeConfig(vocab_size=400, shard_tokens=1024, val_fraction=0.1, encode_task_bytes=1024, **changes)


def test_shards_are_byte_identical_with_one_and_two_workers_and_any_part_layout(tmp_path):
    rows = web_rows(n_sites=90)
    one_part, six_parts = write_curated(tmp_path / "one", rows), write_curated(tmp_path / "six", rows, files=6)
    reports = {}
    for name, curated, workers in (("w1", six_parts, 1), ("w2", six_parts, 2), ("layout", one_part, 2)):
        reports[name] = {}
        tokenize_run(curated, tmp_path / name, _exchange_config(), workers=workers, report=reports[name])
    assert _files(tmp_path / "w1") == _files(tmp_path / "w2") == _files(tmp_path / "layout")
    report = reports["w2"]
    # The exchange really ran in pieces: six encode tasks, several shard units, one global document order.
    assert report["workers"] == 2 and report["encode_tasks"] == 6 and report["units"] >= 4, report
    assert reports["w1"]["workers"] == 1 and reports["layout"]["encode_tasks"] == 1
    manifest, docs = shard_documents(tmp_path / "w2")
    units = {entry.file.split("-")[1] for entry in manifest.shards}
    assert len(units) == report["units"]
    train = [d for d in docs if d[0] == "train"]
    from gristmill.pipeline.steps.token_shuffle import shuffle_key

    keys = [shuffle_key(d[3], 0) for d in train]
    assert keys == sorted(keys) and len(docs) == len(rows)  # the train shards, in manifest order: key order
    assert not (tmp_path / "w2-tokenize-work").exists()


def test_the_tokenizer_sample_is_bounded_and_independent_of_the_part_layout(tmp_path):
    rows = web_rows(n_sites=40)
    total = sum(len(r[C.TEXT].encode()) for r in rows)
    config = _exchange_config(tokenizer_sample_bytes=total // 3)
    reports = {"one": {}, "six": {}, "whole": {}}
    tokenize_run(write_curated(tmp_path / "a", rows), tmp_path / "one", config, report=reports["one"])
    tokenize_run(write_curated(tmp_path / "b", rows, files=6), tmp_path / "six", config, report=reports["six"])
    tokenize_run(tmp_path / "a" / "curated", tmp_path / "whole", _exchange_config(), report=reports["whole"])
    sample = reports["one"]["sample"]
    assert sample == reports["six"]["sample"] and sample["text_bytes"] == total
    assert 0.2 * total < sample["sample_bytes"] <= total // 3  # the bound, filled to within a bin
    assert reports["whole"]["sample"]["sample_bytes"] == total  # under the bound: every document
    tokenizer = {name: (tmp_path / name / "tokenizer.json").read_bytes() for name in ("one", "six", "whole")}
    assert tokenizer["one"] == tokenizer["six"] != tokenizer["whole"]
    assert _files(tmp_path / "one") == _files(tmp_path / "six")


def test_a_rerun_resumes_from_the_step_records_and_redoes_a_torn_unit(tmp_path):
    """The work folder survives an interrupted step: a rerun keeps the tokenizer and the encode records,
    redoes a unit whose record is missing (its stale shards deleted first) and writes the clean bytes."""
    rows = web_rows(n_sites=90)
    curated = write_curated(tmp_path, rows, files=3)
    tokenize_run(curated, tmp_path / "clean", _exchange_config())
    work = tmp_path / "work"
    tokenize_run(curated, tmp_path / "shards", _exchange_config(), work=work)
    units = sorted((work / "units").glob("*.json"))
    assert len(units) >= 4
    # Break it as a kill would: a unit's record gone and one of its shards cut short; the manifest gone.
    torn = units[1].stem
    units[1].unlink()
    shard = next((tmp_path / "shards").glob(f"train-{torn}-*.bin"))
    shard.write_bytes(shard.read_bytes()[:10])
    (tmp_path / "shards" / "manifest.json").unlink()
    report = {}
    tokenize_run(curated, tmp_path / "shards", _exchange_config(), work=work, report=report)
    # The tokenizer and every encode task were kept; one unit was redone.
    assert "sample" not in report and "train" not in report["seconds"]
    assert report["encode_tasks_run"] == 0 and report["units_run"] == 1
    assert _files(tmp_path / "shards") == _files(tmp_path / "clean")


def test_encode_tasks_are_capped_and_the_shards_do_not_change(tmp_path, monkeypatch):
    """Past MAX_ENCODE_TASKS, consecutive encode tasks merge (fewer spill files for every unit to read);
    the shards are the same bytes."""
    from gristmill.pipeline.steps import tokenize as T

    curated = write_curated(tmp_path, web_rows(n_sites=40), files=6)
    report = {}
    tokenize_run(curated, tmp_path / "many", _exchange_config(), report=report)
    monkeypatch.setattr(T, "MAX_ENCODE_TASKS", 2)
    capped = {}
    tokenize_run(curated, tmp_path / "few", _exchange_config(), report=capped)
    assert report["encode_tasks"] == 6 and capped["encode_tasks"] == 2
    assert _files(tmp_path / "many") == _files(tmp_path / "few")
