"""Train the shipped toxicity model: fastText, supervised, from Davidson et al. (2017) tweets.

    gristmill train-toxicity ../shared/data [--out filters/models/toxicity-davidson.ftz] [--seed 0]

Labels: Davidson's hate speech (class 0) and offensive language (class 1) → `__label__toxic`, neither
(class 2) → `__label__clean`. Text goes through `filters.toxicity.normalize` (entities, RT, @mentions,
URLs, hashtags, punctuation, case). A stratified held-out 20% of Davidson (fixed by `--seed`) is never
trained on; AUC and per-class F1 are measured on it. Tweets are not web pages, so the clean class is
augmented with clean encyclopedic prose: paragraphs and 1–3-sentence chunks of WikiText-2's *validation*
split (CC BY-SA 3.0; its test split is kept for the web evaluation, bench/toxicity_web.py).

Identity-term bias (issue #23): every `Recipe` in RECIPES is trained on the same split and measured on
held-out Davidson and on both halves of the paired audit (filters/bias_audit.py): Dixon et al.'s term
balancing with natural Wikipedia sentences and counterfactual ones (filters/lexicons/counterfactual.yaml),
ToxiGen's seed statements (MIT), identity-term blinding (filters/toxicity.py TermBlinder). `choose` picks
the shipped recipe from the *tuning* half only (SELECTION_RULE); the figures go to `<out>.metrics.json`,
which the model card quotes, with the report half's.

The evaluative combiner (filters/toxicity.py `EvaluativeCombiner`; `fit_combiner`, run by `main` after the
recipes, or alone: `python -m gristmill.filters.training.toxicity_train combiner ../shared/data`): VADER's word
valences (vaderSentiment 3.3.2, MIT) and LDNOOBW's English list (CC BY 4.0) are copied beside the model, and
its four numbers are chosen on a grid by COMBINER_RULE: the audit's *tuning* half, Davidson's held-out split
and clean Wikipedia sentences, never the report half or the web sets.
"""

from __future__ import annotations

import csv
import html
import json
import math
import os
import random
import re
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml

from gristmill.filters.metrics import auc, auc_array  # noqa: F401 (callers import auc from here too)
from gristmill.filters.toxicity import (BLIND_SUFFIX, COMBINER_SUFFIX, EvaluativeCombiner, TermBlinder, ToxicityModel,
                                        ValenceLexicon, WordSet, normalize, read_word_weights)

TOXIC, CLEAN = "__label__toxic", "__label__clean"
DAVIDSON_CLASSES = {0: "hate_speech", 1: "offensive_language", 2: "neither"}
# fastText settings (chosen on the held-out split; small dim keeps the quantized model small).
PARAMS = dict(epoch=10, lr=0.2, wordNgrams=2, dim=32, minCount=2, loss="softmax", bucket=200_000, thread=1, seed=0)
# No retraining after pruning: fastText's retrain step diverged (NaN) on this data; AUC lost is ~0.002.
QUANTIZE = dict(cutoff=40_000, qnorm=True, retrain=False, dsub=2)
AUC_TOLERANCE = 0.02  # issue #23: Davidson held-out AUC may not drop by more
# Davidson is 83% toxic: its clean tweets are repeated this many times (chosen on held-out clean-class F1:
# 0.825 at 1, 0.844 at 3, 0.840 at 6; AUC unchanged within 0.003).
CLEAN_TWEET_REPEATS = 3


@dataclass(frozen=True)
class Example:
    text: str  # normalized
    label: str  # TOXIC or CLEAN
    group: str  # davidson class name, or the augmentation source


