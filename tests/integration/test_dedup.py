"""Dedup (issue 7): signatures are datasketch's, the LSH follows its S-curve, the global step clusters what
it should, keeps the right document, writes the ledger's numbers, and gives the same bytes for any worker
count."""

from __future__ import annotations

import json
import random
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gristmill.filters import minhash
from gristmill.pipeline.steps.dedup import ComputeDedupSignatures, deduplicate_run
from gristmill.pipeline.steps.dedup.components import connected_components, both_directions
from gristmill.pipeline.steps.dedup.exchange import Exchange
from gristmill.schemas import columns as C
from gristmill.schemas import reasons as R
from gristmill.schemas.job import DedupConfig


def fake_words(rng: random.Random, count: int) -> list[str]:
    """Letters-only random words (digits would all normalize to '0'), from a vocabulary large enough that
    a 5-gram practically never repeats."""
    return ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(3, 8))) for _ in range(count)]


def test_signatures_are_datasketch_affine32():
    from datasketch import LeanMinHash, MinHash

    rng = random.Random(0)
    base = fake_words(rng, 120)
    edited = base[:60] + fake_words(rng, 10) + base[70:]
    texts = [" ".join(base), " ".join(edited), "Two words", "ÉCOLE, école... 12 3.5!"]
    for num_perm, seed in ((128, 1), (112, 42)):
        sigs, present, word_lists = minhash.signatures(texts, 5, num_perm, seed)
        assert present.all()
        lean = []
        for sig, shingles in zip(sigs, minhash.shingles(word_lists, 5)):
            reference = MinHash(num_perm=num_perm, seed=seed, hashfunc=minhash.shingle_hash32)
            reference.update_batch(shingles)
            assert np.array_equal(reference.hashvalues, sig)  # same permutations, same scheme
            stored = minhash.signature_bytes(sig[None, :])[0]
            values = minhash.signatures_from_bytes([stored], num_perm)[0]
            lean.append(LeanMinHash(seed=seed, hashvalues=values, scheme="affine32"))
            assert lean[-1].jaccard(reference) == 1.0
        assert lean[0].jaccard(lean[1]) == pytest.approx(minhash.estimated_jaccard(sigs[0], sigs[1]))
        assert 0.6 < lean[0].jaccard(lean[1]) < 0.95


def test_normalization_exact_hash_and_empty_documents():
    texts = ["Hello,   World! It's 2024.", "hello world it s 1999", "hello world its 0", "", None, "   "]
    sigs, present, word_lists = minhash.signatures(texts, 5, 16, 1)
    exact = minhash.exact_hashes(word_lists)
    assert word_lists[0].as_py() == ["hello", "world", "it", "s", "0"]
    assert exact[0] == exact[1] != exact[2]
    assert exact[3:] == [None, None, None] and not present[3:].any() and present[:3].all()
    assert (sigs[3:] == minhash.EMPTY_HASH).all()


def test_band_rows_follow_datasketch():
    from datasketch.lsh import _optimal_param

    for threshold, num_perm in ((0.75, 112), (0.8, 128), (0.5, 64)):
        assert DedupConfig(threshold=threshold, num_perm=num_perm).band_rows() == _optimal_param(threshold, num_perm, 0.5, 0.5)
    assert DedupConfig(bands=14, rows=8).band_rows() == (14, 8)
    with pytest.raises(ValueError):
        DedupConfig(bands=20, rows=8)


