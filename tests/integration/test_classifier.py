"""The fastText quality classifier: the shipped model ranks clean prose above page chrome, a user's
model loads by path with its own labels, `train-classifier` holds out by source, and the top-fraction
cut is a pure, tie-broken function that a real run applies exactly."""

from __future__ import annotations

import json
import math
import random

import pytest

from gristmill.filters.quality_model import DEFAULT_MODEL, QualityModel, keep_count, percentile_cutoff
from gristmill.filters.training.classifier_train import auc, chunks, load_config, train

PROSE = (
    "The bridge was built in 1843 by the parish, after the old ford had drowned two drovers in a single "
    "winter. Its three arches are of local sandstone, and the masons who raised them were paid partly in "
    "grain. For most of the next century it carried the market traffic between the two villages, and the "
    "records of the toll keeper survive in the county archive, where they show how the trade in wool "
    "declined as the railway arrived."
)
CHROME = (
    "Home | News | Sport | Weather | Log in | Register\nSubscribe to our newsletter\nCookie settings\n"
    "Accept all cookies\nShare on Facebook Share on Twitter\nRelated articles\nMost read\nAdvertisement\n"
    "Terms of use Privacy policy Contact us Sitemap\nCopyright 2024 All rights reserved"
)


def test_shipped_model_is_small_quantized_and_ranks_prose_above_chrome():
    assert DEFAULT_MODEL.suffix == ".ftz" and DEFAULT_MODEL.stat().st_size < 2_000_000
    assert (DEFAULT_MODEL.parent / "MODEL_CARD.md").is_file()
    model = QualityModel()  # "default"
    prose, chrome, empty = model.score([PROSE, CHROME, ""])
    assert prose > 0.5 > chrome
    assert 0.0 <= empty <= 1.0


@pytest.mark.shared_data
def test_shipped_model_ranks_held_out_news_above_forum_chrome(shared_data):
    samples = shared_data / "quality-text-samples"
    news = (samples / "positive" / "lee_background.cor").read_text().splitlines()[:20]
    forum = (samples / "negative" / "cs336-low_quality_cc.txt").read_text()
    scores = QualityModel().score(news + [forum])
    assert sum(s > scores[-1] for s in scores[:-1]) >= 18  # held-out news above the phpBB chrome


def test_unknown_positive_label_is_a_clear_error():
    with pytest.raises(ValueError, match="__label__hq"):
        QualityModel("default", positive_label="__label__good")


def test_percentile_cutoff_keeps_the_top_fraction_with_ties_broken_by_id():
    scores = [0.9, 0.5, 0.5, 0.5, 0.1, None, float("nan"), 0.7]
    ids = ["a", "d", "b", "c", "e", "f", "g", "h"]
    cut = percentile_cutoff(scores, ids, 0.5)  # ceil(8 × 0.5) = 4: a (0.9), h (0.7), b, c (0.5 by id)
    assert (cut.documents, cut.keep, cut.score, cut.id) == (8, 4, 0.5, "c")
    assert [i for s, i in zip(scores, ids) if cut.kept(s, i)] == ["a", "b", "c", "h"]
    order = list(range(8))
    random.Random(1).shuffle(order)
    assert percentile_cutoff([scores[i] for i in order], [ids[i] for i in order], 0.5) == cut
    assert keep_count(10, 0.1) == 1 and keep_count(11, 0.1) == 2 and keep_count(3, 1.0) == 3
    assert percentile_cutoff([], [], 0.1).keep == 0
    with pytest.raises(ValueError):
        keep_count(5, 0)


def test_auc_and_chunks():
    assert auc([0.9, 0.8], [0.1, 0.2]) == 1.0
    assert auc([0.5], [0.5]) == 0.5
    assert auc([0.1], [0.9]) == 0.0
    text = "\n".join(" ".join(["word"] * 30) for _ in range(3))
    assert [len(c.split()) for c in chunks(text, 40, 20)] == [40, 40]  # the 10-word tail is too short


