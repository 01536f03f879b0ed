"""Extraction: charset decoding that survives lying headers, and the sandbox's timeout and restart."""

from __future__ import annotations

import pyarrow as pa

from gristmill.pipeline.stages.extract import ExtractText
from gristmill.pipeline.stages.extract_sandbox import decode_html
from gristmill.schemas import columns as C
from gristmill.schemas import reasons as R
from gristmill.schemas.job import ExtractConfig

from warc_fixtures import ARTICLE

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
