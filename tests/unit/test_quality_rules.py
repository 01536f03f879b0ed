"""Each heuristic rule on small texts: which reason fires first, checked against datatrove's own
filters on the same text (GopherRepetition, GopherQuality, C4Quality(filter_no_terminal_punct=False),
FineWebQuality, in FineWeb's order). Includes the empty and one-word documents."""

from __future__ import annotations

import pyarrow as pa
import pytest
from gristmill.filters.c4 import BadWords, c4_lines
from gristmill.filters.fineweb import fineweb_scores
from gristmill.filters.gopher import gopher_quality_scores, gopher_repetition_scores
from gristmill.filters.textsplit import SplitText
from gristmill.pipeline.engine.api import default_stages
from gristmill.pipeline.stages.decide import decide, rules_of
from gristmill.pipeline.stages.quality import ScoreQuality
from gristmill.schemas import columns as C
from gristmill.schemas import reasons as R
from gristmill.schemas.job import Job, QualityConfig

from support.quality_corpus import _LONG_TRIPLES, datatrove_reason

# Six distinct paragraphs of ordinary prose (two sentences each): the base every case edits.
PARAGRAPHS = [
    "The mill stood at the bend of the river, where the water ran fast enough to turn the wheel all year. "
    "Farmers brought their grain in carts and waited with the miller while the stones did their work.",
    "In winter the pond froze at the edges, and the children of the village skated there after school. "
    "The miller kept a ledger of every sack, and that ledger is now in the museum with the old scales.",
    "Every spring the river rose and the miller opened the sluice to spare the wheel from the flood. "
    "Travellers crossing the old bridge stopped to watch the water churn below the race.",
    "His daughter kept bees behind the granary and sold honey at the Saturday market in town. "
    "She also repaired sacks by lamplight, charging a penny for each patch she sewed.",
    "When the railway came, cheaper flour arrived by the wagonload and the mill slowly fell silent. "
    "For thirty years the building served as a barn, then as a store for a builder's timber.",
    "A trust bought the ruin in 1978 and volunteers rebuilt the wheel from drawings found in an attic. "
    "Today it grinds a few tons a year, mostly for bakers who want to tell its story to customers.",
]
GOOD = "\n".join(PARAGRAPHS)

def scored_table(texts, quality: QualityConfig = QualityConfig()) -> pa.Table:
    rows = [{name: None for name in C.SOURCE_COLUMNS} | {C.ID: str(i), C.TEXT: t, C.LANGUAGE: "en", C.LANGUAGE_SCORE: 1.0}
            for i, t in enumerate(texts)]
    schema = C.schema_of(dict.fromkeys([*C.SOURCE_COLUMNS, C.TEXT, C.LANGUAGE, C.LANGUAGE_SCORE]))
    return ScoreQuality(quality)(pa.Table.from_pylist(rows, schema=schema))


def reasons(texts, **quality) -> list[str | None]:
    job = Job(name="t", sources=[{"paths": ["x"]}], quality=quality)
    return decide(scored_table(texts, job.quality), rules_of(s for s in default_stages(job) if s.name in ("language", "quality")))[C.DROP_REASON].to_pylist()


def lines(*parts: str) -> str:
    return "\n".join(parts)


