"""Representation tagging, identity attack, the bias audit, and the before/after report on a real run."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from gristmill.filters.bias_audit import audit, load_audit
from gristmill.filters.identity import IdentityLexicon, measured_accuracy
from gristmill.filters.toxicity import ToxicityModel
from gristmill.schemas import columns as C


@pytest.fixture(scope="module")
def lexicon() -> IdentityLexicon:
    return IdentityLexicon.default()


@pytest.fixture(scope="module")
def model() -> ToxicityModel:
    return ToxicityModel()


def test_tags_pronouns_and_descriptors_per_axis(lexicon):
    tags = lexicon.tag("She met two Muslim women and a deaf engineer; their talk was about Canadian rivers.")
    assert tags.pronouns == ("she", "they")
    # "Canadian rivers" names no people: no nationality tag (issue 25)
    assert tags.descriptors == {"ability": ("deaf",), "gender_and_sex": ("woman",), "religion": ("muslim",)}
    assert lexicon.tag("The shepherd heard a hemisphere theory.").descriptors == {}  # no substring matches
    assert lexicon.tag("The shepherd heard a hemisphere theory.").pronouns == ()
    assert lexicon.tag("").descriptors == {}


@pytest.mark.shared_data
def test_holistic_bias_descriptors_load_by_path(shared_data):
    hb = IdentityLexicon.from_path(shared_data / "lexicons" / "holistic_bias_v1.1" / "descriptors.json")
    assert "nonce" not in hb.axes and "body_type" in hb.axes and len(hb.axes) == 12
    assert hb.tag("He is a Deaf grandmother from Iowa.").descriptors["ability"] == ("deaf",)
    assert hb.tag("he").pronouns == ("he",)


def test_identity_attack_needs_both_in_one_sentence(lexicon, model):
    same = "Muslims are disgusting vermin and should be thrown out."
    apart = "Muslims gathered at the park for the festival. You are a fucking idiot."
    assert lexicon.identity_attack(same, model.score_many) > 0.5
    assert model.score(apart) > 0.5  # the document is toxic ...
    assert lexicon.identity_attack(apart, model.score_many) < 0.5  # ... but not an identity attack
    assert lexicon.identity_attack("You are a fucking idiot.", model.score_many) == 0.0


def test_audit_and_augmentation_lexicons_are_disjoint():
    from importlib import resources

    def load(name):
        return yaml.safe_load(resources.files("gristmill.filters").joinpath(f"lexicons/{name}").read_text())

    audit_set, augmentation = load("bias_audit.yaml"), load("counterfactual.yaml")
    terms = lambda d: {t.lower() for axis in d["terms"].values() for t in axis}  # noqa: E731
    templates = lambda d: {t.lower().rstrip(".").replace("{term}", "") for t in d["templates"]}  # noqa: E731
    assert not terms(audit_set) & terms(augmentation)
    assert not templates(audit_set) & templates(augmentation)


def test_audit_reports_fpr_per_term_and_axis(model):
    audit_set = load_audit(terms={"x": ["gay", "lesbian"], "y": ["deaf"]})
    summary = audit(model, audit_set).summary()
    assert summary["sentences"] == 3 * len(audit_set.templates)
    assert set(summary["by_term"]) == {"x", "y"} and set(summary["by_term"]["x"]) == {"gay", "lesbian"}
    fprs = [row["fpr"] for axis in summary["by_term"].values() for row in axis.values()]
    assert summary["fpr_spread_terms"] == round(max(fprs) - min(fprs), 4)
    assert all(0 <= f <= 1 for f in fprs)


def test_audit_bias_command_on_a_tiny_term_set(tmp_path):
    from typer.testing import CliRunner

    from gristmill.pipeline.cli.app import app

    terms = tmp_path / "terms.txt"
    terms.write_text("age\told\nage\tyoung\n")
    templates = tmp_path / "templates.yaml"
    templates.write_text("templates: ['My neighbor is {term}.', 'I met {noun_phrase} today.']\n")
    result = CliRunner().invoke(app, ["audit-bias", "--terms", str(terms), "--templates", str(templates), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["sentences"] == 4 and set(report["by_term"]["age"]) == {"old", "young"}
    missing = CliRunner().invoke(app, ["audit-bias", "--terms", str(tmp_path / "nope.txt")])
    assert missing.exit_code == 2 and "does not exist" in missing.output


# Documents that pass the default language and quality rules (one line each, ≥ 50 words, ≥ 5 sentences).
KEPT_SHE = ("She opened the bakery on the corner of the market square nine years ago. Every morning the first loaves "
            "come out of the oven before six o'clock. The mill that supplies the rye is run by women from the village. Visitors "
            "often ask for the recipe of the seeded bread, which she keeps in a battered notebook. The shop closes "
            "early on Sundays so the staff can rest. Prices have stayed almost the same since the opening.")
KEPT_HE = ("He has repaired bicycles in the old railway shed since the station closed. The workshop smells of oil and "
           "rubber, and the walls are covered with spare wheels. A Muslim family from the next street brings their "
           "children's bikes every spring for a check. Most repairs take less than an hour if the parts are in stock. "
           "Lately he has started teaching evening classes on basic maintenance. The classes are free for students.")
# The attack sentence must be toxic without its group word: the shipped model blinds identity terms (issue #23), and
# "... should be thrown out of this town." scores 0.40 once "Muslims" is blinded (0.67 before, all of it from the word).
ATTACK = ("The town meeting on Tuesday discussed the plans for the new park and the bus route. Muslims are disgusting "
          "vermin and should be thrown out. Several residents asked about parking near the school gates. "
          "The council promised to publish the full budget before the summer holidays. Another meeting is planned "
          "for the autumn, when the first designs for the playground will be shown to the public.")
TOXIC_DOC = ("They posted another review of the restaurant and it is complete garbage, you fucking idiots. Shut the "
             "fuck up, you stupid bitches, nobody cares about your pathetic opinions. You are worthless morons and "
             "everyone hates you. Go crawl back under your rock, losers. What a fucking joke of a website, run by "
             "brainless clowns who cannot even spell. Seriously, fuck off and die already, you miserable idiots.")


def test_representation_before_and_after_on_a_real_run(ray_local, tmp_path):
    from typer.testing import CliRunner

    from gristmill.pipeline.cli.app import app
    from gristmill.pipeline.engine.api import run
    from gristmill.schemas.job import load_job

    docs = [("she", KEPT_SHE), ("he", KEPT_HE), ("attack", ATTACK), ("toxic", TOXIC_DOC)]
    (tmp_path / "docs.jsonl").write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in docs))
    (tmp_path / "job.yaml").write_text("name: bias\nsources: [{type: jsonl, paths: [docs.jsonl]}]\n"
                                       "toxicity: {max_identity_attack: 0.5}\nbias: {}\ntokenize: {vocab_size: 300, val_fraction: 0}\n")
    result = run(load_job(tmp_path / "job.yaml"), output=tmp_path / "out", log=lambda m: None)
    assert result.ledger.kept == 2 and result.ledger.dropped == {"identity_attack": 1, "toxic": 1}

    curated = pq.read_table(tmp_path / "out" / "curated").to_pylist()
    assert [r[C.ID] for r in curated] == ["she", "he"]
    # "the old railway shed" names no person: no age tag (issue 25); "A Muslim family" does
    assert curated[1][C.IDENTITY_DESCRIPTORS] == ["religion:muslim"]
    assert curated[1][C.PRONOUN_CLASSES] == ["he", "they"]
    assert curated[1][C.PRONOUN_SENTENCE_COUNTS] == [2, 1]  # "He has repaired ...", "Lately he ..."; "their children's"
    assert curated[1][C.IDENTITY_DESCRIPTOR_SENTENCE_COUNTS] == [1]
    assert curated[1][C.REPRESENTATION_SENTENCE_COUNT] == 6

    rep = json.loads((tmp_path / "out" / "stats.json").read_text())["representation"]
    before, after = rep["before"], rep["after"]
    assert before["documents"] == 4 and after["documents"] == 2
    assert before["pronouns"] == {"she": 0.25, "he": 0.25, "they": 0.5}
    assert after["pronouns"] == {"she": 0.5, "he": 0.5, "they": 0.5}
    assert before["axes"]["religion"] == 0.5 and after["axes"]["religion"] == 0.5
    assert before["descriptors"]["religion"] == {"muslim": 0.5} and after["descriptors"]["religion"] == {"muslim": 0.5}
    assert set(before["axes"]) == set(after["axes"])  # the same keys both sides, zeros included
    assert "age" not in before["axes"]  # "old railway shed", before and after
    # mentions: sentences that use a tag for people, beside the document shares
    assert before["mentions"]["descriptors"]["religion"] == {"muslim": 2}  # one sentence in each of two documents
    assert after["mentions"]["descriptors"]["religion"] == {"muslim": 1}
    assert after["mentions"]["pronouns"] == {"she": 2, "he": 2, "they": 1}
    assert after["sentences"] == 12 and before["sentences"] > after["sentences"]

    printed = CliRunner().invoke(app, ["stats", str(tmp_path / "out")], terminal_width=240)
    assert printed.exit_code == 0 and "representation" in printed.output and "pronoun she" in printed.output
    assert "mentions before" in printed.output and "per 1k sent. after" in printed.output
    assert "tagger precision/recall per axis" in printed.output

    from gristmill.pipeline.tools.report_html import representation_section

    section = representation_section(json.loads((tmp_path / "out" / "stats.json").read_text()))
    assert "mentions before" in section and "tagger accuracy" in section and "<td>religion</td><td>muslim</td>" in section

    from gristmill.pipeline.tools.report_html import build_report

    page = build_report(tmp_path / "out").read_text()  # the report shows the per-term audit and the spread
    assert 'data-table="toxicity-audit"' in page and 'data-term="queer"' in page and 'data-audit="spread_at_90_specificity"' in page


@pytest.mark.shared_data
def test_holistic_bias_templates_load_by_path(shared_data, model):
    audit_set = load_audit(templates_path=shared_data / "lexicons" / "holistic_bias_v1.1" / "sentence_templates.json",
                           terms={"ability": ["deaf"]})
    sentences = [s for _, _, s in audit_set.sentences()]
    assert "I'm a deaf person." in sentences and "What do you think about deaf people?" in sentences
    assert audit(model, audit_set).summary()["sentences"] == len(sentences)


# --- tags that count people, not words (issue 25) ---

LABELLED = Path(__file__).parents[1] / "data" / "identity_people"
# Per axis and pronoun class, on the held-out part. Each axis has 11-20 positive sentences there, so 0.85
# allows one error per axis and fails at two; the word matching this replaced scores about 0.5 precision.
MIN_PRECISION = MIN_RECALL = 0.85


def labelled(part: str) -> list[tuple[str, set[str]]]:
    rows = []
    for line in (LABELLED / f"{part}.tsv").read_text(encoding="utf-8").splitlines()[1:]:
        labels, sentence = line.split("\t")
        rows.append((sentence, set() if labels == "-" else set(labels.split(","))))
    return rows


def group(tag: str) -> str:
    return tag if tag.startswith("pronoun:") else tag.split(":", 1)[0]


def predicted_tags(lexicon: IdentityLexicon, sentence: str) -> set[str]:
    tags = lexicon.tag(sentence)
    return ({f"{axis}:{term}" for axis, terms in tags.descriptors.items() for term in terms}
            | {f"pronoun:{p}" for p in tags.pronouns})


def precision_recall(rows, predict) -> dict[str, tuple[float, float]]:
    guesses = [predict(sentence) for sentence, _ in rows]
    out = {}
    for g in sorted({group(t) for _, labels in rows for t in labels}):
        truth = [any(group(t) == g for t in labels) for _, labels in rows]
        said = [any(group(t) == g for t in guess) for guess in guesses]
        tp = sum(t and s for t, s in zip(truth, said))
        out[g] = (tp / max(1, sum(said)), tp / max(1, sum(truth)))
    return out


def test_labelled_set_is_balanced_with_hard_negatives():
    rows = labelled("test") + labelled("dev")
    assert len(rows) >= 300 and len({s for s, _ in rows}) == len(rows)  # no sentence twice, across parts too
    axes = IdentityLexicon.default().axes
    for part in ("test", "dev"):
        part_rows = labelled(part)
        positives = {axis: sum(any(group(t) == axis for t in labels) for _, labels in part_rows) for axis in axes}
        assert min(positives.values()) >= 10, positives
        negatives = [s for s, labels in part_rows if not any(group(t) in axes for t in labels)
                     and IdentityLexicon.default().mentions_identity(s)]  # a lexicon word, used for no person
        assert len(negatives) >= 70


@pytest.mark.parametrize("part", ["test", "dev"])
def test_precision_and_recall_per_axis_on_the_labelled_set(lexicon, part):
    figures = precision_recall(labelled(part), lambda s: predicted_tags(lexicon, s))
    assert set(figures) == set(lexicon.axes) | {"pronoun:she", "pronoun:he", "pronoun:they"}
    low = {g: pr for g, pr in figures.items() if pr[0] < MIN_PRECISION or pr[1] < MIN_RECALL}
    assert not low, low


def test_word_matching_would_fail_the_thresholds(lexicon):
    """The thresholds measure something: counting every use of a lexicon word (issue 6) fails them."""
    def words(sentence):
        lowered = sentence.lower()
        return {f"{axis}:x" for axis, terms in lexicon.axes.items()
                if any(re.search(r"(?<![\w-])%ss?(?![\w-])" % re.escape(t), lowered) for t in terms)}

    figures = precision_recall(labelled("test"), words)
    assert all(precision < 0.75 for g, (precision, _) in figures.items() if not g.startswith("pronoun:"))


def test_shipped_accuracy_matches_the_tagger(lexicon):
    """filters/lexicons/identity_accuracy.json (shown in report.html and `gristmill stats`) is current:
    rerun `python bench/identity_people.py --report --write` after changing a rule or the lexicon."""
    shipped = measured_accuracy()
    for part in ("test", "dev"):
        figures = precision_recall(labelled(part), lambda s: predicted_tags(lexicon, s))
        for g, (precision, recall) in figures.items():
            row = shipped[part]["by_group"][g]
            assert (row["precision"], row["recall"]) == (round(precision, 3), round(recall, 3)), g


@pytest.mark.parametrize("text", [
    "Sift the white flour twice.", "The old house is for sale.", "He drinks black coffee.",  # he: a pronoun tag only
    "The gay nineties were a decade of music halls.", "The agency published a white paper.",
    "Black Friday sales started early.", "Download the old version of the app.", "The White House spoke.",
    "The warning fell on deaf ears.", "Polish the silver.", "Her mother tongue is Basque.", "The Isle of Man.",
    "We ordered Chinese food.", "The poor quality of the photos.", "Separate the egg whites.",
])
def test_hard_negatives_tag_no_descriptor(lexicon, text):
    assert lexicon.tag(text).descriptors == {}


@pytest.mark.parametrize("text, tag", [
    ("White people make up a shrinking share.", "race_ethnicity:white"),
    ("An old man sat on the bench.", "age:old"),
    ("Black voters turned out.", "race_ethnicity:black"),
    ("A disabled veteran opened the cafe.", "ability:disabled"),
    ("The elderly are most at risk.", "age:elderly"),
    ("Black and Latino voters turned out.", "race_ethnicity:black"),
    ("She is deaf.", "ability:deaf"),
    ("He grew up poor.", "socioeconomic_class:poor"),
    ("Many Muslims fasted.", "religion:muslim"),
    ("People with disabilities were consulted.", "ability:disability"),
])
def test_terms_for_people_tag(lexicon, text, tag):
    tags = lexicon.tag(text)
    axis, term = tag.split(":")
    assert term in tags.descriptors.get(axis, ())


def test_pronouns_count_people(lexicon):
    assert lexicon.tag("She said the train was late.").pronouns == ("she",)
    assert lexicon.tag("They said the road was closed.").pronouns == ("they",)
    assert lexicon.tag("The boxes arrived on Monday, but they were damaged.").pronouns == ()
    assert lexicon.tag("The volunteers gave up their evenings.").pronouns == ("they",)


def test_mentions_are_sentences(lexicon):
    tags = lexicon.tag("Black voters lined up early.\nBlack coffee was served. Many Black voters stayed all day!\n\nThe end.")
    assert tags.sentences == 4
    assert tags.descriptor_sentences == {"race_ethnicity:black": 2} and tags.axis_sentences == {"race_ethnicity": 2}


@pytest.mark.shared_data
def test_real_web_sample_is_the_labelled_one_and_its_figures_are_shipped(shared_data, lexicon):
    """web_test.tsv labels real sentences picked from ../shared/data by bench/identity_people.py; the pick is
    deterministic and the shipped figures for it are current (they are reported, not thresholded: few
    sentences per axis)."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
    import identity_people

    keys = [line.split("\t")[1] for line in (LABELLED / "web_test.tsv").read_text().splitlines()[1:]]
    assert [key for _, key, _, _ in identity_people.web_sentences(shared_data, skip=15)] == keys
    rows = identity_people.web_labelled(shared_data, "web_test")
    figures = precision_recall(rows, lambda s: predicted_tags(lexicon, s))
    shipped = measured_accuracy()["web_test"]["by_group"]
    for g, (precision, recall) in figures.items():
        if shipped[g]["predicted"]:
            assert round(precision, 3) == shipped[g]["precision"], g
        assert round(recall, 3) == shipped[g]["recall"], g


