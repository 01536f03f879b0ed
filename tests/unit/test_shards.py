"""The shards hand-off beyond tokenizing: the split rule, the shuffle's memory bound, the Megatron-LM and
datatrove exports (read back with readers written here from the formats' documentation, and with
datatrove's own reader), and `gristmill shards verify` / `export`."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from gristmill.pipeline.steps import token_shuffle as S
from gristmill.pipeline.cli.app import app
from gristmill.pipeline.tools.shards_export import export_shards
from gristmill.pipeline.steps.tokenize import tokenize_run, train_tokenizer
from gristmill.schemas import columns as C
from gristmill.schemas.job import TokenizeConfig
from gristmill.schemas.shards import Manifest, ShardWriter, read_shard, sha256_file

from support.curated import web_rows, write_curated

@pytest.fixture(autouse=True)
def _ray(ray_local):
    """tokenize_run's steps are Ray tasks."""


# --- the split rule --------------------------------------------------------------------------------


@pytest.mark.parametrize("url, domain", [
    ("http://news.bbc.co.uk/a", "bbc.co.uk"),
    ("https://WWW.Example.com:8080/x?y=1", "example.com"),
    ("http://blog.example.com./", "example.com"),
    ("http://192.168.1.2/a", "192.168.1.2"),
    ("http://127.0.0.1:45069/2024/a.html", "127.0.0.1:45069"),  # an address: each origin is a site
    ("http://[::1]:8080/", "::1:8080"),
    ("http://news.demo.test/2024/x.html", "news.demo.test"),  # no public suffix: the host
    ("http://localhost:8000/", "localhost"),
    (None, None),
    ("not a url", None),
])
def test_registered_domain(url, domain):
    assert S.registered_domain(url) == domain


def _histograms(units: dict[str, int], seed: int = 0):
    """Per-bin document counts for units {name: documents} (each unit a domain of that many pages)."""
    domain_hist = np.zeros(S.SPLIT_BINS, dtype=np.int64)
    doc_hist = np.zeros(S.SPLIT_BINS, dtype=np.int64)
    keys = {}
    for name, n in units.items():
        for p in range(n):
            domain_key, doc_key = S.split_unit_keys(f"http://{name}/p{p}", f"{name}-{p}", seed)
            domain_hist[domain_key >> 44] += 1
            doc_hist[doc_key >> 44] += 1
            keys[f"{name}-{p}"] = (name, domain_key, doc_key)
    return domain_hist, doc_hist, keys


def _val_docs(plan, keys) -> dict[str, set[str]]:
    sides: dict[str, set[str]] = {}
    for name, domain_key, doc_key in keys.values():
        sides.setdefault(name, set()).add("val" if plan.is_val(domain_key, doc_key) else "train")
    return sides


def test_split_with_many_domains_holds_val_fraction_of_whole_domains():
    units = {f"site{i}.com": 1 + i % 5 for i in range(2000)}
    total = sum(units.values())
    domain_hist, doc_hist, keys = _histograms(units)
    plan = S.plan_split(domain_hist, doc_hist, 0.05)
    sides = _val_docs(plan, keys)
    assert plan.split_by == "domain" and all(len(s) == 1 for s in sides.values())
    val = sum(units[d] for d, s in sides.items() if s == {"val"})
    assert 0.049 * total <= val <= 0.05 * total  # the budget, filled to within a few documents


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_split_with_the_quickstarts_four_hosts_puts_one_whole_host_in_val(seed):
    # The demo web's four hosts and their article counts: no host fits 10% of the documents, so val
    # takes the smallest host whatever the seed; train keeps the other three.
    units = {"news.demo.test": 18, "blog.demo.test": 16, "shop.demo.test": 6, "forum.demo.test": 10}
    domain_hist, doc_hist, keys = _histograms(units, seed)
    plan = S.plan_split(domain_hist, doc_hist, 0.1, seed=seed)
    sides = _val_docs(plan, keys)
    assert {d for d, s in sides.items() if s == {"val"}} == {"shop.demo.test"}
    # A larger budget takes hosts that fit it, in seeded order, and never all of them.
    plan = S.plan_split(domain_hist, doc_hist, 0.5, seed=seed)
    val_hosts = {d for d, s in _val_docs(plan, keys).items() if s == {"val"}}
    assert val_hosts and len(val_hosts) < 4 and sum(units[h] for h in val_hosts) <= 25


