"""Representation tagging, identity attack, the bias audit, and the before/after report on a real run."""

from __future__ import annotations

import json
import re

import pyarrow.parquet as pq
import pytest
import yaml

from gristmill.filters.bias_audit import audit, load_audit
from gristmill.filters.identity import IdentityLexicon
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
    assert tags.descriptors == {"ability": ("deaf",), "gender_and_sex": ("women",), "nationality": ("canadian",),
                                "religion": ("muslim",)}
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

    from gristmill.pipeline.cli import app

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

    from gristmill.pipeline.cli import app
    from gristmill.pipeline.runner import run
    from gristmill.schemas.job import load_job

    docs = [("she", KEPT_SHE), ("he", KEPT_HE), ("attack", ATTACK), ("toxic", TOXIC_DOC)]
    (tmp_path / "docs.jsonl").write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in docs))
    (tmp_path / "job.yaml").write_text("name: bias\nsources: [{type: jsonl, paths: [docs.jsonl]}]\n"
                                       "toxicity: {max_identity_attack: 0.5}\nbias: {}\ntokenize: {vocab_size: 300, val_fraction: 0}\n")
    result = run(load_job(tmp_path / "job.yaml"), output=tmp_path / "out", log=lambda m: None)
    assert result.ledger.kept == 2 and result.ledger.dropped == {"identity_attack": 1, "toxic": 1}

    curated = pq.read_table(tmp_path / "out" / "curated").to_pylist()
    assert [r[C.ID] for r in curated] == ["she", "he"]
    # "old railway shed" counts as an age mention: the lexicon counts words, not people (documented).
    assert curated[1][C.IDENTITY_DESCRIPTORS] == ["age:old", "religion:muslim"]
    assert curated[1][C.PRONOUN_CLASSES] == ["he", "they"]

    rep = json.loads((tmp_path / "out" / "stats.json").read_text())["representation"]
    before, after = rep["before"], rep["after"]
    assert before["documents"] == 4 and after["documents"] == 2
    assert before["pronouns"] == {"she": 0.25, "he": 0.25, "they": 0.5}
    assert after["pronouns"] == {"she": 0.5, "he": 0.5, "they": 0.5}
    assert before["axes"]["religion"] == 0.5 and after["axes"]["religion"] == 0.5
    assert before["descriptors"]["religion"] == {"muslim": 0.5} and after["descriptors"]["religion"] == {"muslim": 0.5}
    assert set(before["axes"]) == set(after["axes"])  # the same keys both sides, zeros included

    printed = CliRunner().invoke(app, ["stats", str(tmp_path / "out")])
    assert printed.exit_code == 0 and "representation" in printed.output and "pronoun she" in printed.output

    from gristmill.pipeline.report_html import build_report

    page = build_report(tmp_path / "out").read_text()  # the report shows the per-term audit and the spread
    assert 'data-table="toxicity-audit"' in page and 'data-term="queer"' in page and 'data-audit="spread_at_90_specificity"' in page


@pytest.mark.shared_data
def test_holistic_bias_templates_load_by_path(shared_data, model):
    audit_set = load_audit(templates_path=shared_data / "lexicons" / "holistic_bias_v1.1" / "sentence_templates.json",
                           terms={"ability": ["deaf"]})
    sentences = [s for _, _, s in audit_set.sentences()]
    assert "I'm a deaf person." in sentences and "What do you think about deaf people?" in sentences
    assert audit(model, audit_set).summary()["sentences"] == len(sentences)


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
    from gristmill.filters.train_toxicity import counterfactual_sentences_for

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
    from gristmill.filters.train_toxicity import (counterfactual_sentences_for, load_davidson, sentence_chunks,
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


@pytest.mark.xfail(strict=True, reason="issue #23 thresholds not met by the shipped fastText model (see MODEL_CARD.md): "
                                       "template AUC ≥ 0.95 and every term's FPR ≤ 0.05 at 0.5")
def test_shipped_model_meets_the_auc_and_per_term_fpr_thresholds(shipped_audit):
    assert shipped_audit["auc"] >= 0.95 and shipped_audit["fpr_max"] <= 0.05


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

    from gristmill.pipeline.cli import app

    terms = tmp_path / "terms.txt"
    terms.write_text("sexual_orientation\tgay\nsexual_orientation\tqueer\nreligion\tsikh\n")
    result = CliRunner().invoke(app, ["audit-bias", "--terms", str(terms)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "queer" in result.output and "sikh" in result.output and "spread" in result.output and "AUC" in result.output
    as_json = CliRunner().invoke(app, ["audit-bias", "--terms", str(terms), "--json", "--half", "tune"])
    report = json.loads(as_json.output)
    assert report["half"] == "tune" and set(report["main"]["by_term"]["religion"]) == {"sikh"}
    assert report["main"]["min_clean_per_term"] >= 200