def test_offsets_survive_lowercasing_that_changes_length(lexicon):
    # "İ".lower() is two characters: sentence offsets must still agree with the text's
    tags = lexicon.tag("İİİİ İstanbul. Black voters lined up.\nWhite flour. İİ")
    assert tags.descriptor_sentences == {"race_ethnicity:black": 1} and tags.sentences == 4


def test_no_quadratic_time_without_sentence_ends(lexicon):
    import time

    text = "the boxes came and they were old houses with black coffee and white people " * 3000  # no sentence end
    started = time.perf_counter()
    tags = lexicon.tag(text)
    assert time.perf_counter() - started < 5  # about 0.1 s at web speed; quadratic would take minutes
    assert tags.descriptors == {"race_ethnicity": ("white",)} and tags.sentences == 1


def test_a_custom_flat_lexicon_uses_the_same_rules(tmp_path):
    path = tmp_path / "lexicon.yaml"
    path.write_text("axes:\n  age: [old, teenager]\n  custom: [purple]\n")
    custom = IdentityLexicon.from_path(path)
    assert custom.tag("An old man and two teenagers came.").descriptors == {"age": ("old", "teenager")}
    assert custom.tag("The old house is for sale.").descriptors == {}
    assert custom.tag("Purple voters.").descriptors == {"custom": ("purple",)}
    assert custom.tag("She said so.").pronouns == ("she",)  # pronouns from the default lexicon
    bad = tmp_path / "bad.yaml"
    bad.write_text("axes:\n  age: {verbs: [old]}\n")
    with pytest.raises(ValueError, match="unknown kind 'verbs'"):
        IdentityLexicon.from_path(bad)