def test_lsh_detection_follows_the_s_curve():
    """≥ 500 synthetic pairs per 0.05 bin of MEASURED shingle Jaccard over threshold ± 0.3; the share of
    pairs sharing a band matches the mean of 1-(1-s^r)^b over the bin's pairs within 0.05."""
    config = DedupConfig()
    bands, rows = config.band_rows()
    rng = random.Random(7)
    np_rng = np.random.default_rng(7)
    low = config.threshold - 0.3
    edges = np.round(np.arange(low, 1.0 + 1e-9, 0.05), 2)
    per_bin, wanted = np.zeros(len(edges) - 1, int), 520
    left, right, measured = [], [], []
    while per_bin.min() < wanted:
        words = fake_words(rng, 150)
        edited = list(words)
        # Replace a share of the words with fresh ones: each replacement breaks up to n shingles.
        for position in np.flatnonzero(np_rng.random(len(words)) < np_rng.uniform(0.0, 0.1)):
            edited[position] = "q" + words[position]
        similarity = minhash.exact_jaccard(*(set(minhash.shingles(pa.array([w]), config.n)[0]) for w in (words, edited)))
        index = min(int(np.searchsorted(edges, similarity + 1e-12, side="right")) - 1, len(per_bin) - 1)
        if index < 0 or per_bin[index] >= wanted:
            continue
        per_bin[index] += 1
        left.append(" ".join(words))
        right.append(" ".join(edited))
        measured.append(similarity)
    measured = np.array(measured)
    sigs_l = minhash.signatures(left, config.n, config.num_perm, config.seed)[0]
    sigs_r = minhash.signatures(right, config.n, config.num_perm, config.seed)[0]
    detected = (minhash.band_keys(sigs_l, bands, rows) == minhash.band_keys(sigs_r, bands, rows)).any(axis=1)
    expected = 1 - (1 - measured ** rows) ** bands
    report = []
    for index in range(len(per_bin)):
        in_bin = (measured >= edges[index] - 1e-12) & ((measured < edges[index + 1] - 1e-12) | (index == len(per_bin) - 1))
        assert in_bin.sum() >= 500
        report.append((float(edges[index]), int(in_bin.sum()), round(float(detected[in_bin].mean()), 3),
                       round(float(expected[in_bin].mean()), 3)))
    assert all(abs(got - want) <= 0.05 for _, _, got, want in report), report
    print("s-curve (bin start, pairs, detected, expected):", report)


def test_signature_stage_writes_active_rows_only():
    table = pa.table({
        C.TEXT: pa.array(["one two three four five six", "skipped text here", None, "one two three four five six"], C.TYPES[C.TEXT]),
        C.SKIP_REASON: pa.array([None, "not_html", None, None], pa.string()),
        C.QUARANTINE_REASON: pa.array([None, None, None, None], pa.string()),
    })
    out = ComputeDedupSignatures(DedupConfig(num_perm=16))(table)
    exact, sig = out[C.EXACT_HASH].to_pylist(), out[C.MINHASH].to_pylist()
    assert exact[0] == exact[3] and exact[1] is None and exact[2] is None
    assert len(sig[0]) == 16 * 4 and sig[1] is None and sig[2] is None
    assert out.schema.field(C.MINHASH).type == pa.binary()


def union_find_components(edges: np.ndarray) -> dict[int, int]:
    parent: dict[int, int] = {}

    def find(x):
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for u, v in edges.tolist():
        a, b = find(u), find(v)
        parent[max(a, b)] = min(a, b)
    return {x: find(x) for x in parent}


def test_components_match_union_find(ray_local):
    rng = np.random.default_rng(3)
    # Chains, stars, cycles and random sparse edges over 3000 nodes.
    chain = np.stack([np.arange(100, 400), np.arange(101, 401)], axis=1)
    star = np.stack([np.full(50, 2000), np.arange(2500, 2550)], axis=1)
    random_edges = rng.integers(0, 3000, size=(800, 2))
    edges = np.concatenate([chain[rng.permutation(len(chain))], star, random_edges])
    edges = edges[edges[:, 0] != edges[:, 1]].astype(np.int64)
    expected = {node: root for node, root in union_find_components(edges).items() if node != root}
    for partitions in (1, 3):
        pieces = [[ray_local.put(p)] for p in both_directions(edges, partitions)]
        labels, rounds = connected_components(Exchange(), pieces, partitions)
        got = np.concatenate([ray_local.get(ref) for refs in labels for ref in refs])
        assert dict(zip(got[:, 0].tolist(), got[:, 1].tolist())) == expected
        assert len(got) == len(expected) and rounds < 20


