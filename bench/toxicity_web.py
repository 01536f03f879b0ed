"""Toxicity on web text: false positives on clean English web paragraphs, recall on web-style toxic text.

    python bench/toxicity_web.py ../shared/data [--model PATH] [--json OUT]

Clean paragraphs (each a line of ≥ 12 words that py3langid calls English with p ≥ 0.9), by source:
- demo web: the article pages of the project's demo site (pipeline/demo/web.py), extracted by trafilatura;
- warc: the HTML responses of ../shared/data/warc-samples, extracted by trafilatura (evaluation only, as
  that set's README asks);
- trafilatura-eval: the 140 English pages of ../shared/data/trafilatura-eval-en, extracted;
- wikitext-2 test, Lee (ABC news), CCNet head documents: ../shared/data/quality-text-samples (the model
  trains on WikiText-2 *valid* only, never on these).
These are assumed clean (edited or ordinary web prose); the FPR counts paragraphs scoring above the
threshold, and the word-list hit rate the paragraphs with any LDNOOBW `en` word.

Recall: tests/data/toxicity_web_labeled.jsonl (220 toxic and 60 clean web-style texts the project
wrote; labelling rules beside it), overall and per kind, for the model and for the word list.
"""

from __future__ import annotations

import argparse
import glob
import gzip
import json
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MIN_WORDS = 12


def _paragraphs(text: str | None):
    for line in (text or "").splitlines():
        if len(line.split()) >= MIN_WORDS:
            yield line.strip()


def _extract(html: bytes | str) -> str | None:
    import trafilatura

    return trafilatura.extract(html, include_comments=False, include_tables=False)


def clean_web_paragraphs(shared: Path) -> dict[str, list[str]]:
    from gristmill.filters.training.toxicity_train import wikitext_paragraphs
    from gristmill.pipeline.demo.web import ARTICLE, build_demo_site
    from gristmill.pipeline.sources.warc import read_warc_table
    from gristmill.schemas import columns as C

    out: dict[str, list[str]] = {}
    out["demo_web"] = [p for page in build_demo_site(0) if page.kind == ARTICLE and page.status == 200
                       for p in _paragraphs(_extract(page.body))]
    warc = []
    for path in sorted(glob.glob(str(shared / "warc-samples" / "*.warc.gz"))):
        table = read_warc_table(path, 5_000_000)
        for content in table[C.CONTENT].to_pylist():
            if content:
                warc += list(_paragraphs(_extract(content)))
    out["warc_samples"] = warc
    out["trafilatura_eval"] = [p for f in sorted(glob.glob(str(shared / "trafilatura-eval-en" / "html" / "*.html.gz")))
                               for p in _paragraphs(_extract(gzip.open(f).read()))]
    positive = shared / "quality-text-samples" / "positive"
    out["wikitext2_test"] = wikitext_paragraphs(positive / "wikitext-2-test.tokens.txt")
    lee = (positive / "lee_background.cor").read_text(encoding="utf-8", errors="replace").splitlines()
    out["lee_news"] = [line for line in lee if len(line.split()) >= MIN_WORDS]
    ccnet = []
    for f in sorted(positive.glob("dolma-ccnet-*.jsonl")):
        for line in f.read_text(encoding="utf-8").splitlines():
            ccnet += list(_paragraphs(json.loads(line)["text"]))
    out["ccnet_head"] = ccnet
    return out


def english_only(paragraphs: dict[str, list[str]]) -> dict[str, list[str]]:
    from gristmill.filters.language import LanguageScorer

    scorer = LanguageScorer()
    out = {}
    for source, items in paragraphs.items():
        seen, kept = set(), []
        for p in items:
            language, score = scorer.score(p)
            if language == "en" and score >= 0.9 and p not in seen:
                seen.add(p)
                kept.append(p)
        out[source] = kept
    return out


