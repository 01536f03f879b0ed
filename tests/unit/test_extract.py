"""Extraction: charset decoding that survives lying headers, and the sandbox's timeout and restart."""

from __future__ import annotations

import pyarrow as pa

from gristmill.pipeline.stages.extract import ExtractText
from gristmill.pipeline.stages.extract_sandbox import decode_html
from gristmill.schemas import columns as C
from gristmill.schemas import reasons as R
from gristmill.schemas.job import ExtractConfig

from support.warc import ARTICLE

ACCENTED = "<html><body><p>Un café naïve à Montréal, déjà vu.</p></body></html>"


def test_header_claims_utf8_but_body_is_cp1252():
    text, charset = decode_html(ACCENTED.encode("cp1252"), "text/html; charset=utf-8")
    assert "café naïve" in text and charset == "cp1252"


def test_header_claims_latin1_but_body_is_utf8():
    text, charset = decode_html(ACCENTED.encode("utf-8"), "text/html; charset=iso-8859-1")
    assert "café naïve" in text and charset == "utf-8"


def test_undeclared_cyrillic_is_not_forced_to_cp1252():
    body = "<html><body><p>Мельница мелет зерно в муку для пекарей долины.</p></body></html>"
    text, charset = decode_html(body.encode("cp1251"), None)
    assert "Мельница мелет зерно" in text and charset == "cp1251"


def test_meta_charset_is_used_when_no_header():
    body = '<html><head><meta charset="shift_jis"></head><body><p>日本語のテキストです。水車小屋。</p></body></html>'
    text, charset = decode_html(body.encode("shift_jis"), None)
    assert "日本語のテキスト" in text and charset == "shift_jis"


def _table(bodies):
    rows = [{name: None for name in C.SOURCE_COLUMNS} | {C.ID: str(i), C.CONTENT: b, C.CONTENT_TYPE: "text/html"}
            for i, b in enumerate(bodies)]
    return pa.Table.from_pylist(rows, schema=C.SOURCE_SCHEMA)


def test_extracts_main_text_without_boilerplate():
    stage = ExtractText(ExtractConfig())
    out = stage(_table([ARTICLE.encode(), b"<html><body><script>var a = 1;</script></body></html>"])).to_pylist()
    assert "the water turns the wheel" in out[0][C.TEXT]
    assert "All rights reserved" not in out[0][C.TEXT]
    assert out[1][C.SKIP_REASON] == R.NO_MAIN_TEXT and out[1][C.TEXT] is None
    assert C.CONTENT not in out[0]


def test_timeout_marks_the_page_and_the_sandbox_restarts():
    stage = ExtractText(ExtractConfig(timeout_s=1e-4))
    out = stage(_table([ARTICLE.encode(), ARTICLE.encode()])).to_pylist()
    assert [r[C.SKIP_REASON] for r in out] == [R.EXTRACTION_TIMEOUT] * 2
    assert stage.sandbox.restarts == 2
    stage.sandbox.timeout_s = 30  # the restarted sandbox works
    assert "the water turns the wheel" in stage(_table([ARTICLE.encode()])).to_pylist()[0][C.TEXT]


def test_memory_cap_turns_a_blow_up_into_a_failed_page():
    # 300 MB address space is too small for Python + lxml + trafilatura to parse this page's tree.
    huge = ("<div>" * 20000 + "x" * 100 + "</div>" * 20000).encode()
    stage = ExtractText(ExtractConfig(sandbox_memory_mb=300, timeout_s=30))
    out = stage(_table([huge, ARTICLE.encode()])).to_pylist()
    assert out[0][C.SKIP_REASON] in (R.EXTRACTION_FAILED, R.NO_MAIN_TEXT)
    assert "the water turns the wheel" in (out[1][C.TEXT] or "")


# ------------------------------------------------------------------------------------------- engines
# Every engine behind the same sandbox, decoding and drop reasons: the shipped demo archive, hostile
# pages, determinism. (The whole-pipeline hostile corpus runs per engine in test_hostile_input.py.)

import os
import random
from collections import Counter

import pytest

from gristmill.pipeline.demo.web import ARTICLE as ARTICLE_KIND, build_demo_site
from gristmill.pipeline.sources.warc import read_warc_table
from gristmill.pipeline.stages.extract_engines import ENGINES, clean_blocks
from gristmill.schemas.job import Job

