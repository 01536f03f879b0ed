"""PII detection quality: recall and precision per entity type on the labeled set, and detections per
1,000 real documents.

    python bench/pii_eval.py [--labeled tests/data/pii_labeled.jsonl] [--ner-model auto]
                             [--shared-data ../shared/data] [--sample 40]

Labeled set (bench/pii_labeled_set.py writes it; how it is labeled is in that file's docstring): a
detection is a true positive when it has the gold span's type and overlaps it; `covered` counts gold
spans that a same-type detection covers whole (what redaction needs for no byte of the value to stay).
A detection with no same-type gold span is a false positive; a gold span with no same-type detection a
miss. NER types are scored only with a model (--ner-model), and only on the NER sentences.

Real documents: the English documents of tests/support/quality_corpus.py (WARC samples, quality text samples,
the demo web), with counts per type per 1,000 documents and a random sample of detections printed with
context for judging by eye.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from gristmill.filters.pii import NER_ENTITIES, STRUCTURED_ENTITIES, PiiAnalyzer, find_ner_model  # noqa: E402


def score(records: list[dict], analyzer: PiiAnalyzer, entities) -> dict[str, dict]:
    tp, fp, fn, covered, gold_n = Counter(), Counter(), Counter(), Counter(), Counter()
    errors = []
    ner_on = bool(analyzer.ner_entities)
    for r in records:
        use_ner = ner_on and r["kind"] == "ner"
        if r["kind"] == "ner" and not ner_on:
            continue
        found = [s for s in analyzer.analyze(r["text"], ner=use_ner) if s.entity in entities]
        gold = [g for g in r["spans"] if g["entity"] in entities]
        for g in gold:
            gold_n[g["entity"]] += 1
            same = [s for s in found if s.entity == g["entity"] and s.start < g["end"] and g["start"] < s.end]
            if same:
                tp[g["entity"]] += 1
                covered[g["entity"]] += any(s.start <= g["start"] and s.end >= g["end"] for s in same)
            else:
                fn[g["entity"]] += 1
                errors.append(("miss", g["entity"], r["text"][g["start"]:g["end"]], r["text"]))
        for s in found:
            if not any(g["entity"] == s.entity and s.start < g["end"] and g["start"] < s.end for g in gold):
                fp[s.entity] += 1
                errors.append(("false positive", s.entity, r["text"][s.start:s.end], r["text"]))
    table = {}
    for e in entities:
        predicted = tp[e] + fp[e]
        table[e] = {"gold": gold_n[e], "tp": tp[e], "fp": fp[e], "fn": fn[e], "covered": covered[e],
                    "recall": round(tp[e] / gold_n[e], 3) if gold_n[e] else None,
                    "precision": round(tp[e] / predicted, 3) if predicted else None}
    return {"per_type": table, "errors": errors}


def value_gone(gold: dict, found) -> bool:
    """The issue's recall: every character of the value lies inside some redacted span (of any type)."""
    covered = sorted((s.start, s.end) for s in found if s.start < gold["end"] and gold["start"] < s.end)
    position = gold["start"]
    for start, end in covered:
        if start > position:
            return False
        position = max(position, end)
    return position >= gold["end"]


