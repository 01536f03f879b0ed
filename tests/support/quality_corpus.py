"""Real English documents, and datatrove as the reference, for the heuristic-filter parity test and
`bench/filters.py`.

Sources (all under `../shared/data`, read-only; nothing here is shipped):
- `warc-samples/`: every HTML 200 response of every archive, decoded and extracted exactly as the
  extract stage does (`decode_html` + trafilatura with `ExtractConfig()`'s options), kept when
  py3langid says English;
- `quality-text-samples/`: Lee news articles (one per line), the CCNet head documents, the cs336
  fixtures, WikiText-2 articles (tokenized form, as shipped), the Wikipedia dump's articles (raw
  wikitext, truncated) and the html-text full-page texts (boilerplate included);
- the demo web's HTML pages (`build_demo_site`), extracted the same way, English only.

`english_corpus(shared_data)` returns `[(source, text), ...]` in a fixed order. The extraction takes a
few seconds; the result is cached per process.
"""

from __future__ import annotations

import bz2
import functools
import json
import os
import re
import xml.etree.ElementTree as ET
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from gristmill.filters.language import LanguageScorer
from gristmill.schemas import reasons as R

# The Wikipedia dump's articles are raw markup (median ~42 KB); a prefix keeps the set balanced and
# the test fast without changing what the rules see (templates, curly brackets, short lines).
WIKI_MARKUP_CHARS = 12_000
# Archives without one English page (ClueWeb09's Japanese shop): not worth extracting.
NO_ENGLISH = {"resiliparse-clueweb09-ja-quirk.warc.gz"}
_WIKITEXT_TITLE = re.compile(r"^ = [^=].* = $")


def _extract_html(item: tuple[bytes, str | None]) -> str | None:
    from gristmill.pipeline.stages.extract import trafilatura_options
    from gristmill.pipeline.stages.extract_sandbox import decode_html
    from gristmill.schemas.job import ExtractConfig
    import trafilatura

    body, content_type = item
    html, _ = decode_html(body, content_type)
    try:
        return trafilatura.extract(html, output_format="txt", with_metadata=False, deduplicate=False,
                                   **trafilatura_options(ExtractConfig()))
    except (ValueError, TypeError, AttributeError):
        return None


def _warc_bodies(shared_data: Path, max_html_bytes: int | None) -> list[tuple[str, bytes, str | None]]:
    from gristmill.pipeline.sources.warc import read_warc_table
    from gristmill.schemas import columns as C

    out = []
    for path in sorted((shared_data / "warc-samples").rglob("*")):
        if not path.is_file() or not re.search(r"\.(warc|arc)(\.gz)?$", path.name) or path.name in NO_ENGLISH:
            continue
        for row in read_warc_table(str(path), 5_000_000).to_pylist():
            body = row[C.CONTENT]
            if row[C.SKIP_REASON] is None and row[C.QUARANTINE_REASON] is None and body and (
                    max_html_bytes is None or len(body) <= max_html_bytes):
                out.append((f"warc:{path.name}", row[C.CONTENT], row[C.CONTENT_TYPE]))
    return out


def _demo_bodies() -> list[tuple[str, bytes, str | None]]:
    from gristmill.pipeline.demo.web import build_demo_site

    return [("demo-web", page.body, page.content_type) for page in build_demo_site()
            if page.status == 200 and "html" in page.content_type]


def _extracted_english(items: list[tuple[str, bytes, str | None]]) -> list[tuple[str, str]]:
    with ProcessPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        texts = list(pool.map(_extract_html, [(body, ctype) for _, body, ctype in items], chunksize=8))
    scorer = LanguageScorer()
    return [(source, text) for (source, _, _), text in zip(items, texts)
            if text and text.strip() and scorer.score(text)[0] == "en"]