def evaluate(shared: Path, model_path: str | None, thresholds=(0.5, 0.4)) -> dict:
    from gristmill.filters.identity import IdentityLexicon
    from gristmill.filters.toxicity import ToxicityModel, WordListScorer

    model = ToxicityModel(model_path)
    lexicon = IdentityLexicon.default()
    words = WordListScorer.from_file(shared / "lexicons" / "ldnoobw" / "en")
    clean = english_only(clean_web_paragraphs(shared))
    fpr = {}
    total = Counter()
    for source, items in clean.items():
        scores = model.score_many(items)
        row = {"paragraphs": len(items)}
        for t in thresholds:
            row[f"fpr@{t}"] = round(sum(s > t for s in scores) / len(items), 4) if items else None
            total[f"fp@{t}"] += sum(s > t for s in scores)
        attacks = [lexicon.identity_attack(p, model.score_many) for p in items]
        for t in (0.5, 0.8, 0.9):
            row[f"identity_attack_rate@{t}"] = round(sum(a > t for a in attacks) / len(items), 4) if items else None
            total[f"attack@{t}"] += sum(a > t for a in attacks)
        hits = sum(words.count(p) > 0 for p in items)
        row["word_list_hit_rate"] = round(hits / len(items), 4) if items else None
        total["word_hits"] += hits
        total["paragraphs"] += len(items)
        row["examples_flagged"] = [p[:160] for p, s in zip(items, scores) if s > thresholds[0]][:3]
        fpr[source] = row
    n = total["paragraphs"]
    fpr["all"] = {"paragraphs": n, **{f"fpr@{t}": round(total[f"fp@{t}"] / n, 4) for t in thresholds},
                  **{f"identity_attack_rate@{t}": round(total[f"attack@{t}"] / n, 4) for t in (0.5, 0.8, 0.9)},
                  "word_list_hit_rate": round(total["word_hits"] / n, 4)}

    labeled = [json.loads(line) for line in (ROOT / "tests" / "data" / "toxicity_web_labeled.jsonl").read_text().splitlines()]
    scores = model.score_many([r["text"] for r in labeled])
    by_kind: dict[str, Counter] = {}
    for r, s in zip(labeled, scores):
        c = by_kind.setdefault(f"{r['label']}:{r['kind']}", Counter())
        c["n"] += 1
        c["model"] += s > thresholds[0]
        c["words"] += words.count(r["text"]) > 0
        c["attack"] += lexicon.identity_attack(r["text"], model.score_many) > 0.5
    toxic = [(r, s) for r, s in zip(labeled, scores) if r["label"] == "toxic"]
    clean_rows = [(r, s) for r, s in zip(labeled, scores) if r["label"] == "clean"]
    recall = {
        "toxic_texts": len(toxic), "clean_texts": len(clean_rows),
        **{f"recall@{t}": round(sum(s > t for _, s in toxic) / len(toxic), 4) for t in thresholds},
        "word_list_recall": round(sum(words.count(r["text"]) > 0 for r, _ in toxic) / len(toxic), 4),
        "either_recall@0.5": round(sum((s > 0.5) or words.count(r["text"]) > 0 for r, s in toxic) / len(toxic), 4),
        "clean_fpr@0.5": round(sum(s > 0.5 for _, s in clean_rows) / len(clean_rows), 4),
        "clean_word_list_fpr": round(sum(words.count(r["text"]) > 0 for r, _ in clean_rows) / len(clean_rows), 4),
        "by_kind": {k: {"n": c["n"], "model_flagged": round(c["model"] / c["n"], 4), "word_list_flagged": round(c["words"] / c["n"], 4),
                        "identity_attack@0.5": round(c["attack"] / c["n"], 4)}
                    for k, c in sorted(by_kind.items())},
        "missed_examples": [r["text"] for r, s in toxic if s <= thresholds[0]][:8],
    }
    return {"model": model.path, "clean_web_fpr": fpr, "labeled_recall": recall}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("shared_data", type=Path)
    parser.add_argument("--model", default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    result = evaluate(args.shared_data, args.model)
    text = json.dumps(result, indent=2)
    if args.json:
        args.json.write_text(text + "\n")
    sys.stdout.write(text + "\n")


if __name__ == "__main__":
    main()