def load_davidson(folder: str | Path) -> list[Example]:
    path = Path(folder) / "labeled_data.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist (Davidson's labeled_data.csv)")
    out = []
    with open(path, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            klass = int(row["class"])
            text = normalize(row["tweet"])
            if text:
                out.append(Example(text, CLEAN if klass == 2 else TOXIC, DAVIDSON_CLASSES[klass]))
    return out


def split_heldout(examples: list[Example], seed: int, fraction: float = 0.2) -> tuple[list[Example], list[Example]]:
    """Stratified by Davidson class; the same seed gives the same split."""
    rng = random.Random(seed)
    train, heldout = [], []
    for group in sorted({e.group for e in examples}):
        members = [e for e in examples if e.group == group]
        rng.shuffle(members)
        cut = round(len(members) * fraction)
        heldout += members[:cut]
        train += members[cut:]
    return train, heldout


_WIKITEXT_FIXES = [(" @-@ ", "-"), (" @,@ ", ","), (" @.@ ", "."), ("<unk>", "")]


def wikitext_paragraphs(path: str | Path) -> list[str]:
    """Detokenized WikiText paragraphs (headings and short lines left out)."""
    out = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("="):
            continue
        for old, new in _WIKITEXT_FIXES:
            line = line.replace(old, new)
        line = re.sub(r" ([,.;:!?)'])", r"\1", line)
        line = re.sub(r"\( ", "(", line)
        if len(line.split()) >= 8:
            out.append(line)
    return out


def sentence_chunks(paragraphs: list[str], rng: random.Random) -> list[str]:
    """Each paragraph, plus chunks of 1–3 of its sentences (tweet-length clean text)."""
    out = []
    for paragraph in paragraphs:
        out.append(paragraph)
        sentences = [s for s in re.split(r"(?<=[.!?])\s+", paragraph) if len(s.split()) >= 4]
        i = 0
        while i < len(sentences):
            n = rng.randint(1, 3)
            out.append(" ".join(sentences[i:i + n]))
            i += n
    return out


def load_yaml_resource(name: str) -> dict:
    return yaml.safe_load(resources.files("gristmill.filters").joinpath(name).read_text(encoding="utf-8"))


def write_fasttext_file(path: str, examples: list[Example], seed: int, blind_terms: list[str] | None = None) -> None:
    blind = TermBlinder(blind_terms) if blind_terms else (lambda text: text)
    rows = [f"{e.label} {blind(e.text)}" for e in examples]
    random.Random(seed).shuffle(rows)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("\n".join(rows) + "\n")


def train_model(examples: list[Example], out_path: str, seed: int, quantize: bool = True, params: dict | None = None,
                blind_terms: list[str] | None = None) -> None:
    """Train (and quantize) in a fresh process: a second fastText training in one process diverged (NaN).
    With `blind_terms`, identity terms become one placeholder in training, and the list is written beside
    the model (`<model>.blind.txt`) so that scoring blinds them the same way."""
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        pool.submit(_train_model, examples, out_path, seed, quantize, params, blind_terms).result()
    blind_file = Path(out_path + BLIND_SUFFIX)
    if blind_terms:
        blind_file.write_text(BLIND_HEADER + "\n".join(blind_terms) + "\n", encoding="utf-8")
    elif blind_file.exists():
        blind_file.unlink()


def _train_model(examples: list[Example], out_path: str, seed: int, quantize: bool, params: dict | None,
                 blind_terms: list[str] | None) -> None:
    import fasttext

    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "train.txt")
        write_fasttext_file(data, examples, seed, blind_terms)
        settings = {**PARAMS, "seed": seed, **(params or {})}
        model = fasttext.train_supervised(input=data, verbose=0, **settings)
        if quantize:
            model.quantize(input=data, verbose=0, thread=1, **QUANTIZE)
        model.save_model(out_path)


def prf(predicted: list[bool], actual: list[bool]) -> dict:
    tp = sum(p and a for p, a in zip(predicted, actual))
    fp = sum(p and not a for p, a in zip(predicted, actual))
    fn = sum(a and not p for p, a in zip(predicted, actual))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4), "support": sum(actual)}


def evaluate(model: ToxicityModel, heldout: list[Example], threshold: float = 0.5) -> dict:
    """Held-out AUC, per-class P/R/F1 (toxic, clean), macro-F1, and recall per Davidson class."""
    scores = model.score_normalized([e.text for e in heldout])
    actual = [e.label == TOXIC for e in heldout]
    predicted = [s > threshold for s in scores]
    toxic = prf(predicted, actual)
    clean = prf([not p for p in predicted], [not a for a in actual])
    by_class = {}
    for group in DAVIDSON_CLASSES.values():
        idx = [i for i, e in enumerate(heldout) if e.group == group]
        hit = sum(predicted[i] for i in idx)
        by_class[group] = {"n": len(idx), "flagged_toxic": round(hit / len(idx), 4) if idx else None}
    return {"n": len(heldout), "auc": round(auc(scores, actual), 4), "threshold": threshold,
            "toxic": toxic, "clean": clean, "macro_f1": round((toxic["f1"] + clean["f1"]) / 2, 4),
            "flagged_by_davidson_class": by_class}


