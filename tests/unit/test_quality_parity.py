"""Parity with datatrove: its own GopherRepetitionFilter, GopherQualityFilter,
C4QualityFilter(filter_no_terminal_punct=False) and FineWebQualityFilter, run in sequence as FineWeb
runs them, against gristmill's ScoreQuality + decide with the default job, on real English text:

- every HTML page of ../shared/data/warc-samples, extracted as the extract stage does and kept when
  py3langid says English; the quality-text-samples (news, CCNet, WikiText, Wikipedia markup,
  boilerplate full pages); the demo web's pages (tests/support/quality_corpus.py, capped to keep this fast);
- documents built to sit at each rule's threshold (`boundary_documents`).

Same keep/drop and the same first failing reason on >= 99% of documents, with datatrove keeping at
least 30%. Every disagreement must belong to one of the classes explained below.
"""

from __future__ import annotations

import collections
import os

import pyarrow as pa
import pytest
from datatrove.pipeline.filters.gopher_repetition_filter import find_all_duplicate
from datatrove.utils.text import split_into_words

from gristmill.filters.c4 import c4_lines
from gristmill.filters.textsplit import SplitText
from gristmill.pipeline.engine.api import default_stages
from gristmill.pipeline.stages.decide import decide, rules_of
from gristmill.pipeline.stages.quality import ScoreQuality
from gristmill.schemas import columns as C
from gristmill.schemas import reasons as R
from gristmill.schemas.job import Job

from support.quality_corpus import TEST_CAPS, boundary_documents, datatrove_reasons, english_corpus, lee_sentences

pytestmark = pytest.mark.shared_data
JOB = Job(name="parity", sources=[{"paths": ["x"]}])


def gristmill_reasons(texts: list[str]) -> tuple[list[str | None], pa.Table]:
    names = dict.fromkeys([*C.SOURCE_COLUMNS, C.TEXT, C.LANGUAGE, C.LANGUAGE_SCORE])
    rows = [{n: None for n in names} | {C.ID: str(i), C.TEXT: t, C.LANGUAGE: "en", C.LANGUAGE_SCORE: 1.0}
            for i, t in enumerate(texts)]
    table = ScoreQuality(JOB.quality)(pa.Table.from_pylist(rows, schema=C.schema_of(names)))
    table = decide(table, rules_of(s for s in default_stages(JOB) if s.name in ("language", "quality")))
    return table[C.DROP_REASON].to_pylist(), table


# --- the explained disagreement classes -------------------------------------------------------------

def curly_bracket_before_lorem_ipsum(text: str, theirs, ours, row) -> bool:
    """datatrove stops C4 at the first line with a curly bracket or "lorem ipsum" and names that one;
    we count both and name lorem ipsum first. Both drop the document."""
    return (theirs, ours) == (R.CONTAINS_CURLY_BRACKET, R.CONTAINS_LOREM_IPSUM) and row[C.C4_CURLY_BRACKET_LINE_COUNT] > 0


def glued_ngrams(text: str, theirs, ours, row) -> bool:
    """datatrove compares duplicate n-grams as their words glued without spaces, so "in tothe old mill"
    repeats "into the old mill"; we compare the word sequences (a bug of theirs we do not copy)."""
    words = split_into_words(text, "en")
    return any(find_all_duplicate(words, n) / len(text) != row[C.DUPLICATE_NGRAM_CHARS_RATIO[n]]
               for n in C.DUPLICATE_NGRAM_CHARS_RATIO)


EXPLAINED = [curly_bracket_before_lorem_ipsum, glued_ngrams]


@pytest.fixture(scope="module")
def parity(shared_data):
    docs = list(english_corpus(shared_data, **TEST_CAPS)) + boundary_documents(lee_sentences(shared_data))
    texts = [text for _, text in docs]
    theirs = datatrove_reasons(texts, workers=min(2, os.cpu_count() or 1))
    ours, table = gristmill_reasons(texts)
    return docs, theirs, ours, table.to_pylist()


def test_same_decision_and_first_reason_as_datatrove(parity):
    docs, theirs, ours, rows = parity
    n = len(docs)
    same = sum(a == b for a, b in zip(theirs, ours))
    kept = theirs.count(None)
    sources = collections.Counter(source.split(":")[0] for source, _ in docs)
    print(f"\nparity: {same}/{n} = {same / n:.2%} same first reason; datatrove keeps {kept}/{n} = {kept / n:.0%}; "
          f"documents by source: {dict(sources)}")
    assert n > 600 and sources["boundary"] > 100
    assert kept >= 0.3 * n
    assert same >= 0.99 * n
    unexplained = []
    for (source, text), a, b, row in zip(docs, theirs, ours, rows):
        if a != b:
            classes = [f.__name__ for f in EXPLAINED if f(text, a, b, row)]
            print(f"  {source}: datatrove {a}, gristmill {b}: {classes or 'UNEXPLAINED'}")
            if not classes:
                unexplained.append((source, a, b))
    assert not unexplained


def test_each_explained_class_is_real(parity):
    # The built documents of both classes do disagree, for the stated reason (so the classes above are
    # not dead code), and they are the only disagreements among the built documents.
    docs, theirs, ours, rows = parity
    disagreements = {source for (source, _), a, b in zip(docs, theirs, ours) if a != b and source.startswith("boundary:")}
    assert disagreements == {"boundary:curly_bracket_then_lorem_ipsum", "boundary:glued_ngrams"}


def test_every_rule_fires_somewhere_in_the_set(parity):
    _, theirs, ours, _ = parity
    fired = set(ours)
    quality_reasons = {r.name for r in R.all_reasons() if r.stage == "quality"} - {R.TOO_MANY_WORDS, R.CONTAINS_BAD_WORDS}
    missing = quality_reasons - fired
    # 100,000-word documents and bad-word lists are covered in test_quality_rules.py
    assert not missing, missing


def test_c4_view_equals_datatrove_text(parity, shared_data):
    """The lines C4 keeps (what FineWeb's rules read) are the text datatrove's C4 filter hands on."""
    from datatrove.data import Document

    from support.quality_corpus import datatrove_filters

    c4 = dict(datatrove_filters())["c4"]
    docs = parity[0]
    checked = 0
    for source, text in docs[::2]:  # half of them: datatrove's sentence splitting is slow
        doc = Document(text=text, id="0")
        if c4.filter(doc) is True:
            assert "\n".join(c4_lines(SplitText(text)).kept).strip() == doc.text, source
            checked += 1
    assert checked > 200