def _quality_samples(shared_data: Path) -> list[tuple[str, str]]:
    root = shared_data / "quality-text-samples"
    docs: list[tuple[str, str]] = []
    positive, negative = root / "positive", root / "negative"
    docs += [("lee-news", line) for line in (positive / "lee_background.cor").read_text().splitlines() if line.strip()]
    for path in sorted(positive.glob("dolma-ccnet-*.jsonl")):
        docs += [("ccnet-head", json.loads(line)["text"]) for line in path.read_text().splitlines() if line.strip()]
    docs.append(("cs336-wiki", (positive / "cs336-high_quality_wiki_reference.txt").read_text()))
    for name in ("wikitext-2-valid.tokens.txt", "wikitext-2-test.tokens.txt"):
        article: list[str] = []
        for line in (positive / name).read_text().splitlines():
            if _WIKITEXT_TITLE.match(line) and article:
                docs.append(("wikitext-2", "\n".join(article)))
                article = []
            article.append(line)
        if article:
            docs.append(("wikitext-2", "\n".join(article)))
    with bz2.open(positive / "enwiki-pages-articles1-shortened.xml.bz2") as handle:
        for _, element in ET.iterparse(handle):
            if element.tag.endswith("}text") and element.text and not element.text.lstrip().upper().startswith("#REDIRECT"):
                docs.append(("enwiki-markup", element.text[:WIKI_MARKUP_CHARS]))
            element.clear()
    pages = json.loads((negative / "article-benchmark-html-text-fullpage.json").read_text())["output"]
    docs += [("html-text-fullpage", pages[key]["articleBody"]) for key in sorted(pages)]
    docs.append(("cs336-low-quality", (negative / "cs336-low_quality_cc.txt").read_text()))
    return docs


def _cut(text: str, max_chars: int) -> str:
    """The text's first `max_chars` characters, cut back to a line end when there is one."""
    if len(text) <= max_chars:
        return text
    head = text[:max_chars]
    return head.rsplit("\n", 1)[0] if "\n" in head else head