BLIND_HEADER = ("# Identity terms this model blinds (filters/toxicity.py TermBlinder), written by gristmill train-toxicity\n"
                "# from filters/lexicons/audit_terms.yaml: Jigsaw's terms (Apache-2.0) and HolisticBias v1.1 descriptors\n"
                "# not marked dispreferred (CC BY-SA 4.0; Smith et al. 2022). This list is under CC BY-SA 4.0.\n")


@dataclass(frozen=True)
class Recipe:
    """One way to build the training set (issue #23 weighs each by measurement)."""

    name: str
    blind: bool = False  # identity terms → one placeholder, in training and at scoring time
    balance: bool = False  # Dixon et al. 2018: clean sentences naming each term until its clean share is the base rate
    toxigen: bool = False  # ToxiGen's human-written seed statements: implicit hate → toxic, neutral → clean


RECIPES = (
    Recipe("plain"),
    Recipe("balanced", balance=True),
    Recipe("balanced+toxigen", balance=True, toxigen=True),
    Recipe("blind", blind=True),
    Recipe("blind+toxigen", blind=True, toxigen=True),
    Recipe("blind+balanced+toxigen", blind=True, balance=True, toxigen=True),
)
TOXIGEN_REPEATS = 1  # 1,045 statements; 3 repeats raised the tuning-half FPR with no AUC gain


def toxigen_examples(shared_data: Path) -> list[Example]:
    path = shared_data / "toxigen-prompts" / "toxigen_prompts.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist (ToxiGen seed statements)")
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        text = normalize(row["text"])
        if text:
            out.append(Example(text, TOXIC if row["label"] == "hate" else CLEAN, f"toxigen_{row['label']}"))
    return out


_WIKI_MARKUP = [(re.compile(r"<ref[^>]*/>|<ref.*?</ref>", re.S), " "), (re.compile(r"\{\{[^{}]*\}\}"), " "),
                (re.compile(r"\[\[(?:File|Image|Category):[^\]]*\]\]"), " "), (re.compile(r"\[\[(?:[^|\]]*\|)?([^\]]*)\]\]"), r"\1"),
                (re.compile(r"\[https?://\S+ ([^\]]*)\]"), r"\1"), (re.compile(r"<[^>]+>"), " "), (re.compile(r"'{2,}"), ""),
                (re.compile(r"&[a-z]+;"), " ")]


def wikipedia_sentences(path: Path) -> list[str]:
    """Plain sentences (8–60 words) of the Wikipedia dump excerpt's articles, markup stripped crudely."""
    import bz2

    text = bz2.open(path, "rt", encoding="utf-8").read()
    out = []
    for body in re.findall(r"<text[^>]*>(.*?)</text>", text, re.S):
        body = html.unescape(body)
        for _ in range(3):  # nested templates
            for pattern, repl in _WIKI_MARKUP[:2]:
                body = pattern.sub(repl, body)
        for pattern, repl in _WIKI_MARKUP[2:]:
            body = pattern.sub(repl, body)
        for line in body.splitlines():
            line = line.strip()
            if not line or line[0] in "=*#|{!:;":
                continue
            for sentence in re.split(r"(?<=[.!?])\s+", line):
                if 8 <= len(sentence.split()) <= 60 and not re.search(r"[{}|\[\]]", sentence):
                    out.append(sentence)
    return out


def counterfactual_sentences_for(terms: list[str], path: str | None = None) -> dict[str, list[str]]:
    """term → the counterfactual templates (filters/lexicons/counterfactual.yaml) filled with it."""
    data = yaml.safe_load(Path(path).read_text()) if path else load_yaml_resource("lexicons/counterfactual.yaml")
    return {term: [template.format(term=term) for template in data["templates"]] for term in terms}