from support.repo import REPO
from support.hostile_corpus import _nested

DEMO_WARC = REPO / "jobs" / "data" / "demo-web.warc.gz"


def test_the_job_schema_and_the_sandbox_know_the_same_engines():
    assert ExtractConfig.model_fields["engine"].annotation.__args__ == ENGINES
    assert ExtractConfig().engine == "trafilatura"


def test_trafilatura_options_are_refused_for_resiliparse_engines():
    with pytest.raises(ValueError, match="trafilatura options"):
        ExtractConfig(engine="resiliparse", favor_precision=True)
    with pytest.raises(ValueError, match="engine"):
        Job.model_validate({"extract": {"engine": "lynx"}})


def _demo_texts(engine: str) -> tuple[dict[str, str | None], dict[str, str | None]]:
    """URL -> text and URL -> skip reason of every HTML response in the shipped demo archive."""
    table = read_warc_table(str(DEMO_WARC), ExtractConfig().max_page_bytes)
    documents = [i for i, reason in enumerate(table[C.SKIP_REASON].to_pylist()) if reason is None]  # responses
    rows = ExtractText(ExtractConfig(engine=engine))(table).take(documents).select([C.URL, C.TEXT, C.SKIP_REASON]).to_pylist()
    return {r[C.URL]: r[C.TEXT] for r in rows}, {r[C.URL]: r[C.SKIP_REASON] for r in rows}


@pytest.mark.parametrize("engine", ENGINES)
def test_each_engine_extracts_the_demo_archive_articles_deterministically(engine):
    from lxml import html as lxml_html

    texts, reasons = _demo_texts(engine)
    articles = [p for p in build_demo_site(seed=0) if p.kind == ARTICLE_KIND and p.status == 200]
    assert len(articles) >= 40 and all(p.url in texts for p in articles)
    found = total = 0
    for page in articles:
        text = texts[page.url]
        assert text and reasons[page.url] is None, page.url
        paragraphs = [p.text_content() for p in lxml_html.fromstring(page.body).xpath('//article/p[not(@class)] | //div[@class="post-body"]/p')]
        found += sum(1 for p in paragraphs if " ".join(p.split()) in " ".join(text.split()))
        total += len(paragraphs)
        assert "All rights reserved" not in text and "Subscribe" not in text, page.url
    assert found / total >= 0.97, f"{engine}: {found} of {total} article paragraphs"
    assert _demo_texts(engine) == (texts, reasons)  # a fresh sandbox, the same output


@pytest.mark.parametrize("engine", ENGINES)
def test_each_engine_gives_hostile_pages_the_same_reasons(engine):
    random.seed(7)
    pages = {
        "article": ARTICLE.encode(),
        "nested_100k": _nested(100_000),
        "binary": bytes(random.getrandbits(8) for _ in range(20_000)),
        "script_only": b"<html><script>" + b"var a=1;" * 1000 + b"</script></html>",
        "empty_body": b"<html><body></body></html>",
        "nul_bytes": ARTICLE.encode().replace(b" the ", b" \0the\0 "),
        "control_chars": ARTICLE.encode().replace(b" ", bytes([1, 32])),
    }
    stage = ExtractText(ExtractConfig(engine=engine, timeout_s=30))
    out = dict(zip(pages, stage(_table(list(pages.values()))).to_pylist()))
    assert {k: r[C.SKIP_REASON] for k, r in out.items()} == {
        "article": None, "nested_100k": R.NO_MAIN_TEXT, "binary": R.NO_MAIN_TEXT, "script_only": R.NO_MAIN_TEXT,
        "empty_body": R.NO_MAIN_TEXT, "nul_bytes": None, "control_chars": None}
    for kind in ("article", "nul_bytes", "control_chars"):  # control characters removed, as trafilatura does
        assert "turns the wheel" in out[kind][C.TEXT] and not {"\0", "\x01"} & set(out[kind][C.TEXT]), kind
    assert stage.sandbox.restarts == 0