def test_train_classifier_smoke_holds_out_by_source_with_user_labels(tmp_path):
    good = [PROSE.replace("1843", str(1800 + i)) for i in range(30)]
    bad = [CHROME.replace("2024", str(2000 + i)) for i in range(30)]
    (tmp_path / "good.txt").write_text("\n".join(g.replace("\n", " ") for g in good[:20]) + "\n")
    (tmp_path / "bad.txt").write_text("\n".join(b.replace("\n", " ") for b in bad[:20]) + "\n")
    (tmp_path / "good-heldout.txt").write_text("\n".join(g.replace("\n", " ") for g in good[20:]) + "\n")
    (tmp_path / "bad-heldout.jsonl").write_text("".join(json.dumps({"body": b}) + "\n" for b in bad[20:]))
    (tmp_path / "train.yaml").write_text(f"""
output: out/model.bin
positive_label: __label__good
negative_label: __label__bad
chunk_words: 200
min_chunk_words: 5
fasttext: {{lr: 0.5, epoch: 10, dim: 8, minCount: 1, bucket: 1000, seed: 0}}
sources:
  - {{name: g, kind: lines, path: good.txt, label: positive, split: train}}
  - {{name: b, kind: lines, path: bad.txt, label: negative, split: train}}
  - {{name: g-held, kind: lines, path: good-heldout.txt, label: positive, split: heldout}}
  - {{name: b-held, kind: jsonl, path: bad-heldout.jsonl, text_key: body, label: negative, split: heldout}}
""")
    report = train(load_config(tmp_path / "train.yaml"), log=lambda m: None)
    assert {r["source"]: r["documents"] for r in report["heldout"]} == {"g-held": 10, "b-held": 10}
    assert report["pooled"]["auc"] == 1.0
    assert json.loads((tmp_path / "out" / "model.bin.eval.json").read_text())["pooled"]["auc"] == 1.0
    model = QualityModel(tmp_path / "out" / "model.bin", positive_label="__label__good")
    assert set(model.labels) == {"__label__good", "__label__bad"}
    good_score, bad_score = model.score([good[25], bad[25]])
    assert good_score > bad_score


def test_train_config_needs_both_training_labels(tmp_path):
    (tmp_path / "t.yaml").write_text("output: m.bin\nsources:\n"
                                     "  - {name: a, kind: lines, path: a.txt, label: positive, split: train}\n"
                                     "  - {name: b, kind: lines, path: b.txt, label: negative, split: heldout}\n")
    with pytest.raises(ValueError, match="no negative source with split: train"):
        load_config(tmp_path / "t.yaml")


def test_top_fraction_run_keeps_exactly_the_top_and_is_recomputable(ray_local, tmp_path):
    """A real run over the demo web archive with the URL filter, per-language thresholds, the C4
    cleanup and the classifier's top-half cut: the ledger sums, the cut keeps exactly ceil(N/2) of
    the N documents that reached it, every kept score ≥ every cut score, and percentile_cutoff on the
    stored scores gives the same cut."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from gristmill.pipeline.engine.api import run
    from gristmill.schemas import columns as C
    from gristmill.schemas import reasons as R
    from gristmill.schemas.job import load_job

    from support.repo import REPO

    (tmp_path / "block.txt").write_text("shop.demo.test\n")
    (tmp_path / "job.yaml").write_text(f"""