def balance_terms(examples: list[Example], blinder: TermBlinder, natural: list[str], counterfactual: dict[str, list[str]],
                  blind: bool) -> list[Example]:
    """Dixon et al. 2018: for each identity term (or, when blinding, for the placeholder all terms share),
    add clean sentences that name it until its share of clean examples is the training set's base rate.
    Natural sentences (Wikipedia) come first, then counterfactual template sentences."""
    base_clean = sum(e.label == CLEAN for e in examples) / len(examples)
    counts: dict[str, list[int]] = {}
    for e in examples:
        for term in set(blinder.find(e.text)):
            key = "*" if blind else term.rstrip("s") if term.rstrip("s") in counterfactual else term
            c = counts.setdefault(key, [0, 0])
            c[e.label == CLEAN] += 1
    pools: dict[str, list[Example]] = {}
    for sentence in natural:
        text = normalize(sentence)
        for term in set(blinder.find(text)):
            key = "*" if blind else term.rstrip("s") if term.rstrip("s") in counterfactual else term
            pools.setdefault(key, []).append(Example(text, CLEAN, "natural_identity"))
    for term, sentences in counterfactual.items():
        key = "*" if blind else normalize(term)
        pools.setdefault(key, []).extend(Example(normalize(t), CLEAN, "counterfactual") for t in sentences)
    added = []
    for key, (toxic, clean) in sorted(counts.items()):
        needed = math.ceil(base_clean * toxic / (1 - base_clean)) - clean
        pool = pools.get(key, [])
        if needed > 0 and pool:
            added += [pool[i % len(pool)] for i in range(needed)]
    return added


def build_training_set(train: list[Example], shared_data: Path, seed: int, recipe: Recipe) -> list[Example]:
    rng = random.Random(seed)
    examples = list(train) + [e for e in train if e.label == CLEAN] * (CLEAN_TWEET_REPEATS - 1)
    wikitext = shared_data / "quality-text-samples" / "positive" / "wikitext-2-valid.tokens.txt"
    if wikitext.is_file():
        examples += [Example(normalize(t), CLEAN, "wikitext2_valid") for t in sentence_chunks(wikitext_paragraphs(wikitext), rng)]
    if recipe.toxigen:
        examples += toxigen_examples(shared_data) * TOXIGEN_REPEATS
    examples = [e for e in examples if e.text]
    if recipe.balance:
        from gristmill.filters.bias_audit import blinding_terms

        terms = blinding_terms()
        natural = []
        for path in (shared_data / "quality-text-samples" / "positive" / "enwiki-pages-articles1-shortened.xml.bz2",):
            if path.is_file():
                natural += wikipedia_sentences(path)
        examples += balance_terms(examples, TermBlinder(terms), natural,
                                  counterfactual_sentences_for([normalize(t) for t in terms]), recipe.blind)
    return [e for e in examples if e.text]


