"""Toxicity scoring with the shipped fastText model: document score, span mode, word list, the stage."""

from __future__ import annotations

from collections import Counter

import pyarrow as pa
import pytest

from gristmill.filters.toxicity import (ToxicityModel, WordListScorer, default_model_path, normalize, remove_spans,
                                        split_spans)
from gristmill.schemas import columns as C

# Offensive test strings: the classifier has to see them.
TOXIC = ["You are a worthless idiot and everyone here hates you.",
         "Shut the fuck up, you stupid bitch.",
         "Whoever wrote this article is a fucking moron."]
CLEAN = ["The weather was mild today and we walked along the river to the old mill.",
         "Add two cups of flour and a pinch of salt, then knead the dough for ten minutes.",
         "The council will publish the budget for the new library next spring."]


@pytest.fixture(scope="module")
def model() -> ToxicityModel:
    return ToxicityModel()


def test_shipped_model_is_small_and_quantized():
    path = default_model_path()
    assert path.endswith(".ftz")
    with open(path, "rb") as handle:
        assert len(handle.read()) < 2_000_000


def test_shipped_model_scores_toxic_high_and_clean_low(model):
    assert all(s > 0.5 for s in model.score_many(TOXIC)), model.score_many(TOXIC)
    assert all(s < 0.5 for s in model.score_many(CLEAN)), model.score_many(CLEAN)
    assert model.score("") == 0.0
    assert model.score(None) == 0.0


def test_user_model_loads_by_path_with_its_label(model, tmp_path):
    assert ToxicityModel(default_model_path(), "__label__toxic").score(TOXIC[0]) == model.score(TOXIC[0])
    clean = ToxicityModel(default_model_path(), "clean")  # any label the model has
    assert clean.score(TOXIC[0]) < 0.5
    with pytest.raises(ValueError, match="no label"):
        ToxicityModel(default_model_path(), "hateful")
    with pytest.raises(FileNotFoundError):
        ToxicityModel(tmp_path / "missing.ftz")


def test_normalize_strips_twitter_artefacts():
    assert normalize("RT @someone: I&amp;you #Happy http://t.co/x   Don\u2019t!!") == "i you happy don't"


def test_split_spans_by_sentence_and_line():
    text = "First one. Second one!\n\nThird line here"
    assert [text[s:e] for s, e in split_spans(text, "sentence")] == ["First one.", "Second one!", "Third line here"]
    assert [text[s:e] for s, e in split_spans(text, "line")] == ["First one. Second one!", "Third line here"]


def test_span_mode_removes_the_toxic_line_and_keeps_the_rest(model):
    text = f"{CLEAN[0]}\n{TOXIC[1]}\n{CLEAN[1]}"
    kept, removed = remove_spans(text, model.score_spans(text, "line"), 0.4)
    assert kept == f"{CLEAN[0]}\n\n{CLEAN[1]}"
    assert [(s.start, s.end) for s in removed] == [(len(CLEAN[0]) + 1, len(CLEAN[0]) + 1 + len(TOXIC[1]))]


def test_word_list_counts_whole_words_and_phrases(tmp_path):
    words = tmp_path / "en"
    words.write_text("darn\nheck of a\n")
    scorer = WordListScorer.from_file(words)
    assert scorer.count("Darn it, what a heck of a day. Darning socks is fine.") == 2
    assert scorer.count("") == 0


@pytest.mark.shared_data
def test_ldnoobw_list_loads_by_path(shared_data):
    scorer = WordListScorer.from_file(shared_data / "lexicons" / "ldnoobw" / "en")
    assert scorer.count(TOXIC[1]) >= 1 and all(scorer.count(t) == 0 for t in CLEAN)


def _table(texts):
    n = len(texts)
    return pa.table({C.TEXT: pa.array(texts, pa.large_string()), C.SKIP_REASON: pa.nulls(n, pa.string()),
                     C.QUARANTINE_REASON: pa.nulls(n, pa.string())})


def test_stage_span_mode_records_edits_and_scores_what_remains(tmp_path):
    from gristmill.pipeline.stages.decide import decide
    from gristmill.pipeline.stages.toxicity import ScoreToxicity
    from gristmill.schemas.job import ToxicityConfig

    words = tmp_path / "en"
    words.write_text("fuck\nidiot\n")
    stage = ScoreToxicity(ToxicityConfig(span_unit="line", word_list_file=str(words), max_toxic_words=0))
    mixed = f"{CLEAN[0]}\n{TOXIC[1]}\n{CLEAN[1]}"
    counts = Counter()
    stage.setup()
    out = stage.process(_table([mixed, CLEAN[2], TOXIC[0]]), counts).to_pylist()
    assert out[0][C.TEXT] == f"{CLEAN[0]}\n\n{CLEAN[1]}" and out[0][C.TOXIC_SPAN_COUNT] == 1
    assert out[0][C.TEXT_EDITS] == [{"stage": "toxicity", "kind": "toxic_span", "start": len(CLEAN[0]) + 1,
                                     "end": len(CLEAN[0]) + 1 + len(TOXIC[1])}]
    assert out[0][C.TOXICITY_SCORE] < 0.5 and out[0][C.TOXIC_WORD_COUNT] == 0
    assert out[1][C.TOXIC_SPAN_COUNT] == 0 and out[1][C.TEXT] == CLEAN[2]
    # A one-line toxic document is cut down to nothing: nothing toxic is left to score.
    assert out[2][C.TEXT] == "" and out[2][C.TOXICITY_SCORE] == 0.0
    assert counts["toxic_spans_removed"] == 2 and counts["documents_with_toxic_spans"] == 2

    doc_mode = ScoreToxicity(ToxicityConfig(word_list_file=str(words), max_toxic_words=0))
    doc_mode.setup()
    table = doc_mode.process(_table([TOXIC[0], CLEAN[0], "What an idiot design, but the colours are nice."]), Counter())
    reasons = decide(table, doc_mode.rules())[C.DROP_REASON].to_pylist()
    assert reasons[0] == "toxic" and reasons[1] is None and reasons[2] in ("toxic", "toxic_words")
    assert table[C.TOXIC_SPAN_COUNT].to_pylist() == [None, None, None]  # span mode off


def test_auc_and_heldout_split_are_exact_and_seeded():
    from gristmill.filters.training.toxicity_train import CLEAN as C_, TOXIC as T_, Example, auc, split_heldout

    assert auc([0.1, 0.4, 0.35, 0.8], [False, False, True, True]) == 0.75  # sklearn's roc_auc_score example
    assert auc([0.5, 0.5], [True, False]) == 0.5
    examples = [Example(f"t{i}", T_ if i % 4 else C_, "neither" if i % 4 == 0 else "offensive_language") for i in range(100)]
    train, heldout = split_heldout(examples, seed=3)
    assert len(heldout) == 20 and sum(e.label == C_ for e in heldout) == 5  # stratified
    assert split_heldout(examples, seed=3) == (train, heldout) and split_heldout(examples, seed=4)[1] != heldout
    assert not {e.text for e in train} & {e.text for e in heldout}


@pytest.mark.shared_data
def test_davidson_loads_with_binary_labels(shared_data):
    from gristmill.filters.training.toxicity_train import TOXIC as T_, load_davidson

    rows = load_davidson(shared_data / "toxicity-davidson")
    assert len(rows) >= 24_700 and sum(r.label == T_ for r in rows) == sum(r.group != "neither" for r in rows)
    assert not any("&amp;" in r.text or "@" in r.text or "://" in r.text for r in rows)