def generated_set_summary(records: list[dict], analyzer: PiiAnalyzer) -> dict:
    """For bench/pii_faker_set.py's records: structured recall as 'the value is gone', phones valid for
    their plan (overall and per region), by format, cards by network, the share of PII-free texts given
    a placeholder, PERSON recall/precision when NER is on."""
    ner_on = bool(analyzer.ner_entities)
    gone, total = Counter(), Counter()
    phone_valid_region, phone_valid_region_n = Counter(), Counter()
    by_format, by_format_n = Counter(), Counter()
    negatives, negatives_hit, negative_hits = Counter(), Counter(), []
    misses = []
    person = Counter()
    for r in records:
        family = r["family"]
        if family == "PERSON":
            if not ner_on:
                continue
            found = [s for s in analyzer.analyze(r["text"], ner=True) if s.entity == "PERSON"]
            g = r["spans"][0]
            hit = any(s.start < g["end"] and g["start"] < s.end for s in found)
            person["gold"] += 1
            person["tp"] += hit
            person["predicted"] += len(found)
            person["tp_predicted"] += sum(1 for s in found if s.start < g["end"] and g["start"] < s.end)
            continue
        found = analyzer.analyze(r["text"], ner=False)
        if family == "NEGATIVE":
            negatives[r.get("kind2", "hard")] += 1
            if found:
                negatives_hit[r.get("kind2", "hard")] += 1
                negative_hits.extend((s.entity, r["text"][s.start:s.end], r["text"]) for s in found)
            if ner_on:  # a PERSON/LOCATION placeholder on a PII-free text counts too
                named = analyzer.analyze(r["text"], ner=True)
                person["negative_texts_with_ner"] += bool([s for s in named if s.entity in NER_ENTITIES])
            continue
        for g in r["spans"]:
            ok = value_gone(g, found)
            total[g["entity"]] += 1
            gone[g["entity"]] += ok
            key = (g["entity"], r.get("format") or "-")
            by_format_n[key] += 1
            by_format[key] += ok
            if g["entity"] == "PHONE_NUMBER" and r.get("valid"):
                phone_valid_region_n[r["region"]] += 1
                phone_valid_region[r["region"]] += ok
            if not ok:
                misses.append((g["entity"], r.get("format"), r.get("region"), r["text"][g["start"]:g["end"]], r["text"]))
    valid_n = sum(phone_valid_region_n.values())
    return {
        "structured_recall": round(sum(gone.values()) / max(sum(total.values()), 1), 4),
        "structured_n": sum(total.values()),
        "per_type": {e: (gone[e], total[e], round(gone[e] / total[e], 4)) for e in sorted(total)},
        "phone_valid_recall": round(sum(phone_valid_region.values()) / max(valid_n, 1), 4), "phone_valid_n": valid_n,
        "phone_valid_regions": len(phone_valid_region_n),
        "phone_regions_below_097": {k: f"{phone_valid_region[k]}/{n}" for k, n in sorted(phone_valid_region_n.items())
                                    if phone_valid_region[k] / n < 0.97},
        "by_format": {f"{e} {fmt}": f"{by_format[(e, fmt)]}/{n}" for (e, fmt), n in sorted(by_format_n.items())},
        "negative_texts": dict(negatives), "negative_texts_with_placeholder": dict(negatives_hit),
        "negative_placeholder_rate": round(sum(negatives_hit.values()) / max(sum(negatives.values()), 1), 4),
        "negative_hits": negative_hits, "misses": misses, "person": dict(person),
    }


def real_documents(shared_data: Path, analyzer: PiiAnalyzer, sample: int, seed: int = 0) -> dict:
    from support.quality_corpus import english_corpus

    docs = english_corpus(shared_data)
    counts, docs_with = Counter(), Counter()
    hits = []
    started = time.perf_counter()
    texts = [t for _, t in docs]
    found = analyzer.analyze_batch(texts)
    seconds = time.perf_counter() - started
    for (source, text), spans in zip(docs, found):
        for s in spans:
            counts[s.entity] += 1
            hits.append((s.entity, source, text[max(0, s.start - 50):s.start] + "[[" + text[s.start:s.end] + "]]" + text[s.end:s.end + 50]))
        for e in {s.entity for s in spans}:
            docs_with[e] += 1
    per_1000 = {e: round(1000 * counts[e] / len(docs), 1) for e in sorted(counts)}
    rng = random.Random(seed)
    return {"documents": len(docs), "mb": round(sum(len(t.encode()) for t in texts) / 1e6, 2), "seconds": round(seconds, 2),
            "detections": dict(counts), "documents_with": dict(docs_with), "per_1000_documents": per_1000,
            "sample": rng.sample(hits, min(sample, len(hits)))}


