"""The embedded demo crawl: reproducible to the byte, readable by warcio, and shaped so that extraction,
language ID, quality rules and dedup each have work to do."""

from __future__ import annotations

import gzip
import itertools
import re
from collections import Counter
from pathlib import Path

import py3langid
import pytest
import trafilatura
from lxml import html as lxml_html
from warcio.archiveiterator import ArchiveIterator

from gristmill.pipeline.demo.web import (ARTICLE, CHARSET_MISMATCH, DEMO_PII, EXACT_COPY, NON_ENGLISH,
                                         PAGE_KINDS, SYNDICATED, build_demo_site, write_demo_warc)

SHIPPED_WARC = Path(__file__).resolve().parents[2] / "jobs" / "data" / "demo-web.warc.gz"
# Chrome that every site wraps around its articles; none of it may survive extraction.
BOILERPLATE_PHRASES = ("all rights reserved", "cookie", "sign up", "share this", "add to basket",
                       "registered office", "newsletter")


@pytest.fixture(scope="module")
def pages():
    return build_demo_site(seed=0)


@pytest.fixture(scope="module")
def extracted(pages):
    """URL -> trafilatura text for every 200 HTML page (decoding by the body's true encoding)."""
    texts = {}
    for page in pages:
        if page.status == 200 and page.content_type.startswith("text/html"):
            true_encoding = "cp1252" if page.path == "/2024/a-cafe-on-bridge-street.html" else "utf-8"
            texts[page.url] = trafilatura.extract(page.body.decode(true_encoding)) or ""
    return texts


def article_paragraphs(page) -> list[str]:
    tree = lxml_html.fromstring(page.body)
    return [p.text_content() for p in tree.xpath('//article/p[not(@class)] | //div[@class="post-body"]/p')]


def shingles(text: str, n: int = 5) -> set[tuple[str, ...]]:
    words = re.findall(r"\w+", text.lower())
    return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}


def jaccard(a: str, b: str) -> float:
    sa, sb = shingles(a), shingles(b)
    return len(sa & sb) / len(sa | sb)


def test_warc_is_byte_identical_across_runs_and_matches_the_shipped_file(tmp_path):
    first, second = tmp_path / "first.warc.gz", tmp_path / "second.warc.gz"
    write_demo_warc(first)
    write_demo_warc(second)
    assert first.read_bytes() == second.read_bytes()
    # The shipped file is compared decompressed: its records must match to the byte, while the deflate
    # stream could legitimately differ under another zlib build (zlib-ng, say).
    assert gzip.decompress(first.read_bytes()) == gzip.decompress(SHIPPED_WARC.read_bytes())

    # No clock in any gzip member header (bytes 4-8 are MTIME).
    data = first.read_bytes()
    with first.open("rb") as stream:
        iterator = ArchiveIterator(stream)
        offsets = [iterator.get_record_offset() for _ in iterator]
    assert offsets and all(data[o:o + 2] == b"\x1f\x8b" and data[o + 4:o + 8] == b"\0\0\0\0"
                           for o in offsets)


def test_seed_changes_the_site(tmp_path):
    other = tmp_path / "seed1.warc.gz"
    write_demo_warc(other, seed=1)
    assert gzip.decompress(other.read_bytes()) != gzip.decompress(SHIPPED_WARC.read_bytes())


def test_warc_records_read_back_with_every_payload_intact(tmp_path, pages):
    path = tmp_path / "demo.warc.gz"
    counts = write_demo_warc(path)
    by_url = {page.url: page for page in pages}
    assert len(by_url) == len(pages)  # one response per URL

    types = Counter()
    payload_digests, revisits = {}, []
    with path.open("rb") as stream:
        for record in ArchiveIterator(stream):
            types[record.rec_type] += 1
            if record.rec_type == "response":
                page = by_url[record.rec_headers.get_header("WARC-Target-URI")]
                assert record.content_stream().read() == page.body
                assert record.http_headers.get_statuscode() == str(page.status)
                assert record.http_headers.get_header("Content-Type") == page.content_type
                payload_digests[page.url] = record.rec_headers.get_header("WARC-Payload-Digest")
            elif record.rec_type == "revisit":
                revisits.append(record)

    n = len(pages)
    assert types == {"warcinfo": 1, "request": n, "response": n, "metadata": n, "revisit": 2}
    assert counts["records"] == sum(types.values()) and counts["response"] == n
    assert counts["html_responses"] == sum(p.status == 200 and p.content_type.startswith("text/html")
                                           for p in pages)
    for record in revisits:  # a revisit points at an earlier response with the same payload
        url = record.rec_headers.get_header("WARC-Refers-To-Target-URI")
        assert record.rec_headers.get_header("WARC-Payload-Digest") == payload_digests[url]
    assert SHIPPED_WARC.stat().st_size < 500_000


def test_site_has_the_mix_a_crawl_has(pages):
    kinds = Counter(page.kind for page in pages)
    assert set(kinds) == set(PAGE_KINDS)
    assert 80 <= len(pages) <= 120 and kinds[ARTICLE] == 50
    for page in pages:
        if page.kind == ARTICLE:
            assert 250 <= sum(len(p.split()) for p in article_paragraphs(page)) <= 900, page.url

    articles_text = b"".join(page.body for page in pages if page.kind == ARTICLE)
    assert all(pii.encode() in articles_text for pii in DEMO_PII)

    redirects = [page for page in pages if page.status == 301]
    assert redirects and all(dict(page.headers).get("Location", "").startswith("http://")
                             for page in redirects)
    assert any(page.status == 404 for page in pages)

    lying = {page.path: page for page in pages if page.kind == CHARSET_MISMATCH}
    cp1252_page = lying["/2024/a-cafe-on-bridge-street.html"]
    assert "charset=utf-8" in cp1252_page.content_type and "café".encode("cp1252") in cp1252_page.body
    with pytest.raises(UnicodeDecodeError):
        cp1252_page.body.decode("utf-8")
    utf8_page = lying["/posts/autumn-walks-programme/"]
    assert "charset=iso-8859-1" in utf8_page.content_type and "café" in utf8_page.body.decode("utf-8")


def test_extraction_keeps_the_article_and_drops_the_chrome(pages, extracted):
    for page in pages:
        if page.kind != ARTICLE:
            continue
        text = extracted[page.url]
        first_sentence = article_paragraphs(page)[0].split(". ")[0]
        assert first_sentence in text, page.url
        for phrase in BOILERPLATE_PHRASES:
            assert phrase not in text.lower(), (page.url, phrase)


def test_only_the_planted_copies_are_near_duplicates(pages, extracted):
    articles = [page for page in pages if page.kind == ARTICLE]
    distinct = max(jaccard(extracted[a.url], extracted[b.url])
                   for a, b in itertools.combinations(articles, 2))
    assert distinct < 0.5
    for page in pages:
        if page.kind in (SYNDICATED, EXACT_COPY):
            closest = max(jaccard(extracted[page.url], extracted[a.url]) for a in articles)
            assert closest > 0.8, page.url
            if page.kind == EXACT_COPY:
                assert any(extracted[page.url] == extracted[a.url] for a in articles), page.url


def test_language_id_recognizes_the_foreign_pages(pages, extracted):
    foreign = {page.path.split("/")[1]: extracted[page.url] for page in pages if page.kind == NON_ENGLISH}
    assert set(foreign) == {"de", "fr", "es", "it"}
    for lang, text in foreign.items():
        assert py3langid.classify(text)[0] == lang
    assert py3langid.classify(extracted[next(p.url for p in pages if p.kind == ARTICLE)])[0] == "en"