def main(shared_data: str | Path, out: str | Path, seed: int = 0, log=print, recipes=RECIPES,
         holistic_templates: str | Path | None = None) -> dict:
    """Train every recipe on the same Davidson split; evaluate each on held-out Davidson and on both halves
    of the paired identity audit; ship the recipe chosen by `choose` (tuning half only) at `out`."""
    from gristmill.filters.bias_audit import blinding_terms, load_paired_audit, run_paired_audit

    shared_data = Path(shared_data)
    out = Path(out)
    davidson = load_davidson(shared_data / "toxicity-davidson")
    train, heldout = split_heldout(davidson, seed)
    log(f"davidson: {len(davidson)} tweets, train {len(train)}, held-out {len(heldout)}")
    holistic = holistic_templates or shared_data / "lexicons" / "holistic_bias_v1.1" / "sentence_templates.json"
    audit_set = load_paired_audit(holistic_templates=holistic if Path(holistic).is_file() else None)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for recipe in recipes:
            examples = build_training_set(train, shared_data, seed, recipe)
            path = os.path.join(tmp, f"{recipe.name}.ftz")
            train_model(examples, path, seed, blind_terms=blinding_terms() if recipe.blind else None)
            model = ToxicityModel(path)
            audits = {half: run_paired_audit(model, audit_set, half) for half in ("tune", "report")}
            results[recipe.name] = {
                "recipe": {k: v for k, v in recipe.__dict__.items() if k != "name"},
                "training_examples": len(examples),
                "training_by_source": _count_groups(examples),
                "heldout": evaluate(model, heldout),
                "audit_tune": _audit_summary(audits["tune"]),
                "audit_report": _audit_summary(audits["report"]),
                "bytes": os.path.getsize(path),
                "path": path,
            }
            r = results[recipe.name]
            log(f"{recipe.name}: held-out AUC {r['heldout']['auc']}; audit tune/report: AUC {r['audit_tune']['auc']}/"
                f"{r['audit_report']['auc']}, max term FPR {r['audit_tune']['fpr_max']}/{r['audit_report']['fpr_max']}, "
                f"spread@90% {r['audit_tune']['spread_at_90_specificity']}/{r['audit_report']['spread_at_90_specificity']}")
        shipped = choose(results)
        out.parent.mkdir(parents=True, exist_ok=True)
        os.replace(results[shipped]["path"], out)
        blind_file = results[shipped]["path"] + BLIND_SUFFIX
        if os.path.exists(blind_file):
            os.replace(blind_file, str(out) + BLIND_SUFFIX)
        elif os.path.exists(str(out) + BLIND_SUFFIX):
            os.remove(str(out) + BLIND_SUFFIX)
        for variant in results:
            results[variant].pop("path", None)
    config = fit_combiner(out, shared_data, seed, log, audit_set)
    combined = ToxicityModel(out)
    audits = {half: run_paired_audit(combined, audit_set, half) for half in ("tune", "report")}
    metrics = {
        "model": out.name, "shipped": shipped, "seed": seed, "heldout_fraction": 0.2,
        "fasttext_params": PARAMS | {"seed": seed}, "quantize": QUANTIZE, "clean_tweet_repeats": CLEAN_TWEET_REPEATS,
        "toxigen_repeats": TOXIGEN_REPEATS, "selection": SELECTION_RULE, "auc_tolerance": AUC_TOLERANCE,
        "recipes": results,
        "combined": {"combiner": {k: config[k] for k in COMBINER_GRID}, "selection": config["selection"],
                     "heldout": evaluate(combined, heldout), "audit_tune": _audit_summary(audits["tune"]),
                     "audit_report": _audit_summary(audits["report"])},
    }
    Path(f"{out}.metrics.json").write_text(json.dumps(metrics, indent=2, ensure_ascii=False) + "\n")
    c = metrics["combined"]
    log(f"shipped {shipped} + combiner: {out} ({os.path.getsize(out)} bytes); held-out AUC {c['heldout']['auc']}; audit "
        f"tune/report: AUC {c['audit_tune']['auc']}/{c['audit_report']['auc']}, max term FPR {c['audit_tune']['fpr_max']}/"
        f"{c['audit_report']['fpr_max']}, spread@90% {c['audit_tune']['spread_at_90_specificity']}/"
        f"{c['audit_report']['spread_at_90_specificity']}; metrics in {out}.metrics.json")
    return metrics


SELECTION_RULE = ("on the audit's tuning half only: the recipes whose held-out Davidson AUC is within auc_tolerance of "
                  "plain's, then the fewest failed audit thresholds (max term FPR ≤ 0.05, spread at 90% specificity ≤ "
                  "0.15, AUC ≥ 0.95), then the highest tuning-half AUC")


def choose(results: dict) -> str:
    plain_auc = results["plain"]["heldout"]["auc"] if "plain" in results else max(r["heldout"]["auc"] for r in results.values())

    def failures(r: dict) -> int:
        a = r["audit_tune"]
        return (a["fpr_max"] > 0.05) + (a["spread_at_90_specificity"] > 0.15) + (a["auc"] < 0.95)

    eligible = [name for name, r in results.items() if r["heldout"]["auc"] >= plain_auc - AUC_TOLERANCE] or list(results)
    return min(eligible, key=lambda name: (failures(results[name]), -results[name]["audit_tune"]["auc"]))


def _audit_summary(report: dict) -> dict:
    """The audit figures without the per-term table (that is `gristmill audit-bias`'s job), the other group's
    headline figures beside them."""
    main = {k: v for k, v in report["main"].items() if k != "by_term"}
    if "other" in report:
        main["other"] = {k: report["other"][k] for k in ("terms", "auc", "fpr_max", "fpr_mean", "recall", "worst_terms")}
    main["frames"], main["phrase_pairs"] = report["frames"], report["phrase_pairs"]
    return main


def _count_groups(examples: list[Example]) -> dict:
    counts: dict[str, int] = {}
    for e in examples:
        counts[e.group] = counts.get(e.group, 0) + 1
    return dict(sorted(counts.items()))


# ---------------------------------------------------------------------------------------------------------
# The evaluative combiner (issue #23). Davidson and ToxiGen cannot teach how much praise or abuse of a person
# weighs: in Davidson, positive words are as common in toxic tweets as in clean ones (37% each), so a
# logistic regression fitted on them gives a valence 0.1-0.5 logit per unit and leaves the audit's tuning-half
# AUC at 0.71-0.83. The weights are therefore a prior on VADER's human ratings, chosen on a grid.