name: cut
sources: [{{type: warc, paths: ["{REPO / 'jobs' / 'data' / 'demo-web.warc.gz'}"]}}]
batch_size: 16
language: {{keep: [en], min_score: 0.65, min_score_per_language: {{en: 0.7}}}}
quality: {{c4_clean_text: true}}
url_filter: {{blocklist_files: [block.txt]}}
classifier: {{model: default, top_fraction: 0.5}}
dedup: null
tokenize: {{vocab_size: 512, shard_tokens: 50000, val_fraction: 0.0}}
""")
    result = run(load_job(tmp_path / "job.yaml"), output=tmp_path / "run", log=lambda m: None, max_workers=2)
    curated = pa.concat_tables(pq.read_table(p) for p in sorted((tmp_path / "run" / "curated").glob("*.parquet")))
    rejected = pa.concat_tables(pq.read_table(p, columns=[C.ID, C.DROP_REASON, C.QUALITY_MODEL_SCORE, C.URL])
                                for p in sorted((tmp_path / "run" / "rejected").glob("*.parquet")))
    reasons = rejected[C.DROP_REASON].to_pylist()
    cut_ids = [i for i, r in zip(rejected[C.ID].to_pylist(), reasons) if r == R.QUALITY_NOT_TOP_FRACTION]
    cut_scores = [s for s, r in zip(rejected[C.QUALITY_MODEL_SCORE].to_pylist(), reasons) if r == R.QUALITY_NOT_TOP_FRACTION]
    kept_scores = curated[C.QUALITY_MODEL_SCORE].to_pylist()
    population = len(kept_scores) + len(cut_scores)
    assert population >= 10
    assert len(kept_scores) == math.ceil(population / 2)
    assert min(kept_scores) >= max(cut_scores)
    recomputed = percentile_cutoff(kept_scores + cut_scores, curated[C.ID].to_pylist() + cut_ids, 0.5)
    stats = json.loads((tmp_path / "run" / "stats.json").read_text())
    assert stats["classifier_cut"]["keep"] == recomputed.keep == len(kept_scores)
    assert stats["classifier_cut"]["score"] == recomputed.score and stats["classifier_cut"]["id"] == recomputed.id
    assert result.ledger.kept == curated.num_rows
    assert result.ledger.dropped[R.QUALITY_NOT_TOP_FRACTION] == len(cut_ids)
    # the URL filter dropped every shop page before extraction, with its match stored
    shop = [r for u, r in zip(rejected[C.URL].to_pylist(), reasons) if "shop.demo.test" in (u or "")]
    source_reasons = {R.NOT_RESPONSE, R.NOT_HTML, R.HTTP_STATUS_NOT_OK, R.REVISIT, R.EMPTY_PAYLOAD}
    assert set(shop) - source_reasons == {R.URL_BLOCKED}
    assert not any("shop.demo.test" in u for u in curated[C.URL].to_pylist())
    quality = next(s for s in stats["stages"] if s["stage"] == "quality")
    assert quality["counts"]["c4_cleaned_documents"] > 0


def test_the_cut_in_ray_tasks_equals_the_cut_in_one_process(ray_local, tmp_path):
    """cut_run with Ray (histogram, fetch and rewrite tasks over groups of parts, a 3-key fetch bound, so
    several passes) moves the same rows, with the same cutoff, as without Ray."""
    import ray

    import gristmill.pipeline.steps.quality_cut as Q
    from gristmill.pipeline.engine.cluster import init_ray
    from gristmill.schemas.job import RayConfig
    from support.curated import scored_documents, write_scored_parts

    docs = [(s, f"{i}:{d}") for i, (s, d) in enumerate(scored_documents(700, 3))]
    results = {}
    for name in ("tasks", "local"):
        write_scored_parts(tmp_path / name, docs, parts=6)
        if name == "tasks":
            assert ray.is_initialized()
            Q.ROWS_PER_TASK, saved = 150, Q.ROWS_PER_TASK  # several groups, so several tasks
            try:
                result = Q.cut_run(tmp_path / name, 0.25, log=lambda m: None, fetch_keys=3)
            finally:
                Q.ROWS_PER_TASK = saved
        else:
            ray.shutdown()
            try:
                result = Q.cut_run(tmp_path / name, 0.25, log=lambda m: None, fetch_keys=3)
            finally:  # the session's cluster again, started as conftest's ray_local starts it
                init_ray(RayConfig(num_cpus=2, object_store_memory_mb=256))
        files = sorted((tmp_path / name).rglob("*.parquet"))
        results[name] = (result.to_dict(), [(p.relative_to(tmp_path / name), p.read_bytes()) for p in files])
    assert results["tasks"] == results["local"]
    assert results["tasks"][0]["removed"] == 700 - math.ceil(700 * 0.25)