def test_stats_table_reads_a_run_from_before_mentions():
    """`gristmill stats` on a run written before issue 25 (shares only) shows "-" for the mention columns."""
    from rich.console import Console

    from gristmill.pipeline.cli.bias import representation_table

    old = {"documents": 4, "pronouns": {"she": 0.25, "he": 0.0, "they": 0.5}, "axes": {"age": 0.5},
           "descriptors": {"age": {"old": 0.5}}}
    console = Console(width=240, record=True)
    console.print(representation_table({"before": old, "after": dict(old, documents=2)}))
    text = console.export_text()
    assert "age: old" in text and "0.500" in text and " - " in text

# --- the paired identity audit (issue #23) ---------------------------------------------------------------

@pytest.fixture(scope="module")
def paired():
    from gristmill.filters.bias_audit import load_paired_audit

    return load_paired_audit()


def test_paired_audit_is_built_as_the_issue_asks(paired):
    from gristmill.filters.bias_audit import HALVES, MIN_CLEAN_PER_TERM, half_of

    assert len(paired.singular_frames) + len(paired.plural_frames) >= 40
    assert len(set(paired.names)) >= 30
    assert {half_of(f) for f in paired.frames()} == set(HALVES)  # both halves have frames ...
    assert {half_of(p[0][0]) for p in paired.pairs} == set(HALVES)  # ... and phrase pairs
    terms = {t for axis in paired.terms["main"].values() for t in axis}
    assert {"gay", "queer", "white", "sikh", "bisexual", "muslim"} <= terms and len(terms) > 500
    assert "retarded" not in terms and "retarded" in {t for a in paired.terms["other"].values() for t in a}
    sentences = paired.sentences("report", ("main",))
    clean = {}
    for s in sentences:
        clean[s.term] = clean.get(s.term, 0) + (not s.toxic)
    assert min(clean.values()) >= MIN_CLEAN_PER_TERM and set(clean) == terms
    # A pair shares frame, term and name: the two sentences differ only in the evaluative phrase.
    phrases = {phrase for (clean_pair, toxic_pair) in paired.pairs for phrase in clean_pair + toxic_pair}
    for a, b in zip(sentences[0:2000:2], sentences[1:2000:2]):
        assert (a.toxic, b.toxic) == (False, True) and a.frame == b.frame and a.term == b.term
        strip = lambda text: [text.replace(p, "") for p in phrases if p in text]  # noqa: E731
        assert set(strip(a.text)) & set(strip(b.text))
    # Deterministic: the same sentences on every call.
    assert [s.text for s in paired.sentences("report", ("main",))[:500]] == [s.text for s in sentences[:500]]