def test_split_of_a_single_site_falls_back_to_documents():
    domain_hist, doc_hist, keys = _histograms({"only.example.org": 200})
    plan = S.plan_split(domain_hist, doc_hist, 0.1)
    assert plan.split_by == "url" and "no domain split possible" in plan.rule
    val = sum(plan.is_val(d, k) for _, d, k in keys.values())
    assert val == 20


def test_no_val_split_without_a_fraction_or_with_one_document():
    domain_hist, doc_hist, _ = _histograms({"a.com": 3, "b.com": 4})
    assert S.plan_split(domain_hist, doc_hist, 0.0).split_by == "none"
    domain_hist, doc_hist, _ = _histograms({"a.com": 1})
    assert S.plan_split(domain_hist, doc_hist, 0.5).split_by == "none"


def test_split_never_empties_train():
    # Two sites, the one first in hash order holding almost everything: val can take only the
    # small one (or nothing fits, and the smallest is taken), never both.
    for seed in range(6):
        domain_hist, doc_hist, keys = _histograms({"big.com": 95, "small.com": 5}, seed)
        sides = _val_docs(S.plan_split(domain_hist, doc_hist, 0.9, seed=seed), keys)
        assert sides["big.com"] == {"train"} or sides["small.com"] == {"train"}


# --- the shuffle's memory bound ----------------------------------------------------------------------


def _spill(shuffle: S.GlobalShuffle, n: int, rng: np.random.Generator, big: int | None = None) -> dict[str, np.ndarray]:
    docs = {}
    for start in range(0, n, 64):
        batch = {name: [] for name in C.PROVENANCE_COLUMNS}
        arrays = []
        for i in range(start, min(start + 64, n)):
            length = big if big and i == 7 else int(rng.integers(5, 400))
            doc = np.append(rng.integers(1, 4000, size=length - 1), 0).astype(np.uint16)
            docs[f"d{i:05d}"] = doc
            arrays.append(doc)
            for name in C.PROVENANCE_COLUMNS:
                batch[name].append(None)
            batch[C.ID][-1] = f"d{i:05d}"
            batch[C.URL][-1] = f"http://host{i % 13}.example.com/{i}"
        shuffle.add(arrays, batch)
    return docs


def test_shuffle_holds_one_bucket_within_the_bound_and_orders_by_key(tmp_path):
    rng = np.random.default_rng(0)
    bound = 16 << 10
    with S.GlobalShuffle(tmp_path / "spill", seed=5, token_dtype=np.dtype(np.uint16), bucket_bytes=bound,
                         expected_bytes=10_000) as shuffle:  # an estimate 20x too small: buckets must re-split
        docs = _spill(shuffle, 600, rng, big=20_000)  # one document of 40 KB, over the bound by itself
        out = [(d.provenance[C.ID], d.tokens.copy()) for d in shuffle.documents()]
        stats = shuffle.stats
    assert not (tmp_path / "spill").exists()
    assert sorted(i for i, _ in out) == sorted(docs) and all(np.array_equal(docs[i], t) for i, t in out)
    keys = [S.shuffle_key(i, 5) for i, _ in out]
    assert keys == sorted(keys)  # one global order: the shuffle key
    assert stats.spilled_bytes > 8 * bound and stats.resplits >= 1 and stats.buckets_loaded > 8
    # One bucket in memory at a time, each within the bound; the 40 KB document was held alone.
    assert 0 < stats.max_bucket_bytes <= bound and stats.oversized_documents == 1
    assert stats.max_bucket_docs < len(docs) // 8


def test_shuffle_refuses_to_load_a_bucket_over_the_bound(tmp_path, monkeypatch):
    monkeypatch.setattr(S.GlobalShuffle, "_emit", S.GlobalShuffle._load)  # a bucketing that never splits
    with S.GlobalShuffle(tmp_path / "spill", seed=0, token_dtype=np.dtype(np.uint16), bucket_bytes=8192) as shuffle:
        _spill(shuffle, 300, np.random.default_rng(1))
        with pytest.raises(RuntimeError, match="over the 8192-byte bound"):
            list(shuffle.documents())


# --- exports ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    folder = tmp_path_factory.mktemp("shards")
    curated = write_curated(folder, web_rows(), files=2)
    tokenize_run(curated, folder / "shards", TokenizeConfig(vocab_size=400, shard_tokens=1500, val_fraction=0.2))
    return folder / "shards"


