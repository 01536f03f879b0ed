"""WARC source: every record becomes one row with the right reason; bad input is quarantined."""

from __future__ import annotations

import glob
import os
from collections import Counter

import pytest

from gristmill.pipeline.sources.warc import dechunk, read_warc_table
from gristmill.schemas import reasons as R

from conftest import stats_txt
from warc_fixtures import ARTICLE, mixed_responses, write_warc


def _rows(path, max_page_bytes=1_000_000):
    return {r["url"]: r for r in read_warc_table(str(path), max_page_bytes).to_pylist() if r["warc_type"] == "response"}


def test_each_record_is_one_row_with_its_reason(tmp_path):
    path = tmp_path / "mixed.warc.gz"
    write_warc(path, mixed_responses())
    table = read_warc_table(str(path), 1_000_000)
    assert table.num_rows == 16  # 8 requests + 8 responses
    assert len(set(table["id"].to_pylist())) == 16
    rows = _rows(path)
    for url in ("http://a.test/plain", "http://a.test/gzip", "http://a.test/chunked"):
        assert rows[url]["content"] == ARTICLE.encode(), url
        assert rows[url]["skip_reason"] is None
    assert rows["http://a.test/missing"]["skip_reason"] == R.HTTP_STATUS_NOT_OK
    assert rows["http://a.test/logo.png"]["skip_reason"] == R.NOT_HTML
    assert rows["http://a.test/bomb"]["skip_reason"] == R.PAGE_TOO_LARGE  # 4 MB inflated > 1 MB cap
    assert rows["http://a.test/empty"]["skip_reason"] == R.EMPTY_PAYLOAD
    assert "Content-Encoding gzip" in rows["http://a.test/badgzip"]["quarantine_reason"]
    assert Counter(table["skip_reason"].to_pylist())[R.NOT_RESPONSE] == 8


def test_truncated_archive_quarantines_the_rest_and_keeps_what_came_before(tmp_path):
    path = tmp_path / "cut.warc.gz"
    write_warc(path, mixed_responses()[:3])
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 300])
    table = read_warc_table(str(path), 1_000_000).to_pylist()
    quarantined = [r for r in table if r["quarantine_reason"]]
    assert len(quarantined) == 1 and quarantined[0]["quarantine_reason"].startswith("clipped record:")
    assert quarantined[0]["url"] == "http://a.test/chunked"
    assert sum(r["content"] is not None for r in table) == 2  # the two complete responses survive


def test_not_an_archive_is_quarantined(tmp_path):
    path = tmp_path / "junk.warc"
    path.write_bytes(b"this is not a WARC file at all\n" * 10)
    table = read_warc_table(str(path), 1_000_000).to_pylist()
    assert len(table) == 1 and table[0]["quarantine_reason"]


def test_dechunk_rejects_bad_sizes():
    assert dechunk(b"3\r\nabc\r\n0\r\n\r\n") == b"abc"
    with pytest.raises(ValueError):
        dechunk(b"zz\r\nabc\r\n")


@pytest.mark.shared_data
def test_record_and_html_counts_match_stats_txt(shared_data):
    expected = stats_txt(shared_data)
    root = shared_data / "warc-samples"
    files = sorted(glob.glob(str(root / "**" / "*.warc*"), recursive=True) + glob.glob(str(root / "**" / "*.arc*"), recursive=True))
    assert len(expected) == len(files) == 17
    for path in files:
        rows = read_warc_table(path, 5_000_000).to_pylist()
        records = [r for r in rows if r["warc_type"] is not None]
        html = [r for r in records if r["warc_type"] == "response" and "html" in (r["content_type"] or "").lower()]
        assert (len(records), len(html)) == expected[os.path.relpath(path, root)], path


@pytest.mark.shared_data
def test_edge_cases(shared_data):
    edge = shared_data / "warc-samples" / "edge-cases"
    for name in ("ukwa-transfer-compression-brotli.warc.gz", "ukwa-transfer-compression-gzip.warc.gz",
                 "warcio-iana-chunked.warc", "warcio-example.arc.gz"):
        docs = [r for r in read_warc_table(str(edge / name), 5_000_000).to_pylist() if r["content"]]
        assert len(docs) == 1 and docs[0]["content"].lstrip()[:1] == b"<", name
    clipped = read_warc_table(str(edge / "resiliparse-clipped.warc.gz"), 5_000_000).to_pylist()
    assert len(clipped) == 1 and clipped[0]["quarantine_reason"] == "clipped record: 13068 of 88275 bytes missing"
    revisit = read_warc_table(str(edge / "warcio-example-with-revisit.warc.gz"), 5_000_000).to_pylist()
    assert [r["skip_reason"] for r in revisit].count(R.REVISIT) == 1
    bad = read_warc_table(str(edge / "warcio-bad-non-chunked.warc.gz"), 5_000_000).to_pylist()
    assert [r["warc_type"] for r in bad] == ["warcinfo", None]
    assert "non-chunked gzip" in bad[1]["quarantine_reason"]
