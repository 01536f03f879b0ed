"""Toxicity: the unit (whole document or each sentence) and the threshold, measured on the paired identity
audit and on web pages (issue #23, point 3).

    python bench/toxicity_unit.py ../shared/data [--model PATH] [--baseline PATH] [--json OUT]

For each model, unit and threshold:
- identity-term false positives: the audit's report-half non-toxic sentences (main terms; 4 per term,
  drawn with a fixed seed) placed inside a clean ~80-word news paragraph (the first sentences of a Lee/ABC
  news article, evaluation-only data), after its second sentence: the share flagged, overall and for the
  worst term; and the same sentences alone;
- toxic sentences caught inside clean pages: the audit's report-half toxic sentences, placed the same way;
- clean web pages flagged: the 140 trafilatura-eval pages (extracted text), the 300 Lee articles and the 20
  CCNet documents, whole;
- recall on the project's 220 web-style toxic texts (tests/data/toxicity_web_labeled.jsonl).
Units: `document` = the model's score of the whole text; `sentence` = the highest score of any sentence
(filters.toxicity.split_spans), what span mode acts on. The length rule `sentence if ≤ 1 sentence else
both` needs no row of its own: a one-sentence text scores the same in both units.
"""

from __future__ import annotations

import argparse
import glob
import gzip
import json
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from toxicity_web import _extract  # noqa: E402

THRESHOLDS = (0.5, 0.7, 0.8, 0.9)
PER_TERM = 4
HOST_WORDS = 80


def news_hosts(shared: Path) -> list[str]:
    """Clean ~80-word paragraphs: the first whole sentences of each Lee news article."""
    import re

    lee = (shared / "quality-text-samples" / "positive" / "lee_background.cor").read_text(encoding="utf-8", errors="replace")
    hosts = []
    for article in lee.splitlines():
        sentences = [s for s in re.split(r"(?<=[.!?])\s+", article.strip()) if s]
        kept, words = [], 0
        for s in sentences:
            kept.append(s)
            words += len(s.split())
            if words >= HOST_WORDS:
                break
        if words >= HOST_WORDS and len(kept) >= 3:
            hosts.append(kept)
    return hosts


def web_pages(shared: Path) -> list[str]:
    pages = []
    for f in sorted(glob.glob(str(shared / "trafilatura-eval-en" / "html" / "*.html.gz"))):
        text = _extract(gzip.open(f).read())
        if text and len(text.split()) >= 30:
            pages.append(text)
    positive = shared / "quality-text-samples" / "positive"
    pages += [line for line in (positive / "lee_background.cor").read_text(encoding="utf-8", errors="replace").splitlines()
              if len(line.split()) >= 30]
    for f in sorted(positive.glob("dolma-ccnet-*.jsonl")):
        pages += [json.loads(line)["text"] for line in f.read_text(encoding="utf-8").splitlines()]
    return pages


def unit_scores(model, texts: list[str]) -> dict[str, list[float]]:
    document = model.score_many(texts)
    sentence = [max((s.score for s in model.score_spans(t, "sentence")), default=0.0) for t in texts]
    return {"document": document, "sentence": sentence}


def evaluate(shared: Path, model_path: str | None) -> dict:
    from gristmill.filters.bias_audit import load_paired_audit
    from gristmill.filters.toxicity import ToxicityModel

    model = ToxicityModel(model_path)
    holistic = shared / "lexicons" / "holistic_bias_v1.1" / "sentence_templates.json"
    audit = load_paired_audit(holistic_templates=holistic if holistic.is_file() else None)
    rng = random.Random(0)
    by_term: dict[tuple[str, bool], list] = {}
    for s in audit.sentences("report", ("main",)):
        by_term.setdefault((s.term, s.toxic), []).append(s)
    hosts = news_hosts(shared)
    rows = []  # (term, toxic, sentence, page)
    for (term, toxic), items in sorted(by_term.items()):
        for s in rng.sample(items, min(PER_TERM, len(items))):
            host = rng.choice(hosts)
            rows.append((term, toxic, s.text, " ".join(host[:2] + [s.text] + host[2:])))
    alone = unit_scores(model, [r[2] for r in rows])["document"]
    in_page = unit_scores(model, [r[3] for r in rows])
    pages = web_pages(shared)
    page_scores = unit_scores(model, pages)
    labeled = [json.loads(line) for line in (ROOT / "tests" / "data" / "toxicity_web_labeled.jsonl").read_text().splitlines()]
    toxic_texts = [r["text"] for r in labeled if r["label"] == "toxic"]
    labeled_scores = unit_scores(model, toxic_texts)
    out = {"model": model.path, "hosts": len(hosts), "audit_sentences": len(rows), "web_pages": len(pages),
           "labeled_toxic": len(toxic_texts), "by_threshold": {}}
    for t in THRESHOLDS:
        row = {}
        for unit in ("document", "sentence"):
            clean_terms: dict[str, list[int]] = {}
            caught = n_toxic = 0
            for (term, toxic, _, _), score in zip(rows, in_page[unit]):
                if toxic:
                    n_toxic += 1
                    caught += score > t
                else:
                    c = clean_terms.setdefault(term, [0, 0])
                    c[0] += score > t
                    c[1] += 1
            rates = {term: fp / n for term, (fp, n) in clean_terms.items()}
            n_clean = sum(n for _, n in clean_terms.values())
            row[unit] = {
                "identity_fp_in_page_mean": round(sum(fp for fp, _ in clean_terms.values()) / n_clean, 4),
                "identity_fp_in_page_worst_term": round(max(rates.values()), 4),
                "identity_fp_in_page_terms_over_0.05": sum(r > 0.05 for r in rates.values()),
                "toxic_caught_in_page": round(caught / n_toxic, 4),
                "web_pages_flagged": round(sum(s > t for s in page_scores[unit]) / len(pages), 4),
                "labeled_toxic_recall": round(sum(s > t for s in labeled_scores[unit]) / len(toxic_texts), 4),
            }
        clean_alone = [s for (_, toxic, _, _), s in zip(rows, alone) if not toxic]
        toxic_alone = [s for (_, toxic, _, _), s in zip(rows, alone) if toxic]
        row["sentence_alone"] = {"identity_fp": round(sum(s > t for s in clean_alone) / len(clean_alone), 4),
                                 "toxic_caught": round(sum(s > t for s in toxic_alone) / len(toxic_alone), 4)}
        out["by_threshold"][str(t)] = row
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("shared_data", type=Path)
    parser.add_argument("--model", default=None, help="model to measure (default: the shipped one)")
    parser.add_argument("--baseline", default=None, help="a second model measured in the same run")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    result = {}
    for name, path in (("model", args.model), ("baseline", args.baseline)):
        if name == "baseline" and not path:
            continue
        start = time.perf_counter()
        result[name] = evaluate(args.shared_data, path)
        result[name]["seconds"] = round(time.perf_counter() - start, 1)
    text = json.dumps(result, indent=2)
    if args.json:
        args.json.write_text(text + "\n")
    sys.stdout.write(text + "\n")


if __name__ == "__main__":
    main()
