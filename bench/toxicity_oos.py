"""Toxicity: an out-of-sample template check in the shape of issue #23's unseen set ("NAME is a fantastic
bisexual" / "NAME is a vile sikh"), with words nobody tuned on.

    python bench/toxicity_oos.py [--model PATH] [--baseline PATH] [--json OUT]

Sentences: "{name} is a/an {adjective} {term}." for each of Jigsaw's 50 identity terms (filters/lexicons/
audit_terms.yaml) and each adjective below, the name drawn per (term, adjective) by a seeded RNG from names
that are not the audit's. Adjectives: Pattern's English adjective lexicon (TextBlob 0.20.1,
textblob/en/en-sentiment.xml, PDDL; De Smedt & Daelemans 2012), entries tagged JJ with mean polarity ≤ -0.6
(toxic side) or ≥ 0.8 (non-toxic side), keeping those that describe a person (left out: states and
weather such as "afraid", "chilly", "frustrated", and mild or odd ones such as "boring", "cushy"); chosen
before any model scored them. This lexicon is not one the combiner reads (it reads VADER and
alt-profanity-check's weights), and neither these sentences nor their frame were used for any choice.
Reported: template AUC, per-term false-positive rate at 0.5 (max, mean), recall at 0.5, and the same for
the adjectives that the combiner's lexicons know and those they do not.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

TOXIC_ADJECTIVES = (
    "abhorrent", "annoying", "atrocious", "awful", "bad", "barbarian", "brutal", "crazy", "cruddy", "crude", "cruel",
    "dangerous", "debauched", "deplorable", "destructive", "dirty", "discourteous", "disgusting", "dreadful", "evil",
    "fiendish", "filthy", "horrible", "idiotic", "inhumane", "insane", "insulting", "malevolent", "menacing",
    "merciless", "nasty", "pathetic", "repellent", "retarded", "ruthless", "sickening", "stupid", "subnormal",
    "terrible", "ugly", "uncivil", "unintelligent", "unpleasant", "vicious", "violent", "vulgar", "worthless")
CLEAN_ADJECTIVES = (
    "affable", "attractive", "awesome", "beautiful", "brave", "brilliant", "delightful", "excellent", "experienced",
    "expressive", "faultless", "flawless", "great", "happy", "ideal", "impressive", "incredible", "intelligent",
    "legendary", "magnificent", "marvelous", "masterful", "perfect", "proud", "splendid", "superb", "wonderful")
NAMES = ("Ana", "Bilal", "Chen", "Dara", "Emeka", "Farah", "Goran", "Hana", "Ivan", "Jun", "Kofi", "Leila", "Malik",
         "Nadia", "Oscar", "Pooja", "Rashid", "Sofia", "Taro", "Umar", "Vera", "Wanjiru", "Yusuf", "Zara")


def sentences() -> list[tuple[str, str, bool, str]]:
    """(term, adjective, toxic, sentence)."""
    from gristmill.filters.bias_audit import load_audit_terms

    terms = load_audit_terms()["main"]["jigsaw"]
    out = []
    for term in terms:
        for toxic, adjectives in ((True, TOXIC_ADJECTIVES), (False, CLEAN_ADJECTIVES)):
            for adjective in adjectives:
                name = random.Random(f"{term}|{adjective}").choice(NAMES)
                article = "an" if adjective[0] in "aeiou" else "a"
                out.append((term, adjective, toxic, f"{name} is {article} {adjective} {term}."))
    return out


def figures(rows, scores) -> dict:
    from gristmill.filters.metrics import auc

    clean_by_term: dict[str, list[float]] = {}
    for (term, _, toxic, _), s in zip(rows, scores):
        if not toxic:
            clean_by_term.setdefault(term, []).append(s)
    fprs = {term: sum(s > 0.5 for s in ss) / len(ss) for term, ss in clean_by_term.items()}
    toxic = [s for (_, _, t, _), s in zip(rows, scores) if t]
    worst = sorted(fprs.items(), key=lambda kv: -kv[1])[:5]
    return {"sentences": len(rows), "auc": round(auc(scores, [r[2] for r in rows]), 4),
            "fpr_max": round(max(fprs.values()), 4) if fprs else None,
            "fpr_mean": round(sum(fprs.values()) / len(fprs), 4) if fprs else None,
            "recall": round(sum(s > 0.5 for s in toxic) / len(toxic), 4) if toxic else None,
            "worst_terms": [[t, round(f, 4)] for t, f in worst]}


def evaluate(model_path: str | None) -> dict:
    from gristmill.filters.toxicity import ToxicityModel

    model = ToxicityModel(model_path)
    rows = sentences()
    scores = model.score_many([r[3] for r in rows])
    out = {"model": model.path, "all": figures(rows, scores)}
    combiner = model.combiner
    if combiner is not None:
        known = set(combiner.lexicon.valences) | set(combiner.offense) | set(combiner.profanity.words)
        for name, keep in (("adjective_in_combiner_lexicons", True), ("adjective_unknown_to_combiner", False)):
            idx = [i for i, r in enumerate(rows) if (r[1] in known) == keep]
            out[name] = {"toxic_adjectives": sorted({rows[i][1] for i in idx if rows[i][2]}),
                         "clean_adjectives": sorted({rows[i][1] for i in idx if not rows[i][2]}),
                         **figures([rows[i] for i in idx], [scores[i] for i in idx])}
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--baseline", default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    result = {"model": evaluate(args.model)}
    if args.baseline:
        result["baseline"] = evaluate(args.baseline)
    text = json.dumps(result, indent=2)
    if args.json:
        args.json.write_text(text + "\n")
    sys.stdout.write(text + "\n")


if __name__ == "__main__":
    main()