def _spread(docs: list[tuple[str, str]], per_source: int) -> list[tuple[str, str]]:
    """At most `per_source` documents of each quality-text sample, evenly spread over it."""
    by_source: dict[str, list[tuple[str, str]]] = {}
    for doc in docs:
        by_source.setdefault(doc[0], []).append(doc)
    out = []
    for group in by_source.values():
        step = max(1, -(-len(group) // per_source))
        out += group[::step]
    return out


@functools.lru_cache(maxsize=4)
def english_corpus(shared_data: Path, max_html_bytes: int | None = None, max_doc_chars: int | None = None,
                   max_docs_per_sample: int | None = None) -> tuple[tuple[str, str], ...]:
    """Every real English document of the sets above, as (source, text). The tests pass caps that
    keep them fast (pages over `max_html_bytes` skipped, documents cut to `max_doc_chars` at a line
    end, at most `max_docs_per_sample` of each quality-text sample); the benchmark takes everything."""
    html = _warc_bodies(shared_data, max_html_bytes) + _demo_bodies()
    samples = _quality_samples(shared_data)
    if max_docs_per_sample is not None:
        samples = _spread(samples, max_docs_per_sample)
    docs = _extracted_english(html) + samples
    if max_doc_chars is not None:
        docs = [(source, _cut(text, max_doc_chars)) for source, text in docs]
    return tuple(docs)


# What the tests use: fast enough for the suite (datatrove is slow), every source still present.
TEST_CAPS = {"max_html_bytes": 150_000, "max_doc_chars": 3_000, "max_docs_per_sample": 60}


# --- documents built to sit at each rule's threshold -------------------------------------------

def lee_sentences(shared_data: Path) -> list[str]:
    """Distinct sentences of 8 to 30 words from the Lee news corpus, in corpus order."""
    text = (shared_data / "quality-text-samples" / "positive" / "lee_background.cor").read_text()
    sentences = re.split(r"(?<=[.!?])\s+", text.replace("\n", " "))
    return list(dict.fromkeys(s for s in sentences if 8 <= len(s.split()) <= 30 and s.endswith(".")))


_NAMES = ["North", "South", "East", "West", "Upstream", "Downstream", "Inland", "Seaward", "Uphill", "Later",
          "Earlier", "Nearby", "Soon", "Today", "Tonight", "Yesterday", "Meanwhile", "Afterwards", "Outside", "Indoors"]
_VERBS = ["froze", "rose", "fell", "ran", "dried", "flooded", "burst", "slowed", "shone", "sang", "cracked",
          "steamed", "waited", "paused", "closed", "opened", "rested", "turned", "stopped", "started"]
_LONG_TRIPLES = [
    "international transport workers", "agricultural machinery dealers", "regional development agencies",
    "municipal planning committees", "independent research laboratories", "professional football clubs",
    "traditional building materials", "renewable electricity generation", "residential property developers",
    "commercial aviation authorities", "environmental protection groups", "historical preservation societies",
    "educational publishing companies", "industrial equipment suppliers", "national statistics offices",
    "voluntary conservation trusts", "cooperative wholesale societies", "mechanical engineering firms",
    "pharmaceutical research centres", "independent grocery retailers", "metropolitan police authorities",
    "specialist veterinary hospitals", "community broadcasting stations", "international shipping agencies",
    "provincial government departments", "architectural heritage foundations", "electrical contracting businesses",
    "university admissions offices", "scientific instrument makers", "regional newspaper publishers"]
SHORT_WORD_SENTENCES = [
    "I am not sure if he is in or out of it.", "We go up to the top as we do on a day off.",
    "So is it my car or is it his van?", "Do as I do and be on my side.", "Oh no, he got a bad cut on his leg.",
    "My pal Ed has a red cap and a big dog.", "Can we sit by you at six or so?", "It was a hot day in May.",
    "To me, a cup of tea is all I need.", "Go on, try it, you may win a lot.", "Is Al at his gym?"]


def boundary_documents(sentences: list[str]) -> list[tuple[str, str]]:
    """Families of documents, each sweeping one rule's score across its threshold (the documents
    nearest the threshold on both sides, and where possible one exactly at it), plus the documents
    of the explained disagreement classes. `sentences`: distinct real sentences (`lee_sentences`)."""
    it = iter(sentences)

    def prose(n_lines: int, per_line: int = 2) -> list[str]:
        return [" ".join(next(it) for _ in range(per_line)) for _ in range(n_lines)]

    docs: list[tuple[str, str]] = []

    def add(family: str, text: str) -> None:
        docs.append((f"boundary:{family}", text))

    for k in range(2, 7):  # repeated short paragraph / line: 3 of 10 is exactly 0.3
        add("duplicate_paragraphs", "\n\n".join(prose(7) + ["Share this story."] * k))
        add("duplicate_lines", "\n".join(prose(7) + ["Share this story."] * k))
    for j in range(0, 4):  # whole long paragraphs / lines repeated
        base = prose(8)
        add("duplicate_paragraph_chars", "\n\n".join(base + base[:j]))
        add("duplicate_line_chars", "\n".join(base + base[:j]))
    for n, phrase in ((2, "New York"), (3, "the United States"), (4, "at the end of")):
        for k in range(4, 17, 2):
            add(f"top_{n}gram", " ".join([next(it)] + [f"{w} {phrase} {v}." for v, w in zip(_VERBS[:k], _NAMES[:k])]))
    phrases = {5: "waterwheels at the old watermill", 6: "waterwheels at the old village watermill",
               7: "waterwheels at the old stone village watermill",
               8: "waterwheels at the old grey stone village watermill",
               9: "waterwheels at the very old grey stone village watermill",
               10: "waterwheels at the very old grey stone riverside village watermill"}
    for n, phrase in phrases.items():
        for k in (range(5, 10) if n < 8 else range(2, 6)):
            add(f"duplicate_{n}gram", "\n".join(prose(4) + [f"{a} {phrase} {b}." for a, b in zip(_NAMES[:k], _VERBS[:k])]))
    # A repeated 10-word phrase whose last word is long: its 10-gram share passes 0.10 while the
    # shorter n-grams' shares stay under their (higher) limits.
    ten = "the old mill by the river was finally saved by internationalisation"
    for n_lines in range(1, 5):
        add("duplicate_10gram_share", "\n".join(prose(n_lines) + [f"{a} {ten} {b}." for a, b in zip(_NAMES[:3], _VERBS[:3])]))
    words = " ".join(prose(4)).split()
    for m in range(46, 55):  # the minimum word count (words, not whitespace chunks)
        add("word_count", " ".join(words[:m]))
    for k in range(0, 4):  # mean word length from below
        add("mean_word_length", " ".join(SHORT_WORD_SENTENCES + prose(1, k)))
    base = prose(4)
    for k in range(14, 40, 3):  # '#' and ellipses per word
        add("hashes", "\n".join(base) + " " + " ".join(f"#{n.lower()}" for n in (_NAMES + _VERBS)[:k]))
        add("ellipses", "\n".join(base) + " " + " ".join(f"{v}..." for v in (_VERBS + _NAMES)[:k]))
    for k in range(16, 21):  # bullet lines of 20
        lines = prose(20, 1)
        add("bullet_lines", "\n".join(("- " + line if i < k else line) for i, line in enumerate(lines)))
    for k in range(4, 9):  # ellipsis lines of 20
        lines = prose(20, 1)
        add("ellipsis_lines", "\n".join((line[:-1] + "..." if i < k else line) for i, line in enumerate(lines)))
    base = " ".join(prose(3))
    for k in range(10, 40, 4):  # alphabetic words
        add("alpha_words", base + " " + " ".join(str(1900 + i) for i in range(k)))
    no_stop = ["Millers grind grain daily in small batches.", "Bakers buy flour every Tuesday morning.",
               "Farmers sell barley locally at fair prices.", "Village children skate on frozen ponds in winter.",
               "Travellers admire old bridges near quiet rivers.", "Beekeepers harvest honey behind granaries.",
               "Volunteers rebuilt one wheel from drawings found in an attic.", "Railways brought cheaper flour.",
               "Builders stored timber inside for thirty years.", "Museums now display ledgers, scales, sacks."]
    for extra in ([], ["Some have wheels."], ["Some have wheels.", "Most are old and small."],
                  ["Some have wheels.", "Most are old and small.", "The river helps."]):
        add("stop_words", " ".join(no_stop + extra))
    for m in range(3, 7):  # C4's sentence count: one sentence per line
        add("sentences", "\n".join(prose(m, 1)))
    base = prose(6)
    lorem, curly = "Lorem ipsum dolor sit amet, consectetur adipiscing elit.", "The form said {name} here."
    add("lorem_ipsum", "\n".join(base + [lorem]))
    add("lorem_ipsum_short_line", "\n".join(base + ["Lorem ipsum."]))  # under 3 words: the line goes first
    add("curly_bracket", "\n".join(base + [curly]))
    add("curly_bracket_in_javascript_line", "\n".join(base + ["Enable JavaScript to see {this} page."]))
    add("lorem_ipsum_then_curly_bracket", "\n".join(base[:3] + [lorem] + base[3:] + [curly]))
    add("curly_bracket_then_lorem_ipsum", "\n".join(base[:3] + [curly] + base[3:] + [lorem]))  # explained
    add("citations", "\n".join(f"{line}[{i}] [edit]" for i, line in enumerate(prose(6, 1))))
    add("policy_and_javascript_lines", "\n".join(base + ["We use cookies to improve this site.",
                                                          "Please enable JavaScript in your browser."]))
    for k in range(1, 6):  # FineWeb: punctuated lines of 20 (0.12)
        lines = [line.rstrip(".") + " today" for line in prose(20, 1)]
        add("line_punctuation", "\n".join((line + "." if i < k else line) for i, line in enumerate(lines)))
    for k in range(10, 17):  # short lines of 20 (0.67)
        lines = prose(20 - k, 1) + [f"{n} {v} early." for n, v in zip(_NAMES[:k], _VERBS[:k])]
        add("short_lines", "\n".join(lines))
    for n_lines in (6, 10, 14, 18):  # one repeated line's characters (0.01)
        add("duplicate_line_text", "\n".join(prose(n_lines) + ["Read more about it.", "Read more about it."]))
    for k in range(14, 31, 4):  # newlines per word (0.3)
        add("line_breaks", "\n".join(["Minutes of the meeting.", "Notes and the agenda.", "Reports to follow.",
                                      "Decisions are final."] + _LONG_TRIPLES[:k]))
    # Explained class: datatrove glues duplicate n-grams without spaces, so "in tothe" repeats "into the".
    base = prose(2)
    add("glued_ngrams", "\n".join(base + [f"{_NAMES[i]} we went {'into the' if i % 2 else 'in tothe'} old mill today."
                                          for i in range(4)]))
    add("empty", "")
    add("one_word", "Hello")
    return docs


# --- datatrove's four FineWeb filters, as the reference -------------------------------------------

# datatrove's reason (filter, name) -> ours
DATATROVE_REASONS = {
    ("rep", "empty"): R.TOO_FEW_WORDS,  # "": the pipeline drops it earlier (no_main_text)
    ("rep", "dup_para_frac"): R.TOO_MANY_DUPLICATE_PARAGRAPHS,
    ("rep", "dup_para_char_frac"): R.TOO_MANY_DUPLICATE_PARAGRAPH_CHARS,
    ("rep", "dup_line_frac"): R.TOO_MANY_DUPLICATE_LINES,
    ("rep", "dup_line_char_frac"): R.TOO_MANY_DUPLICATE_LINE_CHARS,
    **{("rep", f"top_{n}_gram"): R.TOP_NGRAM_TOO_FREQUENT[n] for n in (2, 3, 4)},
    **{("rep", f"duplicated_{n}_n_grams"): R.TOO_MANY_DUPLICATE_NGRAMS[n] for n in range(5, 11)},
    ("gq", "gopher_short_doc"): R.TOO_FEW_WORDS,
    ("gq", "gopher_long_doc"): R.TOO_MANY_WORDS,
    ("gq", "gopher_below_avg_threshold"): R.WORDS_TOO_SHORT,
    ("gq", "gopher_above_avg_threshold"): R.WORDS_TOO_LONG,
    ("gq", "gopher_too_many_hashes"): R.TOO_MANY_HASHES,
    ("gq", "gopher_too_many_ellipsis"): R.TOO_MANY_ELLIPSES,
    ("gq", "gopher_too_many_bullets"): R.TOO_MANY_BULLET_LINES,
    ("gq", "gopher_too_many_end_ellipsis"): R.TOO_MANY_ELLIPSIS_LINES,
    ("gq", "gopher_below_alpha_threshold"): R.TOO_FEW_ALPHA_WORDS,
    ("gq", "gopher_enough_stop_words"): R.TOO_FEW_STOP_WORDS,  # datatrove's name says the opposite
    ("c4", "lorem_ipsum"): R.CONTAINS_LOREM_IPSUM,
    ("c4", "curly_bracket"): R.CONTAINS_CURLY_BRACKET,
    ("c4", "too_few_sentences"): R.TOO_FEW_SENTENCES,
    ("fw", "empty"): R.TOO_FEW_PUNCTUATED_LINES,  # no line left after C4: our punctuation share is 0
    ("fw", "line_punct_ratio"): R.TOO_FEW_PUNCTUATED_LINES,
    ("fw", "short_line_ratio"): R.TOO_MANY_SHORT_LINES,
    ("fw", "char_dup_ratio"): R.TOO_MUCH_DUPLICATE_LINE_TEXT,
    ("fw", "list_ratio"): R.TOO_MANY_LINE_BREAKS,
}


@functools.cache
def datatrove_filters() -> tuple:
    """datatrove's four filters as FineWeb runs them (examples/fineweb.py), in order, with defaults."""
    from datatrove.pipeline.filters import (C4QualityFilter, FineWebQualityFilter, GopherQualityFilter,
                                            GopherRepetitionFilter)

    return (("rep", GopherRepetitionFilter()), ("gq", GopherQualityFilter()),
            ("c4", C4QualityFilter(filter_no_terminal_punct=False)), ("fw", FineWebQualityFilter()))


def datatrove_reason(text: str) -> str | None:
    """The first reason datatrove's four FineWeb filters give, as our reason name (None: kept)."""
    from datatrove.data import Document

    doc = Document(text=text, id="0")
    for key, step in datatrove_filters():
        result = step.filter(doc)
        if result is not True:
            return DATATROVE_REASONS[(key, result[1])]
    return None


def datatrove_reasons(texts: list[str], workers: int = 1) -> list[str | None]:
    """`datatrove_reason` of each text, in `workers` processes."""
    if workers <= 1:
        return [datatrove_reason(t) for t in texts]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(datatrove_reason, texts, chunksize=16))