def test_shuffle_pieces_live_in_the_object_store_not_in_the_driver(ray_local):
    """Ray would inline outputs under 100 KB into the driver's memory; a shuffle's pieces shrink as the
    partition counts grow, so the driver's memory grew with the corpus. They must be in the object store
    (a node holds them; an inlined object has none)."""
    from gristmill.pipeline.steps.dedup.components import stars

    leaves = np.arange(10, 3010)
    edges = np.stack([leaves % 10, leaves], axis=1)  # 10 stars (roots 0–9 in both partitions), 3,000 leaves
    pieces = [[ray_local.put(p)] for p in both_directions(edges, 2)]
    stats, out = Exchange().step(stars, [3, 3], pieces, 3)
    assert [s["leaves"] for s in stats] == [1500, 1500]
    refs = [ref for task in out for ref in task]
    sizes = ray_local.experimental.get_object_locations(refs)
    assert all(1_000 < sizes[ref]["object_size"] < 100_000 for ref in refs)  # what Ray would inline
    assert all(sizes[ref]["node_ids"] for ref in refs), sizes
    labels = np.concatenate([ray_local.get(ref) for ref in refs])
    assert sorted(map(tuple, labels.tolist())) == sorted(zip(leaves.tolist(), (leaves % 10).tolist()))


# --- the global step on a small curated/ folder -----------------------------------------------------

def write_curated(run: Path, texts: list[str], ids: list[str], config: DedupConfig, rows_per_part: int = 7) -> None:
    if run.exists():
        shutil.rmtree(run)
    (run / "curated").mkdir(parents=True)
    table = pa.table({
        C.ID: pa.array(ids, pa.string()),
        C.TEXT: pa.array(texts, C.TYPES[C.TEXT]),
        C.SKIP_REASON: pa.array([None] * len(texts), pa.string()),
        C.QUARANTINE_REASON: pa.array([None] * len(texts), pa.string()),
        C.KEEP: pa.array([True] * len(texts)),
        C.DROP_REASON: pa.array([None] * len(texts), pa.string()),
    })
    table = ComputeDedupSignatures(config)(table)
    for part, start in enumerate(range(0, table.num_rows, rows_per_part)):
        pq.write_table(table.slice(start, rows_per_part), run / "curated" / f"part-{part:05d}.parquet")


def corpus(seed: int = 5):
    """20 unrelated documents; doc 3 copied (case/punctuation changed) as 11 and 17; doc 5 lightly edited
    as 12 (a near duplicate) and 12 copied exactly as 19; docs 8 and 9 are unrelated."""
    rng = random.Random(seed)
    texts = [" ".join(fake_words(rng, 200)) for _ in range(20)]
    texts[11] = texts[3].upper() + "!!"
    texts[17] = texts[3].replace(" ", "  ")
    words = texts[5].split()
    words[100:103] = ["edited", "here", "now"]
    texts[12] = " ".join(words)
    texts[19] = texts[12]
    ids = [f"doc{(i * 7) % 20:02d}" for i in range(20)]  # ids not in curated order
    return texts, ids


def read_folder(folder: Path) -> pa.Table | None:
    files = sorted(folder.glob("*.parquet"))
    return pa.concat_tables([pq.read_table(f) for f in files], promote_options="default") if files else None


def test_deduplicate_run_clusters_keeps_and_accounts(ray_local, tmp_path):
    config = DedupConfig()
    texts, ids = corpus()
    write_curated(tmp_path / "run", texts, ids, config)
    result = deduplicate_run(tmp_path / "run", config, log=lambda *_: None)
    curated, rejected = read_folder(tmp_path / "run" / "curated"), read_folder(tmp_path / "run" / "rejected")
    assert result.documents == 20 and curated.num_rows == 16 and rejected.num_rows == 4
    assert sorted(rejected[C.ID].to_pylist()) == sorted([ids[11], ids[17], ids[12], ids[19]])
    reasons = dict(zip(rejected[C.ID].to_pylist(), rejected[C.DROP_REASON].to_pylist()))
    # 11 and 17 normalize to doc 3's words: exact. 12 is a near duplicate of 5; 19 is exact to 12 but 12 is
    # not the kept one (5 is), so it is a near duplicate of the kept document.
    assert reasons == {ids[11]: R.EXACT_DUPLICATE, ids[17]: R.EXACT_DUPLICATE,
                       ids[12]: R.NEAR_DUPLICATE, ids[19]: R.NEAR_DUPLICATE}
    assert set(rejected[C.KEEP].to_pylist()) == {False}
    clusters = dict(zip(rejected[C.ID].to_pylist(), zip(rejected[C.DUP_CLUSTER_ID].to_pylist(), rejected[C.DUP_CLUSTER_SIZE].to_pylist())))
    assert clusters[ids[11]] == clusters[ids[17]] == (ids[3], 3)
    assert clusters[ids[12]] == clusters[ids[19]] == (ids[5], 3)
    kept_clusters = {i: (c, s) for i, c, s in zip(curated[C.ID].to_pylist(), curated[C.DUP_CLUSTER_ID].to_pylist(), curated[C.DUP_CLUSTER_SIZE].to_pylist())}
    assert kept_clusters[ids[3]] == (ids[3], 3) and kept_clusters[ids[8]] == (None, 1)
    assert result.exact_removed == 2 and result.near_removed == 2 and result.cluster_sizes == {3: 2}
    assert result.dropped == Counter({R.EXACT_DUPLICATE: 2, R.NEAR_DUPLICATE: 2})
    assert result.bytes_saved == sum(len(texts[i].encode()) for i in (11, 17, 12, 19))
    assert curated[C.ID].to_pylist() == [i for n, i in enumerate(ids) if n not in (11, 12, 17, 19)]  # order kept
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["curated", "rejected"]  # the band files are gone