def _gristmill_docs(shards_dir: Path, split: str) -> list[list[int]]:
    manifest = Manifest.read(shards_dir)
    docs = []
    for entry in manifest.shards:
        if entry.split == split:
            shard = read_shard(shards_dir / entry.file)
            docs.extend(shard.document(i).tolist() for i in range(shard.doc_count))
    return docs


def read_megatron(prefix: Path) -> list[list[int]]:
    """A Megatron-LM indexed dataset (.idx + .bin), read from the documented layout."""
    idx = Path(f"{prefix}.idx").read_bytes()
    assert idx[:9] == b"MMIDIDX\x00\x00"
    (version,) = struct.unpack_from("<Q", idx, 9)
    code = idx[17]
    sequences, doc_index_len = struct.unpack_from("<QQ", idx, 18)
    assert version == 1 and code in (8, 4)
    offset = 34
    lengths = np.frombuffer(idx, "<i4", sequences, offset)
    offset += lengths.nbytes
    pointers = np.frombuffer(idx, "<i8", sequences, offset)
    offset += pointers.nbytes
    doc_index = np.frombuffer(idx, "<i8", doc_index_len, offset)
    assert offset + doc_index.nbytes == len(idx)  # nothing after the document index (not multimodal)
    dtype = np.dtype("<u2" if code == 8 else "<i4")
    data = np.fromfile(f"{prefix}.bin", dtype=dtype)
    assert doc_index.tolist() == list(range(sequences + 1))  # one sequence per document
    assert pointers[0] == 0 and np.array_equal(np.diff(pointers), lengths[:-1].astype(np.int64) * dtype.itemsize)
    assert int(lengths.sum()) == len(data)
    return [data[p // dtype.itemsize : p // dtype.itemsize + n].tolist() for p, n in zip(pointers, lengths)]


def read_datatrove_file(path: Path, token_size: int) -> list[list[int]]:
    """A datatrove .ds token file and its .ds.index of document ends, read from the documented layout."""
    tokens = np.fromfile(path, dtype="<u2" if token_size == 2 else "<u4")
    ends = np.fromfile(f"{path}.index", dtype="<u8").astype(np.int64)
    assert len(ends) == 0 or ends[-1] == len(tokens)
    return [tokens[b:e].tolist() for b, e in zip(np.r_[0, ends[:-1]], ends)]


def test_megatron_export_reads_back_as_the_shards(shards, tmp_path):
    summary = export_shards(shards, tmp_path / "meg", "megatron")
    for split in ("train", "val"):
        assert read_megatron(tmp_path / "meg" / split) == _gristmill_docs(shards, split)
    assert json.loads((tmp_path / "meg" / "export.json").read_text()) == summary
    assert sha256_file(tmp_path / "meg" / "tokenizer.json") == summary["tokenizer_sha256"]


def test_datatrove_export_reads_back_with_our_reader_and_datatroves(shards, tmp_path):
    pytest.importorskip("torch", reason="torch is optional (the train extra: pip install 'gristmill[train]')",
                        exc_type=ModuleNotFoundError)
    from datatrove.pipeline.tokens.merger import DocumentTokenizerMerger
    from datatrove.utils.dataset import DatatroveFileDataset, DatatroveFolderDataset

    summary = export_shards(shards, tmp_path / "dt", "datatrove")
    for split in ("train", "val"):
        part = summary["splits"][split]
        files = [tmp_path / "dt" / f["file"] for f in part["files"]]
        expected = _gristmill_docs(shards, split)
        ours = [doc for path in files for doc in read_datatrove_file(path, part["token_size"])]
        assert ours == expected
        metadata = files[0].with_name(files[0].name + ".metadata").read_text().splitlines()
        assert metadata[0].endswith("|2") and int(metadata[1]) == part["files"][0]["tokens"]
        # datatrove's reader, one file at a time as a single window: the tokens, and positions from the index.
        for path, info in zip(files, part["files"]):
            window = DatatroveFileDataset(str(path), seq_len=info["tokens"] - 1, token_size=2, return_positions=True)[0]
            docs = read_datatrove_file(path, 2)
            assert window["input_ids"].tolist() == [t for d in docs for t in d]
            assert window["positions"].tolist() == [p for d in docs for p in range(len(d))]
        # The folder reader sees the files in manifest order.
        seq_len = 31
        folder = DatatroveFolderDataset(str(tmp_path / "dt" / split), seq_len=seq_len, token_size=2)
        windows = []
        for path in files:
            stream = [t for d in read_datatrove_file(path, 2) for t in d]
            windows += [stream[k : k + seq_len + 1] for k in range(0, len(stream) - seq_len, seq_len + 1)]
        assert len(folder) == len(windows) and all(folder[k]["input_ids"].tolist() == w for k, w in enumerate(windows))
    # datatrove's merger reads the .ds, .ds.index and .ds.metadata files as its own tokenizer's output.
    DocumentTokenizerMerger(str(tmp_path / "dt" / "train"), str(tmp_path / "merged"), save_filename="m",
                            shuffle=False, progress=False).run(None)
    assert read_datatrove_file(tmp_path / "merged" / "000_m.ds", 2) == _gristmill_docs(shards, "train")


# --- gristmill shards verify / export -----------------------------------------------------------------


def _copy(shards: Path, to: Path) -> Path:
    import shutil

    shutil.copytree(shards, to)
    return to


def test_cli_verify_prints_the_summary(shards):
    result = CliRunner().invoke(app, ["shards", "verify", str(shards)])
    assert result.exit_code == 0, result.output
    manifest = Manifest.read(shards)
    totals = manifest.split_totals()
    rows = {cells[0]: cells[1:4] for cells in (line.replace("│", " ").split() for line in result.output.splitlines()) if cells}
    for split in ("train", "val"):
        assert rows[split] == [str(totals[split][k]) for k in ("shards", "tokens", "docs")]
    assert "split by domain" in result.output


def _rewrite_manifest(folder: Path, **changes) -> None:
    raw = json.loads((folder / "manifest.json").read_text()) | changes
    (folder / "manifest.json").write_text(json.dumps(raw))


def test_cli_verify_names_what_is_wrong(shards, tmp_path):
    runner = CliRunner()
    train0, val0 = (Manifest.read(shards).split_files(split)[0] for split in ("train", "val"))
    train0_docs = train0.replace(".bin", ".docs.parquet")

    def fails(folder: Path, message: str) -> None:
        result = runner.invoke(app, ["shards", "verify", str(folder)])
        assert result.exit_code == 2 and message in " ".join(result.output.split()), result.output

    fails(tmp_path / "nowhere", "no manifest.json")
    altered = _copy(shards, tmp_path / "altered")
    data = bytearray((altered / train0).read_bytes())
    data[100] ^= 1
    (altered / train0).write_bytes(bytes(data))
    fails(altered, f"{train0}: sha256")

    truncated = _copy(shards, tmp_path / "truncated")
    (truncated / val0).write_bytes((truncated / val0).read_bytes()[:-8])
    raw = json.loads((truncated / "manifest.json").read_text())
    for entry in raw["shards"]:
        if entry["file"] == val0:
            entry["sha256"] = sha256_file(truncated / val0)
    (truncated / "manifest.json").write_text(json.dumps(raw))
    fails(truncated, "truncated or padded")

    retokenized = _copy(shards, tmp_path / "tokenizer")  # another tokenizer, its sha256 recorded
    train_tokenizer(iter([r[C.TEXT] for r in web_rows()]), 300).save(str(retokenized / "tokenizer.json"))
    _rewrite_manifest(retokenized, tokenizer_sha256=sha256_file(retokenized / "tokenizer.json"))
    fails(retokenized, "tokenizer.json: vocabulary of 300 tokens, the manifest says 400")
    renumbered = _copy(shards, tmp_path / "renumbered")
    special = Manifest.read(shards).special_tokens | {"|||EMAIL_ADDRESS|||": 399}
    _rewrite_manifest(renumbered, special_tokens=special)
    fails(renumbered, "'|||EMAIL_ADDRESS|||' is id 1, the manifest says 399")

    no_eos = _copy(shards, tmp_path / "no_eos")
    writer = ShardWriter(no_eos / train0, np.uint16)
    shard_docs = [read_shard(shards / train0).document(i).copy() for i in range(2)]
    shard_docs[1][-1] = 5
    for doc in shard_docs:
        writer.add(doc)
    writer.close()
    raw = json.loads((no_eos / "manifest.json").read_text())
    raw["shards"][0].update(sha256=sha256_file(no_eos / train0), tokens=sum(map(len, shard_docs)), docs=2)
    (no_eos / "manifest.json").write_text(json.dumps(raw))
    fails(no_eos, "document 1 does not end with the eos token")

    index = _copy(shards, tmp_path / "index")
    table = pq.read_table(index / train0_docs).slice(1)
    pq.write_table(table, index / train0_docs)
    raw = json.loads((index / "manifest.json").read_text())
    raw["shards"][0]["docs_sha256"] = sha256_file(index / train0_docs)
    (index / "manifest.json").write_text(json.dumps(raw))
    fails(index, f"{train0_docs}:")


def test_cli_export_writes_both_formats_and_refuses_bad_shards(shards, tmp_path):
    runner = CliRunner()
    for fmt in ("megatron", "datatrove"):
        result = runner.invoke(app, ["shards", "export", str(shards), "--format", fmt, "--out", str(tmp_path / fmt)])
        assert result.exit_code == 0, result.output
    assert (tmp_path / "megatron" / "val.idx").exists() and (tmp_path / "datatrove" / "val" / "val-00000.ds.index").exists()
    result = runner.invoke(app, ["shards", "export", str(shards), "--format", "arrow", "--out", str(tmp_path / "x")])
    assert result.exit_code == 2 and "unknown export format" in result.output
    altered = _copy(shards, tmp_path / "altered")
    (altered / "tokenizer.json").write_text("{}")
    result = runner.invoke(app, ["shards", "export", str(altered), "--format", "megatron", "--out", str(tmp_path / "y")])
    assert result.exit_code == 2 and "tokenizer.json: sha256" in " ".join(result.output.split())
    assert not (tmp_path / "y").exists()


def test_manifest_from_before_the_shuffle_reads_with_its_rules(shards, tmp_path):
    old = _copy(shards, tmp_path / "old")
    raw = json.loads((old / "manifest.json").read_text())
    for key in ("shuffle_method", "split_by", "split_rule"):
        del raw[key]
    (old / "manifest.json").write_text(json.dumps(raw))
    manifest = Manifest.read(old)
    assert (manifest.shuffle_method, manifest.split_by) == ("none", "url") and "val_fraction" in manifest.split_rule


def _large_vocab_shards(folder: Path) -> Path:
    """uint32 shards (vocab 70 000) with a word-level tokenizer: the int32 / token_size 4 export paths."""
    from tokenizers import Tokenizer, models

    from gristmill.schemas.shards import SPECIAL_TOKENS, ShardEntry

    vocab = {t: i for i, t in enumerate(SPECIAL_TOKENS)} | {f"w{i}": i for i in range(len(SPECIAL_TOKENS), 70_000)}
    Tokenizer(models.WordLevel(vocab, unk_token="w11")).save(str(folder / "tokenizer.json"))
    rng = np.random.default_rng(0)
    entries = []
    for split, n in (("train", 2), ("val", 1)):
        for k in range(n):
            docs = [np.append(rng.integers(11, 70_000, size=rng.integers(3, 50)), 0).astype(np.uint32) for _ in range(7)]
            name = f"{split}-{k:05d}.bin"
            writer = ShardWriter(folder / name, np.uint32)
            for doc in docs:
                writer.add(doc)
            n_tokens, n_docs = writer.close()
            entries.append(ShardEntry(name, split, sha256_file(folder / name), n_tokens, n_docs))
    Manifest(tokenizer_file="tokenizer.json", tokenizer_sha256=sha256_file(folder / "tokenizer.json"),
             vocab_size=70_000, eos_id=0, dtype="uint32", special_tokens={t: i for i, t in enumerate(SPECIAL_TOKENS)},
             seed=0, val_fraction=0.1, shards=entries).write(folder)
    return folder


def test_large_vocabulary_exports_as_int32_and_token_size_4(tmp_path):
    (tmp_path / "shards").mkdir()
    shards_dir = _large_vocab_shards(tmp_path / "shards")
    export_shards(shards_dir, tmp_path / "meg", "megatron")
    idx = (tmp_path / "meg" / "train.idx").read_bytes()
    assert idx[17] == 4  # Megatron's int32
    export_shards(shards_dir, tmp_path / "dt", "datatrove")
    for split in ("train", "val"):
        expected = _gristmill_docs(shards_dir, split)
        assert max(max(d) for d in expected) > 65535
        assert read_megatron(tmp_path / "meg" / split) == expected
        files = sorted((tmp_path / "dt" / split).glob("*.ds"))
        assert [d for f in files for d in read_datatrove_file(f, 4)] == expected
        assert files[0].with_name(files[0].name + ".metadata").read_text().splitlines()[0].endswith("|4")
