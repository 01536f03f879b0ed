"""Decontamination on small real texts: the n-gram normalization, the index, the stage in both modes.

No Ray here (the stage is called directly); the end-to-end run is in test_optout_run.py.
"""

from __future__ import annotations

import pickle
from collections import Counter

import lxml.html
import numpy as np
import pyarrow as pa
import pytest

from gristmill.filters.ngrams import ngram_hashes, ngram_hashes_batch, word_spans, words_of
from gristmill.pipeline.lists.decontam_index import EvalSetError, build_index
from gristmill.pipeline.stages.decide import decide
from gristmill.pipeline.stages.decontaminate import Decontaminate
from gristmill.schemas import columns as C
from gristmill.schemas import reasons as R
from gristmill.schemas.job import DecontaminateConfig, EvalSetConfig, JobError, load_job

from support.optout import CLEAN_PAGE, COMMON_PHRASES_PAGE, GSM8K_STYLE, PLANTED_PAGE, write_eval_sets


def page_text(html: str) -> str:
    return lxml.html.fromstring(html).text_content()


def config(folder, n=13, mode="drop") -> DecontaminateConfig:
    paths = write_eval_sets(folder)
    return DecontaminateConfig(n=n, mode=mode, eval_sets=[
        EvalSetConfig(name="gsm8k-style", path=str(paths["gsm8k-style"]), text_keys=["question", "answer"]),
        EvalSetConfig(name="mmlu-style", path=str(paths["mmlu-style"]), text_keys=["question", "choices"]),
        EvalSetConfig(name="notes", path=str(paths["notes"])),
    ])


def table_of(texts: list[str | None]) -> pa.Table:
    n = len(texts)
    return pa.table({
        C.ID: pa.array([f"doc{i}" for i in range(n)], pa.string()),
        C.TEXT: pa.array(texts, C.TYPES[C.TEXT]),
        C.TEXT_EDITS: pa.array([[] if t is not None else None for t in texts], C.TYPES[C.TEXT_EDITS]),
        C.SKIP_REASON: pa.array([None if t is not None else "no_main_text" for t in texts], pa.string()),
        C.QUARANTINE_REASON: pa.nulls(n, pa.string()),
    })


def test_words_are_lowercased_with_punctuation_stripped():
    hashes, _ = ngram_hashes_batch(["The answer is (B).", "the ANSWER is b", "the answer, is: b!"], 4)
    assert len(hashes) == 3 and len(set(hashes.tolist())) == 1
    words, spans = word_spans("Hello, World! It's 3.5")
    assert words == [b"hello", b"world", b"it", b"s", b"3", b"5"] and spans[1] == (7, 12)
    assert words_of("Hello, World! It's 3.5") == words
    assert words_of("Caf\u00e9 \u2014 na\u00efve\u2019s \u0130stanbul_2") == word_spans("Caf\u00e9 \u2014 na\u00efve\u2019s \u0130stanbul_2")[0]
    for html in (PLANTED_PAGE, COMMON_PHRASES_PAGE, CLEAN_PAGE):  # the fast path's words are the regex's
        assert words_of(page_text(html)) == word_spans(page_text(html))[0]
    # the batch path and the per-text path give the same n-grams, and none crosses into the next text
    text = page_text(PLANTED_PAGE)
    batch, doc = ngram_hashes_batch([text, "short text"], 13)
    assert np.array_equal(batch, ngram_hashes(word_spans(text)[0], 13)) and set(doc.tolist()) == {0}


def test_index_holds_every_set_and_counts_short_items(tmp_path):
    index = build_index(config(tmp_path))
    assert index.names == ["gsm8k-style", "mmlu-style", "notes"]
    assert index.sets["gsm8k-style"]["items"] == 4  # two questions, two answers
    assert index.sets["mmlu-style"]["items"] == 5  # one question, four choices
    assert index.sets["notes"] == {"items": 2, "items_too_short": 1, "ngrams": 10, "bytes": index.sets["notes"]["bytes"]}
    assert np.all(np.diff(index.keys.astype(np.float64)) > 0)  # sorted, unique
    assert index.nbytes == 16 * len(index.keys) + len(index.filter) and len(index.filter) * 8 >= 8 * len(index.keys)


def test_planted_question_is_caught_and_common_phrases_are_not(tmp_path):
    stage = Decontaminate(config(tmp_path))
    planted, common, clean = page_text(PLANTED_PAGE), page_text(COMMON_PHRASES_PAGE), page_text(CLEAN_PAGE)
    # the common page does share shorter phrases with the question: 4-grams, never a 13-gram
    question_4grams = set(ngram_hashes(word_spans(GSM8K_STYLE[0]["question"])[0], 4).tolist())
    assert question_4grams & set(ngram_hashes(word_spans(common)[0], 4).tolist())

    counts = Counter()
    stage.setup()
    out = stage.process(table_of([planted, common, clean, None]), counts)
    assert out[C.CONTAMINATED_BY].to_pylist() == ["gsm8k-style", None, None, None]
    hits = out[C.CONTAMINATION_NGRAM_COUNT].to_pylist()
    assert hits[0] >= 10 and hits[1:] == [0, 0, None]
    assert counts["gsm8k-style:documents_hit"] == 1 and counts["gsm8k-style:ngrams_matched"] == hits[0]
    assert counts["mmlu-style:documents_hit"] == 0 and counts["documents_checked"] == 3

    decided = decide(out, stage.rules())
    assert decided[C.DROP_REASON].to_pylist() == ["contaminated:gsm8k-style", None, None, "no_main_text"]
    assert R.get("contaminated:gsm8k-style").stage == "decontaminate"