def test_the_bands_step_writes_a_file_per_task_with_a_batch_per_partition(ray_local, tmp_path, monkeypatch):
    """The bands → buckets exchange goes through the run folder (the driver holds file names, not
    tasks × partitions object references): one Arrow file per bands task, record batch p for bucket
    partition p, signatures included when verify_jaccard asks for them; the files are removed after."""
    from gristmill.pipeline.steps.dedup import run as dedup_run

    config = DedupConfig(verify_jaccard=True)
    bands, rows = config.band_rows()
    texts, ids = corpus()
    write_curated(tmp_path / "run", texts, ids, config, rows_per_part=7)
    files = sorted((tmp_path / "run" / "curated").glob("part-*.parquet"))
    parts = [(str(f), 7 * i, pq.ParquetFile(f).metadata.num_rows) for i, f in enumerate(files)]
    out = tmp_path / "group.arrow"
    stats, pieces = dedup_run._band_rows((parts, config, bands, rows, 3, str(out)), [])
    assert pieces == [] and stats["band_rows"] == 20 * (bands + 1)  # every document: its LSH bands + the exact band
    with pa.memory_map(str(out)) as source:
        assert pa.ipc.open_file(source).num_record_batches == 3
    read = [dedup_run._read_band_piece(str(out), p, config) for p in range(3)]
    assert all((piece["key"] % np.uint64(3) == p).all() for p, piece in enumerate(read))  # partition p's keys only
    node = np.concatenate([piece["node"] for piece in read])
    band = np.concatenate([piece["band"] for piece in read])
    sig = np.concatenate([piece["sig"] for piece in read])
    assert sorted(np.bincount(node)) == [bands + 1] * 20
    expected = minhash.signatures(texts, config.n, config.num_perm, config.seed)[0]
    lsh = band < bands
    assert np.array_equal(sig[lsh], expected[node[lsh]]) and not sig[~lsh].any()  # exact-band rows carry zeros
    # The whole step with many bucket partitions and part tasks, the signature check on: same outcome, no files left.
    monkeypatch.setattr(dedup_run, "BAND_ROWS_PER_PARTITION", 40)
    monkeypatch.setattr(dedup_run, "ROWS_PER_PART_TASK", 4)
    write_curated(tmp_path / "run", texts, ids, config, rows_per_part=2)
    result = deduplicate_run(tmp_path / "run", config, log=lambda *_: None, workers=2)
    assert (result.part_tasks, result.partitions) == (5, 6)
    assert (result.exact_removed, result.near_removed) == (2, 2)
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["curated", "rejected"]