VALENCE_SUFFIX = ".valence.tsv"
OFFENSE_SUFFIX = ".offense.tsv"
OFFENSE_UNIT = 10.0  # the source model's weights (coefficient × idf) run to ~54 ("fuck"); insults are ~10-40
PROFANITY_SUFFIX = ".profanity.txt"
# VADER's negators and negation scalar (vaderSentiment 3.3.2, vaderSentiment.py NEGATE, N_SCALAR; MIT).
VADER_NEGATORS = (
    "aint", "arent", "cannot", "cant", "couldnt", "darent", "didnt", "doesnt", "ain't", "aren't", "can't", "couldn't",
    "daren't", "didn't", "doesn't", "dont", "hadnt", "hasnt", "havent", "isnt", "mightnt", "mustnt", "neither", "don't",
    "hadn't", "hasn't", "haven't", "isn't", "mightn't", "mustn't", "neednt", "needn't", "never", "none", "nope", "nor",
    "not", "nothing", "nowhere", "oughtnt", "shant", "shouldnt", "uhuh", "wasnt", "werent", "oughtn't", "shan't",
    "shouldn't", "uh-uh", "wasn't", "weren't", "without", "wont", "wouldnt", "won't", "wouldn't", "rarely", "seldom",
    "despite")
VADER_NEGATION_SCALAR = -0.74
COMBINER_GRID = {"alpha": (0.05, 0.1, 0.2, 0.35, 0.5), "beta": (0.0, 0.5, 1.0, 2.0, 3.0),
                 "delta": (1.0, 2.0, 3.0, 4.0), "gamma": (0.5, 1.0, 2.0, 3.0, 4.0),
                 "bias": (-8.0, -7.0, -6.0, -5.0, -4.0, -3.0)}
DAVIDSON_AUC_BEFORE = 0.9729  # the model before issue #23 (MODEL_CARD.md); the combiner may lose AUC_TOLERANCE
MAX_TUNE_FPR = 0.03  # pooled over terms, so that every term's (a blinded term differs by sampling only) stays ≤ 0.05
MAX_PROSE_FPR_RISE = 0.01  # clean Wikipedia sentences: edited prose must stay nearly unflagged
COMBINER_RULE = (f"on a grid of (alpha, beta, delta, gamma, bias): the points whose Davidson held-out AUC is ≥ "
                 f"{DAVIDSON_AUC_BEFORE} − {AUC_TOLERANCE}, whose false-positive rate at 0.5 on the clean Wikipedia "
                 f"excerpt sentences rises by ≤ {MAX_PROSE_FPR_RISE} over fastText's, whose pooled non-toxic FPR at "
                 f"0.5 on the audit's tuning half is ≤ {MAX_TUNE_FPR} and whose tuning-half recall at 0.5 is at least "
                 f"fastText's; of those, the highest tuning-half AUC, then the "
                 f"highest tuning-half recall")
VALENCE_HEADER = ("# Word valences, -4 (most negative) to 4: VADER's lexicon (Hutto & Gilbert 2014), vaderSentiment 3.3.2\n"
                  "# (PyPI; vader_lexicon.txt, the mean of ten human ratings), words only. MIT License, (c) 2014 C.J. Hutto.\n"
                  "# Written by gristmill's toxicity_train.write_valence_file; used by filters/toxicity.py ValenceLexicon.\n")
OFFENSE_HEADER = ("# Word offensiveness: the weights (coefficient x idf, averaged over its 5 calibration folds, / 10, those > 0)\n"
                  "# of alt-profanity-check 1.9.1's linear model (PyPI; profanity_check/data/model.joblib and vectorizer.joblib),\n"
                  "# trained by its authors on Davidson et al.'s tweets and Jigsaw's Wikipedia comments. MIT License, (c) 2018\n"
                  "# Victor Zhou, 2021 Menelaos Kotoglou and Dimitrios Mistriotis. Written by toxicity_train.write_offense_file.\n")
