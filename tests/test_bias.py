"""Representation tagging, identity attack, the bias audit, and the before/after report on a real run."""

from __future__ import annotations

import json

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
ATTACK = ("The town meeting on Tuesday discussed the plans for the new park and the bus route. Muslims are disgusting "
          "vermin and should be thrown out of this town. Several residents asked about parking near the school gates. "
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


@pytest.mark.shared_data
def test_holistic_bias_templates_load_by_path(shared_data, model):
    audit_set = load_audit(templates_path=shared_data / "lexicons" / "holistic_bias_v1.1" / "sentence_templates.json",
                           terms={"ability": ["deaf"]})
    sentences = [s for _, _, s in audit_set.sentences()]
    assert "I'm a deaf person." in sentences and "What do you think about deaf people?" in sentences
    assert audit(model, audit_set).summary()["sentences"] == len(sentences)