S = PARAGRAPHS  # shorthand for building cases
CASES = {
    None: GOOD,
    R.TOO_MANY_DUPLICATE_PARAGRAPHS: "\n\n".join([*S, *["Share this story."] * 5]),
    R.TOO_MANY_DUPLICATE_PARAGRAPH_CHARS: "\n\n".join([*S, S[0], S[1]]),
    R.TOO_MANY_DUPLICATE_LINES: lines(*S, *["Share this story."] * 5),
    R.TOO_MANY_DUPLICATE_LINE_CHARS: lines(*S, S[0], S[1]),
    R.TOP_NGRAM_TOO_FREQUENT[2]: " ".join(
        f"New York {verb} every {noun}." for verb, noun in zip(
            ["sleeps", "wakes", "works", "sings", "eats", "walks", "reads", "talks", "plays", "waits", "builds", "shines"],
            ["night", "morning", "week", "summer", "lunch", "block", "paper", "hour", "season", "winter", "year", "day"])),
    R.TOP_NGRAM_TOO_FREQUENT[3]: S[0] + " " + " ".join(
        f"The United States {verb}." for verb in ["agreed", "objected", "voted", "abstained", "signed", "waited",
                                                   "protested", "relented", "insisted", "complained", "listened"]),
    # "waterwheels at the old watermill" in 8 lines: long outer words keep the top 4-gram below its limit.
    R.TOO_MANY_DUPLICATE_NGRAMS[5]: lines(*S[:4], *[f"{w} waterwheels at the old watermill {v}." for w, v in zip(
        ("North", "South", "East", "West", "Upstream", "Downstream", "Inland", "Seaward"),
        ("froze", "rose", "fell", "ran", "dried", "flooded", "burst", "slowed"))]),
    R.TOO_FEW_WORDS: ("Our mill is closed today because the millwright is replacing two worn cogs in the pit wheel. "
                      "Visitors may still walk along the river path, and the tea room serves lunch as usual. "
                      "We expect to reopen on Monday morning. Sorry for any trouble this causes."),  # 49 words
    R.TOP_NGRAM_TOO_FREQUENT[4]: S[0] + " " + " ".join(
        f"At the end of the {noun}, we {verb}." for noun, verb in zip(
            ["day", "week", "month", "year", "season", "match", "film", "road", "line", "war"],
            ["rested", "paid", "moved", "voted", "won", "cried", "left", "slept", "waited", "wrote"])),
    R.WORDS_TOO_SHORT: " ".join([
        "I am not sure if he is in or out of it.", "We go up to the top as we do on a day off.",
        "So is it my car or is it his van?", "Do as I do and be on my side.", "Oh no, he got a bad cut on his leg.",
        "My pal Ed has a red cap and a big dog.", "Can we sit by you at six or so?", "It was a hot day in May.",
        "To me, a cup of tea is all I need.", "Go on, try it, you may win a lot.", "Is Al at his gym?"]),
    R.WORDS_TOO_LONG: " ".join([
        "Incomprehensibilities notwithstanding, electroencephalographic characterisations overwhelmed administrators.",
        "Interdepartmental representatives reconsidered counterproductive institutionalisation arrangements.",
        "Telecommunications manufacturers simultaneously commercialised revolutionary microprocessors.",
        "Environmentalists systematically characterised unsustainable industrialisation consequences.",
        "Parliamentarians unanimously congratulated extraordinarily conscientious superintendents.",
        "Pharmaceutical conglomerates acknowledged disproportionately uncompetitive distribution.",
        "Neurophysiologists painstakingly differentiated electrochemical communication pathways.",
        "Constitutionalists vociferously contradicted counterrevolutionary propagandists.",
        "Multidisciplinary collaborations encouraged internationalisation of the laboratories.",
        "Archaeologists meticulously reconstructed Mesopotamian administrative correspondence.",
        "Thermodynamically unfavourable transformations necessitated supplementary catalysts.",
        "Comprehensive reorganisation and the decentralisation of responsibilities followed.",
    ]),
    R.TOO_MANY_HASHES: GOOD + " " + " ".join(f"#mill{i}" for i in range(30)),
    R.TOO_MANY_ELLIPSES: GOOD + " " + " ".join(f"{w}..." for w in (
        "wait", "listen", "there", "again", "slowly", "now", "almost", "quiet", "hush", "perhaps", "maybe", "soon",
        "later", "then", "still", "yes", "gone", "over", "enough", "done", "closer", "nearly", "breathe", "look",
        "listen", "steady", "ready", "go", "stop", "careful", "gently")),
    R.TOO_MANY_BULLET_LINES: lines(*[f"- {p}" for p in S]),
    R.TOO_MANY_ELLIPSIS_LINES: lines(*[p[:-1] + "..." for p in S[:2]], *S[2:]),
    R.TOO_FEW_ALPHA_WORDS: GOOD + " " + " ".join(str(1900 + i) for i in range(80)),
    R.TOO_FEW_STOP_WORDS: " ".join([
        "Millers grind grain daily in small batches.", "Bakers buy flour every Tuesday morning.",
        "Farmers sell barley locally at fair prices.", "Village children skate on frozen ponds in winter.",
        "Travellers admire old bridges near quiet rivers.", "Beekeepers harvest honey behind granaries each August.",
        "Volunteers rebuilt one wheel from drawings found in an attic.", "Railways brought cheaper flour by wagonload.",
        "Builders stored timber inside for thirty years.", "Museums now display ledgers, scales, sacks, lanterns.",
        "Visitors buy scones, oats, honey, postcards.", "Everyone enjoys free parking behind our granary."]),
    R.CONTAINS_LOREM_IPSUM: lines(*S, "Lorem ipsum dolor sit amet, consectetur adipiscing elit."),
    R.CONTAINS_CURLY_BRACKET: lines(*S, "The template said {name} where the miller's name should go."),
    R.TOO_FEW_SENTENCES: lines("The mill is open from nine until five, Monday to Saturday, and closed on Sundays.",
                               "Groups of more than ten visitors should book a guided tour with the volunteers in advance.",
                               "Flour ground on the premises is sold in the shop, together with honey, oats and a short history.",
                               "The tea room serves scones baked with our own flour, and the garden is open to everyone."),
    R.TOO_FEW_PUNCTUATED_LINES: lines(*[p.rstrip(".") + " and more" for p in S]),
    R.TOO_MANY_SHORT_LINES: lines(*S[:3], *[f"{w} flour from {place}." for w, place in zip(
        ["Rye", "Spelt", "Wheat", "Barley", "Oat", "Emmer", "Einkorn"],
        ["Kent", "Devon", "Norfolk", "Essex", "Fife", "Cork", "Powys"])]),
    R.TOO_MUCH_DUPLICATE_LINE_TEXT: lines(*S, "Read more about the mill.", "Read more about the mill."),
    # Lines of three long words (not short, kept by C4), a few of them punctuated.
    R.TOO_MANY_LINE_BREAKS: lines("Minutes of the meeting.", "Notes and the agenda.", "Reports to follow.",
                                  "Decisions are final.", *_LONG_TRIPLES[:25]),
}