def compare_on_real_documents(shared_data: Path, baseline_file: Path) -> None:
    """Spans found by only one of the two versions, document by document, with context for judging."""
    import importlib.util

    from support.quality_corpus import english_corpus

    spec = importlib.util.spec_from_file_location("pii_baseline", baseline_file)
    baseline = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = baseline
    spec.loader.exec_module(baseline)
    old, new = baseline.PiiAnalyzer(), PiiAnalyzer()
    print(f"\nspans that differ from {baseline_file} (NEW: only this code, GONE: only the baseline)")
    for source, text in english_corpus(shared_data):
        before = {(s.start, s.end, s.entity) for s in old.analyze(text)}
        after = {(s.start, s.end, s.entity) for s in new.analyze(text)}
        for label, spans in (("NEW ", after - before), ("GONE", before - after)):
            for start, end, entity in sorted(spans):
                context = text[max(0, start - 40):start] + "[[" + text[start:end] + "]]" + text[end:end + 30]
                print(f"  {label} {entity:14} {source:28} {' '.join(context.split())!r}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--labeled", type=Path, default=REPO / "tests" / "data" / "pii_labeled.jsonl")
    parser.add_argument("--ner-model", default=None, help="spaCy model for PERSON/LOCATION ('auto', a package or a folder)")
    parser.add_argument("--shared-data", type=Path, default=None, help="../shared/data: also count detections on real documents")
    parser.add_argument("--sample", type=int, default=40, help="detections on real documents printed for judging")
    parser.add_argument("--show-errors", action="store_true")
    parser.add_argument("--baseline", type=Path, default=None,
                        help="another filters/pii.py (e.g. `git show d5536e4:filters/pii.py`): with --shared-data, print "
                             "the spans on real documents that differ between it and this code")
    args = parser.parse_args()

    model = find_ner_model(args.ner_model) if args.ner_model else None
    if args.ner_model and model is None:
        print(f"NER model {args.ner_model!r} not installed: structured types only")
    analyzer = PiiAnalyzer(ner_model=model)
    entities = (*STRUCTURED_ENTITIES, *(NER_ENTITIES if model else ()))
    records = [json.loads(line) for line in args.labeled.read_text().splitlines()]
    if records and "family" in records[0]:  # a bench/pii_faker_set.py half
        summary = generated_set_summary(records, analyzer)
        print(f"generated set: {args.labeled} ({len(records)} records); NER model: {model}")
        print(f"structured recall (value gone): {summary['structured_recall']} of {summary['structured_n']}")
        for e, (ok, n, rate) in summary["per_type"].items():
            print(f"  {e:16} {ok:5}/{n:<5} {rate}")
        print(f"phones valid for their plan: recall {summary['phone_valid_recall']} of {summary['phone_valid_n']} "
              f"in {summary['phone_valid_regions']} regions; regions below 0.97: {summary['phone_regions_below_097']}")
        print(f"PII-free texts given a placeholder: {summary['negative_placeholder_rate']} "
              f"({summary['negative_texts_with_placeholder']} of {summary['negative_texts']})")
        if summary["person"]:
            p = summary["person"]
            print(f"PERSON: recall {p['tp'] / max(p['gold'], 1):.3f} ({p['tp']}/{p['gold']}), precision "
                  f"{p['tp_predicted'] / max(p['predicted'], 1):.3f} ({p['tp_predicted']}/{p['predicted']}); PII-free "
                  f"texts with a PERSON/LOCATION placeholder: {p.get('negative_texts_with_ner', 0)}")
        if args.show_errors:
            for key, value in summary["by_format"].items():
                print(f"  format {key:40} {value}")
            for miss in summary["misses"]:
                print(f"  miss {miss[0]:14} {miss[1]!s:22} {miss[2]!s:4} {miss[3]!r:40} in {miss[4]!r}")
            for entity, value, text in summary["negative_hits"]:
                print(f"  false positive {entity:14} {value!r:30} in {text!r}")
        return
    result = score(records, analyzer, entities)
    print(f"labeled set: {args.labeled} ({len(records)} records); NER model: {model}")
    print(f"{'type':16} {'gold':>5} {'tp':>4} {'fp':>4} {'fn':>4} {'covered':>8} {'recall':>7} {'precision':>9}")
    for e, row in result["per_type"].items():
        print(f"{e:16} {row['gold']:5} {row['tp']:4} {row['fp']:4} {row['fn']:4} {row['covered']:8} "
              f"{row['recall'] if row['recall'] is not None else '-':>7} {row['precision'] if row['precision'] is not None else '-':>9}")
    if args.show_errors:
        for kind, entity, value, text in result["errors"]:
            print(f"  {kind:15} {entity:15} {value!r:45} in {text!r}")
    if args.shared_data:
        real = real_documents(args.shared_data, PiiAnalyzer(ner_model=model), args.sample)
        print(f"\nreal documents: {real['documents']} ({real['mb']} MB, {real['seconds']} s)")
        print(f"detections: {real['detections']}")
        print(f"documents with a detection: {real['documents_with']}")
        print(f"per 1,000 documents: {real['per_1000_documents']}")
        for entity, source, context in real["sample"]:
            print(f"  {entity:14} {source:28} {' '.join(context.split())!r}")
        if args.baseline:
            compare_on_real_documents(args.shared_data, args.baseline)


if __name__ == "__main__":
    main()