@pytest.mark.parametrize("engine", ENGINES)
def test_each_engine_times_out_and_restarts(engine):
    stage = ExtractText(ExtractConfig(engine=engine, timeout_s=1e-4))
    out = stage(_table([ARTICLE.encode(), ARTICLE.encode()])).to_pylist()
    assert [r[C.SKIP_REASON] for r in out] == [R.EXTRACTION_TIMEOUT] * 2
    assert stage.sandbox.restarts == 2
    stage.sandbox.timeout_s = 30
    assert "the water turns the wheel" in stage(_table([ARTICLE.encode()])).to_pylist()[0][C.TEXT]


@pytest.mark.parametrize("engine", ENGINES)
def test_each_engine_under_the_memory_cap_fails_the_page_not_the_batch(engine):
    # A page whose parse needs more than the 300 MB address space: 4 million elements.
    huge = b"<html><body>" + b"<p>a</p>" * 4_000_000 + b"</body></html>"
    stage = ExtractText(ExtractConfig(engine=engine, sandbox_memory_mb=300, timeout_s=60))
    out = stage(_table([huge, ARTICLE.encode()])).to_pylist()
    assert out[0][C.SKIP_REASON] in (R.EXTRACTION_FAILED, R.NO_MAIN_TEXT)
    assert "the water turns the wheel" in (out[1][C.TEXT] or "")


def test_resiliparse_clean_drops_chrome_blocks_and_keeps_content():
    marked = "\n".join([
        "<h1>The mill reopens</h1>",
        "<p>The miller opens the sluice before dawn and listens to the wheel as it begins to turn.</p>",
        '<p><a href="/a">Home</a> <a href="/b">News</a> <a href="/c">Sport</a></p>',
        "<p>Subscribe to our newsletter for the latest stories from the valley.</p>",
        "Advertisement",
        "<p>sourdough_sue 2 March 2024</p>",
        "<ul>",
        "<li>Two sacks of rye</li>",
        "</ul>",
        "<pre>make install",
        "cd src</pre>",
        "<p>Farmers bring their sacks on carts &amp; wait in the yard while the flour is made.</p>",
    ])
    assert clean_blocks(marked).split("\n") == [
        "The mill reopens",
        "The miller opens the sluice before dawn and listens to the wheel as it begins to turn.",
        "Two sacks of rye", "make install", "cd src",
        "Farmers bring their sacks on carts & wait in the yard while the flour is made."]
    assert clean_blocks("<p>Advertisement</p>") is None


def test_the_cascade_sends_only_missed_prose_to_trafilatura():
    prose = ("<p>The miller opens the sluice before dawn and listens to the wheel as it begins to turn. Water from the "
             "upper pond drives the heavy stones that grind the grain of the valley.</p><p>Farmers bring their sacks on "
             "carts, and they wait in the yard while the flour is made. In winter the river freezes at the edges, so "
             "the mill works only a few hours each day.</p>")
    # resiliparse's main-content pass drops a whole page of prose in a container classed as chrome.
    missed = f"<html><body><div class='sidebar'>{prose}</div></body></html>".encode()
    # A link list: no main text for resiliparse, some for trafilatura; it stays with resiliparse.
    listing = ("<html><body><ul>" + "".join(f"<li><a href='/{i}'>Mill news number {i} from the valley</a></li>"
                                            for i in range(30)) + "</ul></body></html>").encode()
    texts = {engine: ExtractText(ExtractConfig(engine=engine))(_table([missed, listing, ARTICLE.encode()])).to_pylist()
             for engine in ("resiliparse-clean", "trafilatura", "resiliparse-cascade")}
    assert texts["resiliparse-clean"][0][C.SKIP_REASON] == R.NO_MAIN_TEXT
    assert "grind the grain of the valley" in texts["trafilatura"][0][C.TEXT]
    assert texts["resiliparse-cascade"][0][C.TEXT] == texts["trafilatura"][0][C.TEXT]
    assert texts["resiliparse-clean"][1][C.SKIP_REASON] == texts["resiliparse-cascade"][1][C.SKIP_REASON] == R.NO_MAIN_TEXT
    assert "Mill news number 7" in texts["trafilatura"][1][C.TEXT]
    # A page resiliparse-clean reads stays resiliparse-clean's (its block layout, not trafilatura's).
    assert texts["resiliparse-cascade"][2][C.TEXT] == texts["resiliparse-clean"][2][C.TEXT]
