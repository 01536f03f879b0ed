"""Gopher scores on small real texts, and the decide step: which reason fires, in which order."""

from __future__ import annotations

import pyarrow as pa
import pytest

from gristmill.filters.gopher import gopher_quality_scores
from gristmill.filters.textsplit import SplitText
from gristmill.pipeline.engine.api import default_stages
from gristmill.pipeline.stages.decide import decide, rules_of
from gristmill.pipeline.stages.language import ScoreLanguage
from gristmill.pipeline.stages.quality import ScoreQuality
from gristmill.schemas import columns as C
from gristmill.schemas import reasons as R
from gristmill.schemas.job import Job, LanguageConfig, QualityConfig

PROSE = (
    "The mill stood at the bend of the river, where the water ran fast enough to turn the wheel all year. "
    "Farmers brought their grain in carts and waited with the miller while the stones did their work. "
    "In winter the pond froze at the edges, and the children of the village skated there after school. "
    "The miller kept a ledger of every sack, and the ledger is now in the museum with the old scales."
)
# A second, different paragraph: PROSE twice would rightly fail the repetition rules.
MORE_PROSE = (
    "Every spring the river rose and the miller opened the sluice to spare the wheel from the flood. "
    "Travellers crossing the old bridge stopped to watch the water churn below the race. "
    "His daughter kept bees behind the granary and sold honey at the Saturday market in town. "
    "When the railway came, cheaper flour arrived by the wagonload and the mill slowly fell silent."
)
GOOD = PROSE + "\n" + MORE_PROSE
BULLETS = "\n".join([
    "- Two sacks of stoneground wholemeal flour from the mill by the weir.",
    "- A new canvas belt for the sack hoist, since the old one frayed in March.",
    "- Linseed oil and rags to treat the oak gears before the autumn grinding.",
    "- Spare cotter pins, a cold chisel and a box of galvanised roofing nails.",
    "- Beeswax candles for the loft, where the lantern is not allowed near the dust.",
    "- Seed potatoes, onion sets and broad beans for the allotment behind the granary.",
    "- A ledger with numbered pages, because the auditor asked for one last winter.",
    "- Paraffin for the stove in the office and matches kept in a tin.",
    "- Rat traps for the grain store, baited with peanut butter as the keeper suggests.",
    "- Postage stamps to send the quarterly accounts to the county office on Friday.",
])
HASHTAGS = GOOD + " " + " ".join(f"#mill{i}" for i in range(30))


def test_empty_and_one_word_documents_score_without_dividing_by_zero():
    empty = gopher_quality_scores(SplitText(""))
    assert (empty.word_count, empty.mean_word_length, empty.alpha_words_ratio, empty.bullet_lines_ratio) == (0, 0.0, 0.0, 0.0)
    one = gopher_quality_scores(SplitText("Hello"))
    assert (one.word_count, one.mean_word_length, one.alpha_words_ratio, one.stop_word_count) == (1, 5.0, 1.0, 0)


def test_prose_scores():
    s = gopher_quality_scores(SplitText(PROSE))
    assert 70 <= s.word_count <= 80 and 3.5 < s.mean_word_length < 5.5
    assert s.stop_word_count >= 4 and s.alpha_words_ratio > 0.85 and s.hash_word_ratio == 0


def _scored(texts, language="en"):
    rows = [{name: None for name in C.SOURCE_COLUMNS} | {C.ID: str(i), C.TEXT: t} for i, t in enumerate(texts)]
    table = pa.Table.from_pylist(rows, schema=C.SOURCE_SCHEMA)
    table = ScoreLanguage(LanguageConfig())(table)
    return ScoreQuality(QualityConfig())(table)


def _reasons(table, job=None):
    job = job or Job(name="t", sources=[{"paths": ["x"]}])
    return decide(table, rules_of(s for s in default_stages(job) if s.name in ("language", "quality")))[C.DROP_REASON].to_pylist()


def test_which_reason_fires():
    texts = [GOOD, "Too short to keep.", BULLETS, HASHTAGS,
             "Der Müller öffnet die Schleuse, und das Wasser dreht das Rad, das die Steine antreibt. " * 8]
    # A four-word text fails the repetition rules first (its first 2-gram is half its characters),
    # as in datatrove, whose repetition filter runs before the word count.
    assert _reasons(_scored(texts)) == [None, R.TOP_NGRAM_TOO_FREQUENT[2], R.TOO_MANY_BULLET_LINES, R.TOO_MANY_HASHES,
                                        R.LANGUAGE_NOT_KEPT]


def test_thresholds_come_from_the_job_and_none_disables_a_rule():
    table = _scored(["Too short to keep."])
    job = Job(name="t", sources=[{"paths": ["x"]}], quality={"min_words": None, "min_stop_words": None})
    assert _reasons(table, job) == [R.TOP_NGRAM_TOO_FREQUENT[2]]
    off = {"min_words": None, "min_stop_words": None, "c4_min_sentences": None, "fineweb_max_short_line_ratio": None, **{
        f"max_top_{n}gram_chars_ratio": None for n in (2, 3, 4)}}
    assert _reasons(table, Job(name="t", sources=[{"paths": ["x"]}], quality=off)) == [None]
    job = Job(name="t", sources=[{"paths": ["x"]}], quality={"min_words": 500})
    assert _reasons(_scored([GOOD]), job) == [R.TOO_FEW_WORDS]


def test_skip_reason_wins_and_quarantine_is_neither_kept_nor_dropped():
    table = _scored([GOOD, GOOD, GOOD])
    table = table.set_column(table.schema.get_field_index(C.SKIP_REASON), C.SKIP_REASON,
                             pa.array([None, R.NOT_HTML, None], pa.string()))
    table = table.set_column(table.schema.get_field_index(C.QUARANTINE_REASON), C.QUARANTINE_REASON,
                             pa.array([None, None, "clipped record"], pa.string()))
    out = decide(table, rules_of(s for s in default_stages(Job(name="t", sources=[{"paths": ["x"]}])) if s.name in ("language", "quality")))
    assert out[C.DROP_REASON].to_pylist() == [None, R.NOT_HTML, None]
    assert out[C.KEEP].to_pylist() == [True, False, False]


@pytest.mark.parametrize("reason", [r.name for r in R.all_reasons()])
def test_every_builtin_reason_is_named_for_a_failure(reason):
    assert not reason.startswith(("enough_", "gopher_")) and reason == reason.lower()