PROFANITY_HEADER = ("# LDNOOBW English list (List-of-Dirty-Naughty-Obscene-and-Otherwise-Bad-Words @ 5faf2ba, en), CC BY 4.0,\n"
                    "# copied from ../shared/data/lexicons/ldnoobw/en by gristmill's toxicity_train.fit_combiner. WARNING:\n"
                    "# obscene and offensive terms. A text with one of them keeps fastText's score (filters/toxicity.py).\n")


def write_valence_file(out: str | Path) -> int:
    """VADER's lexicon (from the installed vaderSentiment package) as `word<TAB>valence`, words only (the
    entries that `normalize` leaves as one word: no emoticons). Returns the number of words."""
    try:
        source = resources.files("vaderSentiment").joinpath("vader_lexicon.txt").read_text(encoding="utf-8")
    except ModuleNotFoundError as error:
        raise ModuleNotFoundError("writing the valence lexicon needs VADER: pip install '.[toxicity-train]'") from error
    rows = []
    for line in source.splitlines():
        word, value = line.split("\t")[:2]
        if normalize(word) == word and " " not in word:
            rows.append(f"{word}\t{float(value)}")
    Path(out).write_text(VALENCE_HEADER + "\n".join(rows) + "\n", encoding="utf-8")
    return len(rows)


def write_offense_file(out: str | Path) -> int:
    """alt-profanity-check's word weights (needs it, scikit-learn and joblib installed) as `word<TAB>weight`,
    the offensive ones (> 0), per OFFENSE_UNIT. Returns the number of words."""
    try:
        import joblib
        import numpy as np
        data = resources.files("profanity_check").joinpath("data")
    except ModuleNotFoundError as error:
        raise ModuleNotFoundError("writing the offensiveness lexicon needs alt-profanity-check: pip install '.[toxicity-train]'") from error
    model, vectorizer = joblib.load(str(data / "model.joblib")), joblib.load(str(data / "vectorizer.joblib"))
    coefficients = np.mean([(c.estimator if hasattr(c, "estimator") else c.base_estimator).coef_.ravel()
                            for c in model.calibrated_classifiers_], axis=0)
    weights = coefficients * vectorizer.idf_ / OFFENSE_UNIT
    rows = [f"{word}\t{weight:.3f}" for word, weight in zip(vectorizer.get_feature_names_out(), weights)
            if weight > 0 and normalize(word) == word]
    Path(out).write_text(OFFENSE_HEADER + "\n".join(rows) + "\n", encoding="utf-8")
    return len(rows)


def combiner_features(model: ToxicityModel, combiner: EvaluativeCombiner, texts: list[str]):
    """Per normalized text, `EvaluativeCombiner.features` (blinded as the model blinds): a float array (n, 5)."""
    import numpy as np

    rows = []
    for text, p in zip(texts, model.score_normalized(texts)):
        blinded = model.blinder(text) if model.blinder is not None else text
        rows.append(combiner.features(blinded, p))
    return np.array(rows, dtype=np.float64).reshape(-1, 5)


def combined_logits(features, alpha: float, beta: float, delta: float, gamma: float, bias: float):
    """EvaluativeCombiner.logit over a feature array (the same formula)."""
    import numpy as np

    fasttext_logit, profane, negative, positive, offensive = features.T
    return np.where(profane > 0, fasttext_logit,
                    alpha * fasttext_logit + beta * negative - delta * positive + gamma * offensive + bias)


