"""Representation tags that count people (issue 25): precision and recall per axis on the labelled
sentences we wrote (tests/data/identity_people: `test` is the part we report, written before the rules;
`dev` is the part the rules were tuned on), and the tagger's speed on real web text, beside the
word-matching tagger it replaces (issue 6: any use of a lexicon word counted) in the same run.

    python bench/identity_people.py --errors               # while tuning: the dev part only, its errors
    python bench/identity_people.py --report               # test and dev figures
    python bench/identity_people.py --report --speed ../shared/data --write
                                            # + MB/s on web text, + filters/lexicons/identity_accuracy.json

A sentence is a positive for an axis when one of its labels is on that axis; the tagger predicts the axis
when it tags a term of it. Pronoun classes the same way ("they" labelled only for people).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import statistics
import time
from pathlib import Path

from gristmill.filters.identity import ACCURACY_FILE, PRONOUN_CLASSES, IdentityLexicon

ROOT = Path(__file__).resolve().parents[1]
LABELLED = ROOT / "tests" / "data" / "identity_people"


def load(part: str) -> list[tuple[str, set[str]]]:
    rows = []
    for line in (LABELLED / f"{part}.tsv").read_text(encoding="utf-8").splitlines()[1:]:
        labels, sentence = line.split("\t")
        rows.append((sentence, set() if labels == "-" else set(labels.split(","))))
    return rows


def predicted(lexicon: IdentityLexicon, sentence: str) -> set[str]:
    tags = lexicon.tag(sentence)
    return ({f"{axis}:{term}" for axis, terms in tags.descriptors.items() for term in terms}
            | {f"pronoun:{p}" for p in tags.pronouns})


class WordTagger:
    """The tagger this replaces: every whole-word use of a lexicon term (plural "s"), every pronoun."""

    def __init__(self, lexicon: IdentityLexicon):
        self.axes = {axis: re.compile(r"(?<![\w-])(?:%s)s?(?![\w-])" % "|".join(
            map(re.escape, sorted(set(terms) | {t for t in lexicon._forms if lexicon._forms[t].axes[0] == axis
                                                and lexicon._forms[t].term in terms}, key=len, reverse=True))))
            for axis, terms in lexicon.axes.items()}
        self.pronouns = {c: re.compile(r"\b(?:%s)\b" % "|".join(lexicon.pronouns[c])) for c in PRONOUN_CLASSES}

    def predicted(self, sentence: str) -> set[str]:
        lowered = sentence.lower()
        return ({f"{axis}:*" for axis, p in self.axes.items() if p.search(lowered)}
                | {f"pronoun:{c}" for c, p in self.pronouns.items() if p.search(lowered)})


def scores(rows, predict) -> dict:
    """Per axis and pronoun class: precision, recall, support (labelled sentences), predicted sentences."""
    groups = sorted({label.split(":", 1)[0] if not label.startswith("pronoun:") else label
                     for _, labels in rows for label in labels})
    out = {}
    predictions = [predict(sentence) for sentence, _ in rows]

    def group_of(label: str) -> str:
        return label if label.startswith("pronoun:") else label.split(":", 1)[0]

    pooled = [0, 0, 0]
    for group in groups:
        tp = fp = fn = 0
        for (_, labels), guess in zip(rows, predictions):
            truth = any(group_of(label) == group for label in labels)
            said = any(group_of(label) == group for label in guess)
            tp += truth and said
            fp += said and not truth
            fn += truth and not said
        out[group] = {"precision": round(tp / (tp + fp), 3) if tp + fp else None,
                      "recall": round(tp / (tp + fn), 3) if tp + fn else None,
                      "support": tp + fn, "predicted": tp + fp}
        if not group.startswith("pronoun:"):
            pooled = [pooled[0] + tp, pooled[1] + fp, pooled[2] + fn]
    tp, fp, fn = pooled
    out["all_axes"] = {"precision": round(tp / (tp + fp), 3) if tp + fp else None,
                       "recall": round(tp / (tp + fn), 3) if tp + fn else None, "support": tp + fn, "predicted": tp + fp}
    return out


def errors(rows, lexicon, pronouns: bool = True) -> list[str]:
    out = []
    for sentence, labels in rows:
        guess = {t for t in predicted(lexicon, sentence) if pronouns or not t.startswith("pronoun:")}
        if guess != labels:
            out.append(f"  missed {sorted(labels - guess)} extra {sorted(guess - labels)}: {sentence}")
    return out


def web_texts(shared: Path) -> list[str]:
    """Real web text: the full visible text of 181 news and blog pages (boilerplate included) and 20
    CCNet head documents (Common Crawl)."""
    samples = shared / "quality-text-samples"
    pages = json.loads((samples / "negative" / "article-benchmark-html-text-fullpage.json").read_text(encoding="utf-8"))
    texts = [page["articleBody"] for page in pages["output"].values() if page.get("articleBody")]
    for path in sorted((samples / "positive").glob("dolma-ccnet-*.jsonl")):
        texts += [json.loads(line)["text"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return texts


WEB_PER_AXIS = 15


def web_sentences(shared: Path, per_axis: int = WEB_PER_AXIS, skip: int = 0) -> list[tuple[str, str, str, str]]:
    """A fixed sample of real web and news sentences that contain a word of the lexicon: per axis, the
    `per_axis` sentences (40-300 characters) with the smallest SHA-1 after the first `skip`, from the web pages and CCNet documents
    of `web_texts` and the Lee ABC news corpus. (source, sha1[:12], sentence, axis) each. The text stays in
    ../shared/data; tests/data/identity_people/web.tsv holds only the key and our labels."""
    from gristmill.filters.textsplit import SplitText

    lexicon = IdentityLexicon.default()
    sources = [("web", web_texts(shared)),
               ("lee-news", (shared / "quality-text-samples" / "positive" / "lee_background.cor").read_text(
                   encoding="utf-8", errors="replace").splitlines())]
    by_axis: dict[str, dict[str, tuple[str, str]]] = {axis: {} for axis in lexicon.axes}
    for source, texts in sources:
        for text in texts:
            split, start = SplitText(text), 0
            for end in split.sentence_ends:
                sentence = " ".join(text[start:end].split())
                start = end
                if not 40 <= len(sentence) <= 300:
                    continue
                lowered = sentence.lower()
                key = hashlib.sha1(sentence.encode("utf-8")).hexdigest()[:12]
                for axis, terms in lexicon.axes.items():
                    if any(re.search(r"(?<![\w-])%s(?:s|es)?(?![\w-])" % re.escape(t), lowered) for t in terms):
                        by_axis[axis][key] = (source, sentence)
    chosen, seen = [], {key for found in by_axis.values() for key in sorted(found)[:skip]}
    for axis, found in by_axis.items():
        for key in sorted(found)[skip:skip + per_axis]:
            if key not in seen:
                seen.add(key)
                chosen.append((found[key][0], key, found[key][1], axis))
    return chosen


def web_labelled(shared: Path, part: str = "web_test") -> list[tuple[str, set[str]]]:
    """tests/data/identity_people/{web,web_test}.tsv joined to its sentences in `shared` (descriptor labels only)."""
    text_of = {key: sentence for _, key, sentence, _ in web_sentences(shared, skip=15 if part == "web_test" else 0)}
    rows = []
    for line in (LABELLED / f"{part}.tsv").read_text(encoding="utf-8").splitlines()[1:]:
        _, key, labels, _, *pronouns = line.split("\t")  # web_test.tsv also labels pronouns
        tags = [t for t in (labels, *pronouns) if t != "-"]
        rows.append((text_of[key], {tag for t in tags for tag in t.split(",")}))
    return rows


def speed(texts: list[str], tag, repeats: int = 3) -> float:
    """MB/s of `tag` over `texts` in this process (one core), the median of `repeats` passes."""
    size = sum(len(t.encode("utf-8")) for t in texts)
    rates = []
    for _ in range(repeats):
        started = time.perf_counter()
        for text in texts:
            tag(text)
        rates.append(size / 1e6 / (time.perf_counter() - started))
    return round(statistics.median(rates), 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--speed", type=Path, metavar="SHARED_DATA", help="also measure MB/s on its web text")
    parser.add_argument("--web", type=Path, metavar="SHARED_DATA", help="with --report: also score web.tsv")
    parser.add_argument("--report", action="store_true", help="score the test part too (not while tuning)")
    parser.add_argument("--write", action="store_true", help="with --report: write filters/lexicons/identity_accuracy.json")
    parser.add_argument("--errors", action="store_true", help="list the dev part's errors (never the test part's)")
    args = parser.parse_args()

    lexicon = IdentityLexicon.default()
    words = WordTagger(lexicon)
    result = {"labelled_set": "tests/data/identity_people", "unit": "sentence",
              "note": "test was written before the rules and is the part reported; dev was used to tune them"}
    parts = ("test", "dev") if args.report else ("dev",)
    for part in parts:
        rows = load(part)
        result[part] = {"sentences": len(rows), "people_tags": scores(rows, lambda s: predicted(lexicon, s)),
                        "word_matching": scores(rows, words.predicted)}
    for part in parts:
        print(f"{part} ({result[part]['sentences']} sentences): group  P  R  (support) | word matching P  R")
        for group, row in result[part]["people_tags"].items():
            old = result[part]["word_matching"][group]
            print(f"  {group:22s} {row['precision']}  {row['recall']}  ({row['support']}) | {old['precision']}  {old['recall']}")
    if args.report and args.web:
        for part in ("web_test", "web"):
            rows = web_labelled(args.web, part)
            keep = (lambda guess: guess) if part == "web_test" else (  # noqa: E731
                lambda guess: {t for t in guess if not t.startswith("pronoun:")})  # web.tsv labels no pronouns
            result[part] = {"sentences": len(rows), "people_tags": scores(rows, lambda s: keep(predicted(lexicon, s))),
                            "word_matching": scores(rows, lambda s: keep(words.predicted(s)))}
            print(f"{part} ({len(rows)} real sentences): group  P  R  (support) | word matching P  R")
            for group, row in result[part]["people_tags"].items():
                old = result[part]["word_matching"][group]
                print(f"  {group:22s} {row['precision']}  {row['recall']}  ({row['support']}) | {old['precision']}  {old['recall']}")
        if args.errors:
            print("web_test errors (read after its one scoring, not tuned on):\n"
                  + "\n".join(errors(web_labelled(args.web, "web_test"), lexicon)))
            print("web (dev) errors:\n" + "\n".join(errors(web_labelled(args.web, "web"), lexicon, pronouns=False)))
    if args.errors:
        print("dev errors:\n" + "\n".join(errors(load("dev"), lexicon)))
    if args.speed:
        texts = web_texts(args.speed)
        size = sum(len(t.encode("utf-8")) for t in texts)
        result["speed"] = {"texts": len(texts), "mb": round(size / 1e6, 2),
                           "people_tags_mb_per_s": speed(texts, lexicon.tag),
                           "word_matching_mb_per_s": speed(texts, words.predicted)}
        print(f"speed on {len(texts)} web texts ({size / 1e6:.2f} MB), one core: people tags "
              f"{result['speed']['people_tags_mb_per_s']} MB/s, word matching {result['speed']['word_matching_mb_per_s']} MB/s")
    if args.write and args.report:
        accuracy = {key: result[key] for key in ("labelled_set", "unit", "note")}
        accuracy["test"] = {"sentences": result["test"]["sentences"], "by_group": result["test"]["people_tags"]}
        accuracy["dev"] = {"sentences": result["dev"]["sentences"], "by_group": result["dev"]["people_tags"]}
        if "web_test" in result:
            accuracy["web_test"] = {"sentences": result["web_test"]["sentences"], "by_group": result["web_test"]["people_tags"],
                                    "note": "real web and news sentences (web_test.tsv), held out"}
            accuracy["web"] = {"sentences": result["web"]["sentences"], "by_group": result["web"]["people_tags"],
                               "note": "real web and news sentences (web.tsv), tuned on; descriptors only"}
        path = ROOT / "filters" / ACCURACY_FILE
        path.write_text(json.dumps(accuracy, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