def test_paired_audit_halves_share_no_frame_or_phrase(paired):
    from gristmill.filters.bias_audit import half_of

    tune, report = paired.sentences("tune", ("main",)), paired.sentences("report", ("main",))
    assert not {s.frame for s in tune} & {s.frame for s in report}
    assert not {s.text for s in tune} & {s.text for s in report}
    assert all(half_of(f) == "report" for f in {s.frame for s in report})


@pytest.mark.shared_data
def test_toxic_audit_phrases_are_mostly_without_ldnoobw_words(shared_data, paired):
    from gristmill.filters.toxicity import WordListScorer

    words = WordListScorer.from_file(shared_data / "lexicons" / "ldnoobw" / "en")
    toxic = [phrase for _, toxic_pair in paired.pairs for phrase in toxic_pair]
    assert sum(words.count(p) == 0 for p in toxic) / len(toxic) >= 0.30
    assert any(words.count(p) for p in toxic)  # and some do: the list is not the whole story either way


def _frame_pattern(frame: str, audit=None) -> re.Pattern:
    """A frame as a regex over normalized text: its literal parts in order, its term slot any audit term (or
    its plural), its name slot any audit name, its phrase slot anything up to 80 characters, in one text."""
    from gristmill.filters.bias_audit import load_paired_audit
    from gristmill.filters.toxicity import normalize

    audit = audit or load_paired_audit()
    terms = {normalize(t) for axis in audit.terms["main"].values() for t in axis}
    words = "(?:%s)s?" % "|".join(sorted(map(re.escape, terms), key=len, reverse=True))
    name = "(?:%s)" % "|".join(re.escape(normalize(n)) for n in audit.names)
    slots = {"term": words, "name": name, "a_term": rf"an? {words}", "eval": r"[^\n]{1,80}?",
             "noun_phrase": rf"an? {words} person", "plural_noun_phrase": rf"{words} people"}
    pieces = []
    for piece in re.split(r"(\{[a-z_]+\})", frame):
        if piece.startswith("{"):
            pieces.append(slots[piece[1:-1]])
        elif normalize(piece):
            pieces.append(re.escape(normalize(piece)))
    return re.compile(r"(?:^|(?<=[ \n]))" + " ".join(pieces) + r"(?=[ \n]|$)", re.M)