def test_keep_rules_and_switches(ray_local, tmp_path):
    texts, ids = corpus()
    texts[17] = texts[3] + " and a longer tail of words"  # near, not exact, and the longest of its cluster
    write_curated(tmp_path / "run", texts, ids, DedupConfig())
    smallest = DedupConfig(keep="smallest_id")
    deduplicate_run(tmp_path / "run", smallest, log=lambda *_: None)
    curated = read_folder(tmp_path / "run" / "curated")[C.ID].to_pylist()
    assert min(ids[3], ids[11], ids[17]) in curated and min(ids[5], ids[12], ids[19]) in curated
    write_curated(tmp_path / "run", texts, ids, DedupConfig())
    deduplicate_run(tmp_path / "run", DedupConfig(keep="longest"), log=lambda *_: None)
    curated = read_folder(tmp_path / "run" / "curated")[C.ID].to_pylist()
    assert ids[17] in curated and ids[3] not in curated
    write_curated(tmp_path / "run", texts, ids, DedupConfig())
    only_exact = deduplicate_run(tmp_path / "run", DedupConfig(near=False), log=lambda *_: None)
    assert (only_exact.exact_removed, only_exact.near_removed) == (2, 0)  # 11 (exact of 3), 19 (exact of 12)


def test_same_bytes_for_any_worker_count(ray_local, tmp_path):
    config = DedupConfig()
    texts, ids = corpus()
    outputs = []
    for workers in (1, 2, 1):
        run = tmp_path / f"run{workers}-{len(outputs)}"
        write_curated(run, texts, ids, config)
        result = deduplicate_run(run, config, log=lambda *_: None, workers=workers)
        files = sorted(p for p in run.rglob("*.parquet"))
        outputs.append(({p.relative_to(run).as_posix(): p.read_bytes() for p in files}, result.cluster_sizes, result.partitions))
    assert outputs[0][0] == outputs[1][0] == outputs[2][0]
    assert outputs[0][1] == outputs[1][1]
    assert outputs[0][2] == 1 and outputs[1][2] == 2  # the work really was split differently


def test_same_bytes_when_buckets_and_graph_are_partitioned_differently(ray_local, tmp_path, monkeypatch):
    """Small partitions: many bucket partitions, fewer graph partitions (the resplit step runs)."""
    from gristmill.pipeline.steps.dedup import run as dedup_run

    config = DedupConfig()
    texts, ids = corpus()
    reference = tmp_path / "reference"
    write_curated(reference, texts, ids, config)
    deduplicate_run(reference, config, log=lambda *_: None, workers=2)
    monkeypatch.setattr(dedup_run, "BAND_ROWS_PER_PARTITION", 40)
    monkeypatch.setattr(dedup_run, "EDGES_PER_PARTITION", 40)
    run = tmp_path / "small"
    write_curated(run, texts, ids, config)
    result = deduplicate_run(run, config, log=lambda *_: None, workers=2)
    assert result.partitions == 6 and result.graph_partitions == 2
    assert {p.relative_to(run): p.read_bytes() for p in run.rglob("*.parquet")} == \
        {p.relative_to(reference): p.read_bytes() for p in reference.rglob("*.parquet")}


def test_parts_are_grouped_into_tasks_by_documents_with_the_same_bytes(ray_local, tmp_path, monkeypatch):
    """A run writes a part per input file: many small parts are read by few tasks (bands, members,
    rewrite), and how they are grouped changes no output byte."""
    from gristmill.pipeline.steps.dedup import run as dedup_run

    config = DedupConfig()
    texts, ids = corpus()
    outputs, tasks = [], []
    # 10 parts of 2 documents: a task per part, 2 parts a task, and as many as the 2 workers allow (10 each)
    for rows_per_task in (1, 4, 10_000):
        monkeypatch.setattr(dedup_run, "ROWS_PER_PART_TASK", rows_per_task)
        run = tmp_path / f"run-{rows_per_task}"
        write_curated(run, texts, ids, config, rows_per_part=2)
        result = deduplicate_run(run, config, log=lambda *_: None, workers=2)
        outputs.append({p.relative_to(run): p.read_bytes() for p in run.rglob("*.parquet")})
        tasks.append(result.part_tasks)
    assert tasks == [10, 5, 2]
    assert len(outputs[0]) > 10 and all(output == outputs[0] for output in outputs[1:])
    assert (result.exact_removed, result.near_removed) == (2, 2)


# --- Clough & Stevenson plagiarised short answers (../shared/data) ---------------------------------