def fit_combiner(model_path: str | Path, shared_data: str | Path, seed: int = 0, log=print, audit_set=None) -> dict:
    """Write the combiner's word lists and `<model>.combiner.json` beside `model_path` (COMBINER_RULE)."""
    import itertools

    import numpy as np

    from gristmill.filters.bias_audit import load_paired_audit

    shared_data, model_path = Path(shared_data), str(model_path)
    valence_file, profanity_file = Path(model_path + VALENCE_SUFFIX), Path(model_path + PROFANITY_SUFFIX)
    offense_file = Path(model_path + OFFENSE_SUFFIX)
    words = write_valence_file(valence_file)
    offensive_words = write_offense_file(offense_file)
    ldnoobw = (shared_data / "lexicons" / "ldnoobw" / "en").read_text(encoding="utf-8")
    profanity_file.write_text(PROFANITY_HEADER + ldnoobw, encoding="utf-8")
    lexicon = ValenceLexicon.from_file(valence_file, VADER_NEGATORS, VADER_NEGATION_SCALAR)
    features_of = EvaluativeCombiner(0, 0, 0, 0, 0, TOXIC, lexicon, WordSet.from_file(profanity_file),
                                     read_word_weights(offense_file))
    model = ToxicityModel(model_path, use_combiner=False)

    _, heldout = split_heldout(load_davidson(shared_data / "toxicity-davidson"), seed)
    if audit_set is None:
        holistic = shared_data / "lexicons" / "holistic_bias_v1.1" / "sentence_templates.json"
        audit_set = load_paired_audit(holistic_templates=holistic if holistic.is_file() else None)
    tune = audit_set.sentences("tune", ("main",))
    prose = [normalize(t) for t in wikipedia_sentences(shared_data / "quality-text-samples" / "positive"
                                                       / "enwiki-pages-articles1-shortened.xml.bz2")]
    features = {"davidson": combiner_features(model, features_of, [e.text for e in heldout]),
                "tune": combiner_features(model, features_of, [normalize(s.text) for s in tune]),
                "prose": combiner_features(model, features_of, [t for t in prose if t])}
    davidson_toxic = np.array([e.label == TOXIC for e in heldout])
    tune_toxic = np.array([s.toxic for s in tune])
    prose_fpr_fasttext = float((features["prose"][:, 0] > 0).mean())
    tune_recall_fasttext = float((features["tune"][tune_toxic, 0] > 0).mean())
    points = []
    for alpha, beta, delta, gamma, bias in itertools.product(*COMBINER_GRID.values()):
        z = {name: combined_logits(f, alpha, beta, delta, gamma, bias) for name, f in features.items()}
        points.append({"alpha": alpha, "beta": beta, "delta": delta, "gamma": gamma, "bias": bias,
                       "davidson_auc": round(auc_array(z["davidson"], davidson_toxic), 4),
                       "prose_fpr": round(float((z["prose"] > 0).mean()), 4),
                       "tune_auc": round(auc_array(z["tune"], tune_toxic), 4),
                       "tune_fpr": round(float((z["tune"][~tune_toxic] > 0).mean()), 4),
                       "tune_recall": round(float((z["tune"][tune_toxic] > 0).mean()), 4)})
    eligible = [p for p in points if p["davidson_auc"] >= DAVIDSON_AUC_BEFORE - AUC_TOLERANCE
                and p["prose_fpr"] <= prose_fpr_fasttext + MAX_PROSE_FPR_RISE and p["tune_fpr"] <= MAX_TUNE_FPR
                and p["tune_recall"] >= tune_recall_fasttext]
    if not eligible:
        raise RuntimeError("no combiner point meets the guards of COMBINER_RULE")
    chosen = max(eligible, key=lambda p: (p["tune_auc"], p["tune_recall"]))
    config = {"label": TOXIC, **{k: chosen[k] for k in COMBINER_GRID}, "valence_file": valence_file.name,
              "offense_file": offense_file.name, "profanity_file": profanity_file.name,
              "negators": list(VADER_NEGATORS), "negation_scalar": VADER_NEGATION_SCALAR,
              "selection": {"rule": COMBINER_RULE, "grid": {k: list(v) for k, v in COMBINER_GRID.items()},
                            "points_eligible": len(eligible), "points": len(points), "chosen": chosen,
                            "fasttext_alone": {"davidson_auc": round(auc_array(features["davidson"][:, 0], davidson_toxic), 4),
                                               "prose_fpr": round(prose_fpr_fasttext, 4),
                                               "tune_auc": round(auc_array(features["tune"][:, 0], tune_toxic), 4),
                                               "tune_recall": round(tune_recall_fasttext, 4)},
                            "valence_words": words, "offensive_words": offensive_words, "davidson_heldout": len(heldout), "tune_sentences": len(tune),
                            "prose_sentences": len(features["prose"])}}
    out = Path(model_path + COMBINER_SUFFIX)
    out.write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    EvaluativeCombiner.from_file(out)  # loads
    log(f"combiner: {len(eligible)}/{len(points)} grid points meet the guards; chosen {chosen}; written {out}")
    return config


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="Fit the evaluative combiner of a trained toxicity model.")
    parser.add_argument("command", choices=["combiner"])
    parser.add_argument("shared_data", type=Path)
    parser.add_argument("--model", default=None, help="the .ftz (default: the shipped model)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    from gristmill.filters.toxicity import default_model_path

    fit_combiner(args.model or default_model_path(), args.shared_data, args.seed)