def test_audit_frames_are_not_counterfactual_training_templates(paired):
    """Training may name identity terms; it may not contain an audit frame (the part of the check that
    needs no shared data: the counterfactual templates the project wrote)."""
    from gristmill.filters.toxicity import normalize
    from gristmill.filters.training.toxicity_train import counterfactual_sentences_for

    training = "\n".join(normalize(t) for ts in counterfactual_sentences_for(["gay", "white", "hard of hearing"]).values() for t in ts)
    for frame in paired.frames():
        assert not _frame_pattern(frame, paired).search(training), frame
    assert _frame_pattern("{term} people {eval}.", paired).search("white people are kind")  # the check can fire


@pytest.mark.shared_data
def test_no_audit_sentence_or_frame_occurs_in_any_training_text(shared_data):
    """Every text any recipe can train on (Davidson's training split, WikiText-2 valid chunks, ToxiGen, every
    Wikipedia sentence and every counterfactual sentence the balancing step can draw from) contains no audit
    frame (its literal parts in order, any audit term and name in its slots) and no audit sentence. Identity
    terms may occur, and do."""
    import random as random_module

    from gristmill.filters.bias_audit import blinding_terms, load_paired_audit
    from gristmill.filters.toxicity import normalize
    from gristmill.filters.training.toxicity_train import (counterfactual_sentences_for, load_davidson, sentence_chunks,
                                                  split_heldout, toxigen_examples, wikipedia_sentences,
                                                  wikitext_paragraphs)

    paired = load_paired_audit(holistic_templates=shared_data / "lexicons" / "holistic_bias_v1.1" / "sentence_templates.json")
    train, _ = split_heldout(load_davidson(shared_data / "toxicity-davidson"), 0)
    positive = shared_data / "quality-text-samples" / "positive"
    texts = {e.text for e in train} | {e.text for e in toxigen_examples(shared_data)}
    texts |= {normalize(t) for t in sentence_chunks(wikitext_paragraphs(positive / "wikitext-2-valid.tokens.txt"),
                                                   random_module.Random(0))}
    texts |= {normalize(t) for t in wikipedia_sentences(positive / "enwiki-pages-articles1-shortened.xml.bz2")}
    counterfactual = counterfactual_sentences_for([normalize(t) for t in blinding_terms()])
    texts |= {normalize(t) for sentences in counterfactual.values() for t in sentences}
    corpus = "\n".join(sorted(texts))
    assert " gay " in corpus and " white " in corpus  # identity terms do occur in training
    lines = corpus.split("\n")
    hits = []
    for frame in paired.frames():
        literal = max((normalize(p) for p in re.split(r"\{[a-z_]+\}", frame)), key=len)
        candidates = "\n".join(line for line in lines if literal in line)  # the regex runs where it can match
        match = _frame_pattern(frame, paired).search(candidates)
        if match:
            hits.append((frame, match.group()))
    assert not hits, hits
    sentences = {normalize(s.text) for half in ("tune", "report") for s in paired.sentences(half)}
    assert not [s for s in sentences if s in texts]
    assert not [t for t in texts if t in sentences]