def plagiarism_corpus(shared_data: Path):
    import csv

    root = shared_data / "neardup-plagiarism-short-answers"
    with open(root / "file_information.csv", encoding="utf-8", newline="") as handle:
        rows = [{k.strip(): v.strip() for k, v in row.items()} for row in csv.DictReader(handle)]  # a stray \r
    files = [r["File"] for r in rows]
    texts = [(root / "docs" / f).read_text(encoding="utf-8", errors="replace") for f in files]
    return files, texts, {r["File"]: r["Category"] for r in rows}, {r["File"]: r["Task"] for r in rows}


def precision_recall(predicted: dict[str, bool], category: dict[str, str]) -> tuple[float, float]:
    positive = {f for f, c in category.items() if c in ("cut", "light") and f != "g2pE_taskc.txt"}  # label error
    hits = {f for f, p in predicted.items() if p}
    precision = len(hits & positive) / len(hits) if hits else 1.0
    return precision, len(hits & positive) / len(positive)


@pytest.mark.shared_data
def test_plagiarised_short_answers(shared_data, ray_local, tmp_path):
    """(answer, source of its task) pairs; cut + light are the positives. At the production setting (5-gram
    Jaccard ≥ 0.75, whole-document near duplicates) only near-whole copies are clustered: precision 1,
    low recall. The answers are 200–300 words inside longer sources, so their Jaccard stays low even
    for verbatim copies (containment is what is high); a lower threshold trades precision for recall."""
    files, texts, category, task = plagiarism_corpus(shared_data)
    config = DedupConfig()
    write_curated(tmp_path / "run", texts, files, config, rows_per_part=40)
    result = deduplicate_run(tmp_path / "run", config, log=lambda *_: None)
    cluster_of = {}
    for folder in ("curated", "rejected"):
        table = read_folder(tmp_path / "run" / folder)
        cluster_of.update(zip(table[C.ID].to_pylist(), table[C.DUP_CLUSTER_ID].to_pylist()))
    answers = [f for f in files if category[f] != "orig"]
    clustered = {f: cluster_of[f] is not None and cluster_of[f] == cluster_of[f"orig_task{task[f]}.txt"] for f in answers}
    precision, recall = precision_recall(clustered, category)
    print(f"default (n={config.n}, {config.band_rows()} bands×rows, threshold {config.threshold}): "
          f"precision {precision:.3f} recall {recall:.3f}, {result.removed} removed")
    assert precision == 1.0 and 0.0 < recall < 0.5
    assert not any(clustered[f] for f in answers if category[f] in ("heavy", "non"))
    # The trade-off at the signature level (same signatures, bands from each threshold).
    sigs, _, _ = minhash.signatures(texts, config.n, config.num_perm, config.seed)
    index = {f: i for i, f in enumerate(files)}
    for threshold in (0.5, 0.3, 0.2):
        bands, rows = DedupConfig(threshold=threshold).band_rows()
        keys = minhash.band_keys(sigs, bands, rows)
        found = {f: bool((keys[index[f]] == keys[index[f"orig_task{task[f]}.txt"]]).any()) for f in answers}
        print(f"threshold {threshold} ({bands}×{rows}): precision %.3f recall %.3f" % precision_recall(found, category))


def test_torch_signature_path_is_bit_identical():
    """The GPU path's arithmetic, run with torch on the CPU here (on CUDA when a GPU is present)."""
    torch = pytest.importorskip("torch", reason="torch is optional (the train extra: pip install 'gristmill[train]')",
                                   exc_type=ModuleNotFoundError)
    rng = random.Random(11)
    texts = [" ".join(fake_words(rng, rng.randint(0, 300))) for _ in range(60)] + ["", "a b"]
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    expected = minhash.signatures(texts, 5, 112, 3)[0]
    for device in devices:
        assert np.array_equal(minhash.signatures(texts, 5, 112, 3, device=device)[0], expected)