def test_a_smaller_n_catches_the_common_phrases(tmp_path):
    stage = Decontaminate(config(tmp_path, n=4))
    stage.setup()
    out = stage.process(table_of([page_text(COMMON_PHRASES_PAGE)]), Counter())
    assert out[C.CONTAMINATED_BY].to_pylist() == ["gsm8k-style"]


def test_remove_spans_cuts_only_the_overlap_and_records_it(tmp_path):
    stage = Decontaminate(config(tmp_path, mode="remove_spans"))
    assert stage.rules() == [] and C.TEXT in stage.writes
    stage.setup()
    planted = page_text(PLANTED_PAGE)
    counts = Counter()
    out = stage.process(table_of([planted, page_text(CLEAN_PAGE)]), counts)
    cleaned = out[C.TEXT][0].as_py()
    edits = out[C.TEXT_EDITS][0].as_py()
    # "$2 each" on the sheet, "2 dollars each" on the page: the extra word splits the overlap in two
    assert len(edits) == 2 and all(e["kind"] == "contaminated:gsm8k-style" and e["stage"] == "decontaminate" for e in edits)
    assert planted[edits[0]["start"]:].startswith("MARIA bakes 3 trays")
    assert planted[:edits[-1]["end"]].endswith("selling muffins in one week")
    assert planted[edits[0]["end"]:edits[1]["start"]].strip() == "dollars"
    assert cleaned == planted[:edits[0]["start"]] + planted[edits[0]["end"]:edits[1]["start"]] + planted[edits[1]["end"]:]
    assert "trays of muffins" not in cleaned
    assert "Last night my daughter" in cleaned and "The lesson we took away" in cleaned
    assert out[C.TEXT][1].as_py() == page_text(CLEAN_PAGE) and out[C.TEXT_EDITS][1].as_py() == []
    assert counts["gsm8k-style:spans_removed"] == 2
    assert counts["gsm8k-style:chars_removed"] == sum(e["end"] - e["start"] for e in edits) == len(planted) - len(cleaned)
    again = stage.process(table_of([cleaned]), Counter())  # nothing left to find
    assert again[C.CONTAMINATION_NGRAM_COUNT].to_pylist() == [0]


def test_the_stage_pickles_with_its_index(tmp_path):
    stage = Decontaminate(config(tmp_path))
    copy = pickle.loads(pickle.dumps(stage))  # no Ray running: the index travels inside the state
    copy.setup()
    assert np.array_equal(copy.index.keys, stage.index.keys)


def test_unreadable_eval_set_names_file_and_line(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "fine"}\n{not json\n')
    with pytest.raises(EvalSetError, match=r"bad.jsonl:2: not valid JSON"):
        build_index(DecontaminateConfig(eval_sets=[EvalSetConfig(name="bad", path=str(bad), text_keys=["question"])]))
    wrong_key = tmp_path / "wrong.jsonl"
    wrong_key.write_text('{"prompt": "x"}\n')
    with pytest.raises(EvalSetError, match=r"wrong.jsonl:1: none of the text keys"):
        build_index(DecontaminateConfig(eval_sets=[EvalSetConfig(name="w", path=str(wrong_key))]))


def test_job_yaml_validates_and_resolves_paths(tmp_path):
    job = tmp_path / "job.yaml"
    job.write_text("name: j\nsources: [{paths: [x.warc.gz]}]\n"
                   "optout: {lists: [lists/optout.txt], entries: ['domain:example.com']}\n"
                   "decontaminate: {n: 8, mode: remove_spans, eval_sets: [{name: gsm, path: evals/gsm.jsonl, text_keys: [question]}]}\n")
    loaded = load_job(job)
    assert loaded.optout.lists == [str(tmp_path / "lists" / "optout.txt")]
    assert loaded.decontaminate.eval_sets[0].path == str(tmp_path / "evals" / "gsm.jsonl") and loaded.decontaminate.n == 8
    job.write_text("name: j\nsources: [{paths: [x.warc.gz]}]\n"
                   "decontaminate: {eval_sets: [{name: a, path: a.txt}, {name: a, path: b.txt}], modes: drop}\n")
    with pytest.raises(JobError, match="decontaminate.modes: unknown key"):
        load_job(job)