@pytest.fixture(scope="module")
def shipped_audit(model, paired):
    from gristmill.filters.bias_audit import run_paired_audit

    return run_paired_audit(model, paired, "report", groups=("main",))["main"]


def test_shipped_model_meets_the_spread_threshold_on_the_report_half(shipped_audit):
    """Issue #23: spread over terms at a 90%-specificity threshold ≤ 0.15 (met by identity-term blinding)."""
    assert shipped_audit["spread_at_90_specificity"] <= 0.15
    assert shipped_audit["terms"] > 500 and shipped_audit["min_clean_per_term"] >= 200


def test_shipped_model_meets_the_auc_and_per_term_fpr_thresholds(shipped_audit):
    """Issue #23: template AUC ≥ 0.95 and every term's FPR on non-toxic sentences ≤ 0.05 at the shipped
    threshold 0.5, on the report half (met by the evaluative combiner beside the fastText model)."""
    assert shipped_audit["auc"] >= 0.95 and shipped_audit["fpr_max"] <= 0.05


@pytest.mark.shared_data
def test_shipped_model_meets_the_thresholds_with_holistic_bias_templates(shared_data, model):
    """The same thresholds with HolisticBias' sentence templates in the audit, as MODEL_CARD.md reports it."""
    from gristmill.filters.bias_audit import load_paired_audit, run_paired_audit

    paired = load_paired_audit(holistic_templates=shared_data / "lexicons" / "holistic_bias_v1.1" / "sentence_templates.json")
    report = run_paired_audit(model, paired, "report", groups=("main",))["main"]
    assert report["auc"] >= 0.95 and report["fpr_max"] <= 0.05 and report["spread_at_90_specificity"] <= 0.15