def test_a_score_equal_to_its_threshold_passes():
    # 3 of 10 paragraphs repeat an earlier one: exactly max_duplicate_paragraphs_ratio (0.3), which
    # datatrove keeps too (it drops above the threshold, not at it).
    text = "\n\n".join([*S, *["Share this story."] * 4])
    assert scored_table([text])[C.DUPLICATE_PARAGRAPHS_RATIO].to_pylist() == [0.3]
    assert reasons([text]) == [datatrove_reason(text)] == [R.TOO_MUCH_DUPLICATE_LINE_TEXT]  # a later rule


@pytest.mark.parametrize("expected", list(CASES), ids=lambda r: r or "kept")
def test_which_reason_fires_first(expected):
    text = CASES[expected]
    assert reasons([text]) == [expected]
    assert datatrove_reason(text) == expected  # the same first failure as datatrove


def test_empty_and_one_word_documents():
    # Empty: datatrove's repetition filter says "empty"; every score here is 0 and nothing divides by
    # zero. The pipeline never scores it: extraction drops empty text as no_main_text first.
    empty = SplitText("")
    assert set(vars(gopher_repetition_scores(empty)).values()) == {0.0}
    assert gopher_quality_scores(empty).word_count == 0
    assert vars(fineweb_scores(c4_lines(empty))) == dict.fromkeys(vars(fineweb_scores(c4_lines(empty))), 0.0)
    assert reasons([""]) == [R.TOO_FEW_WORDS]
    # One word: its only "n-gram" is shorter than 2 words, so the repetition rules pass, and the word
    # count fails, as in datatrove.
    one = SplitText("Hello")
    assert gopher_repetition_scores(one).top_2gram_chars_ratio == 0.0
    assert (gopher_quality_scores(one).word_count, gopher_quality_scores(one).mean_word_length) == (1, 5.0)
    assert reasons(["Hello"]) == [R.TOO_FEW_WORDS] == [datatrove_reason("Hello")]


def test_c4_line_rules_match_datatrove_semantics():
    # javascript lines are dropped before the curly-bracket check; lorem ipsum counts only in lines
    # with at least 3 words; citations are cut before counting sentences.
    split = SplitText(lines(*S, "Please enable JavaScript {to view} this page.", "lorem ipsum",
                            "The wheel was rebuilt in 1978.[1] It still turns.[citation needed]"))
    c4 = c4_lines(split)
    assert (c4.curly_bracket_line_count, c4.lorem_ipsum_line_count) == (0, 0)
    assert c4.kept[-1] == "The wheel was rebuilt in 1978. It still turns."
    assert c4.sentence_count == 12 + 2


def test_thresholds_and_switches_come_from_the_job():
    text = CASES[R.CONTAINS_CURLY_BRACKET]
    assert reasons([text], c4_drop_curly_bracket=False) == [None]
    assert reasons([CASES[R.TOO_MANY_SHORT_LINES]], fineweb_max_short_line_ratio=None) == [None]
    assert reasons([GOOD], max_duplicate_5gram_chars_ratio=0.0) == [None]  # GOOD has no repeated 5-gram
    assert reasons([GOOD], c4_min_sentences=13) == [R.TOO_FEW_SENTENCES]  # GOOD has 12


def test_too_many_words():
    assert reasons([GOOD], max_words=200) == [R.TOO_MANY_WORDS]  # GOOD has 209 words


def test_bad_words_from_a_file(tmp_path):
    words = tmp_path / "bad.txt"
    words.write_text("darn\nheck it\n")
    assert BadWords.from_file(words).count("Darn! Oh, heck it. Heckle and darning are fine.") == 2
    text = GOOD + " Darn, said the miller."
    assert reasons([text], c4_bad_words_file=str(words)) == [R.CONTAINS_BAD_WORDS]
    assert reasons([text], c4_bad_words_file=str(words), c4_max_bad_words=1) == [None]
    assert reasons([text]) == [None]  # no list, no rule
    assert scored_table([text])[C.C4_BAD_WORD_COUNT].to_pylist() == [None]