def test_the_prepared_gpu_check_runs(tmp_path):
    """bench/minhash_gpu.py is the one command a session lent a GPU runs for the GPU point: it must not
    rot while no GPU is lent. Here with torch on the CPU (same assertions, small corpus)."""
    pytest.importorskip("torch", reason="torch is optional (the train extra: pip install 'gristmill[train]')",
                        exc_type=ModuleNotFoundError)
    import subprocess
    import sys

    from support.repo import REPO

    out = tmp_path / "gpu.json"
    done = subprocess.run([sys.executable, str(REPO / "bench" / "minhash_gpu.py"), "--device", "cpu", "--docs", "300",
                           "--repeat", "1", "--json", str(out)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(out.read_text())
    assert result["bit_identical"] is True and result["docs"] == 304 and result["shingles"] > 100_000


def test_verification_and_bucket_bound(ray_local, tmp_path):
    texts, ids = corpus()
    # Permissive bands (28 × 4 ≈ Jaccard 0.43) but a strict check: 12 (Jaccard ≈ 0.86 with 5) is not linked.
    strict = DedupConfig(bands=28, rows=4, threshold=0.95, verify_jaccard=True)
    write_curated(tmp_path / "run", texts, ids, strict)
    result = deduplicate_run(tmp_path / "run", strict, log=lambda *_: None)
    assert (result.exact_removed, result.near_removed) == (3, 0)  # 11, 17 (of 3) and 19 (of 12)
    # At most one edge per bucket: 3, 11 and 17 share every bucket, so only 3–11 is linked.
    bounded = DedupConfig(max_edges_per_bucket=1)
    write_curated(tmp_path / "run", texts, ids, bounded)
    result = deduplicate_run(tmp_path / "run", bounded, log=lambda *_: None)
    curated = read_folder(tmp_path / "run" / "curated")[C.ID].to_pylist()
    assert ids[17] in curated and ids[11] not in curated and result.buckets_truncated > 0
    assert (result.exact_removed, result.near_removed) == (1, 2)


def test_signature_stage_in_a_real_run_then_dedup(ray_local, tmp_path):
    """The stage in the per-batch chain of a real run (demo web archive), then the global step on its
    folder: curated/ + rejected/ keep every document, the ledger's adjustment adds up."""
    from gristmill import Pipeline, WarcSource
    from gristmill.pipeline.engine.api import default_stages
    from gristmill.schemas.job import load_job

    from support.repo import REPO

    job = load_job(REPO / "jobs" / "demo-archive.yaml")
    stages = [*default_stages(job), ComputeDedupSignatures(DedupConfig())]
    result = Pipeline(sources=WarcSource([str(REPO / "jobs" / "data" / "demo-web.warc.gz")]), stages=stages,
                      tokenize=job.tokenize, batch_size=job.batch_size).run(tmp_path / "run", log=lambda m: None)
    before = read_folder(tmp_path / "run" / "curated")
    assert before.num_rows == result.ledger.kept > 0
    assert before[C.MINHASH].null_count == 0 and before[C.EXACT_HASH].null_count == 0
    rejected_before = read_folder(tmp_path / "run" / "rejected").num_rows
    dedup = deduplicate_run(tmp_path / "run", DedupConfig(), log=lambda m: None)
    after = read_folder(tmp_path / "run" / "curated")
    assert after.num_rows == result.ledger.kept - dedup.removed
    assert sum(dedup.removed_by_source.values()) == dedup.removed
    assert read_folder(tmp_path / "run" / "rejected").num_rows == rejected_before + dedup.removed
    # Tokenization (after dedup, as the runner will order it) sees only the survivors.
    from gristmill.pipeline.steps.tokenize import tokenize_run

    shutil.rmtree(tmp_path / "run" / "shards")
    manifest = tokenize_run(tmp_path / "run" / "curated", tmp_path / "run" / "shards", job.tokenize)
    assert sum(s.docs for s in manifest.shards) == after.num_rows
    print(f"demo web: {before.num_rows} kept, dedup removed {dedup.exact_removed} exact, {dedup.near_removed} near")


def test_words_are_the_same_on_every_call():
    # Arrow 26's whitespace split alone, on text ending in whitespace with non-ASCII whitespace inside,
    # sometimes returned a whitespace character as the last word; `words` trims first.
    texts = [" . • wheel . • wheel\u2009. • • wheel .\u3000• wheel\n. •\r\nwheel . •\u2009",
             "ab\u2028\x1f  \u2028\u2028\n\u2009  wheel\x1f \nwheel  \xa0\xa0wheel\x1fwheel\u3000\u2028\u2009\n\u3000\x1f"]
    for text in texts:
        found = {tuple(minhash.words([text])[0].as_py()) for _ in range(300)}
        assert found == {tuple(minhash.normalize([text])[0].as_py().split())}