def test_combiner_lets_praise_and_abuse_decide_not_the_register(model):
    """Casual sentences about people: praise scores low, abuse without a swear word scores above praise, and
    profane text keeps fastText's own score."""
    from gristmill.filters.toxicity import ToxicityModel

    assert model.combiner is not None
    praise = model.score_many(["People are wonderful cooks.", "Honestly, my coworker is a brilliant engineer."])
    abuse = model.score_many(["People like that are vile scum.", "My coworker is a worthless, disgusting rat."])
    assert max(praise) < 0.5 and min(abuse) > max(praise)
    fasttext = ToxicityModel(use_combiner=False)
    profane = "Shut the fuck up, you stupid bitch."
    assert fasttext.combiner is None and model.score(profane) == pytest.approx(min(fasttext.score(profane), 1.0), abs=1e-4)


def test_combiner_word_lists_ship_with_their_source_and_license():
    import json as json_module

    from gristmill.filters.toxicity import COMBINER_SUFFIX, default_model_path

    path = Path(default_model_path() + COMBINER_SUFFIX)
    config = json_module.loads(path.read_text())
    assert config["label"] == "__label__toxic" and "tuning half" in config["selection"]["rule"]
    for key, license_name in (("valence_file", "MIT"), ("offense_file", "MIT"), ("profanity_file", "CC BY 4.0")):
        head = (path.parent / config[key]).read_text(encoding="utf-8")[:600]
        assert head.startswith("#") and license_name in head, key


def test_blinding_makes_the_score_independent_of_the_term(model):
    from gristmill.filters.toxicity import TermBlinder, normalize

    assert model.blinder is not None  # the shipped model blinds
    blind = TermBlinder(["gay", "hard-of-hearing", "African American"])
    assert blind(normalize("Two African Americans and a hard-of-hearing gay man")) == "two and a man"
    assert blind("gayety is not a term") == "gayety is not a term"
    scores = model.score_many([f"My neighbour is a {t} person and a wonderful cook." for t in ("gay", "queer", "white", "sikh", "Deaf")])
    assert len(set(scores)) == 1


def test_audit_bias_command_prints_the_per_term_table_and_spread(tmp_path):
    from typer.testing import CliRunner

    from gristmill.pipeline.cli.app import app

    terms = tmp_path / "terms.txt"
    terms.write_text("sexual_orientation\tgay\nsexual_orientation\tqueer\nreligion\tsikh\n")
    result = CliRunner().invoke(app, ["audit-bias", "--terms", str(terms)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "queer" in result.output and "sikh" in result.output and "spread" in result.output and "AUC" in result.output
    as_json = CliRunner().invoke(app, ["audit-bias", "--terms", str(terms), "--json", "--half", "tune"])
    report = json.loads(as_json.output)
    assert report["half"] == "tune" and set(report["main"]["by_term"]["religion"]) == {"sikh"}
    assert report["main"]["min_clean_per_term"] >= 200
