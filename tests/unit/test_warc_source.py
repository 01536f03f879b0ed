"""WARC source: every record becomes one row with the right reason; bad input is quarantined."""

from __future__ import annotations

import glob
import os
from collections import Counter

import pytest

from gristmill.pipeline.sources.warc import dechunk, read_warc_table
from gristmill.schemas import reasons as R

from support.repo import stats_txt
from support.warc import ARTICLE, mixed_responses, write_warc


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


def _member_starts(data: bytes) -> list[int]:
    """Offsets of the gzip members of a record-per-member WARC.gz (each record its own member)."""
    import zlib

    starts, pos = [], 0
    while pos < len(data):
        starts.append(pos)
        inflater = zlib.decompressobj(31)
        inflater.decompress(data[pos:])
        pos = len(data) - len(inflater.unused_data)
    return starts


@pytest.mark.parametrize("cut", ["in_record_header", "in_gzip_header", "in_body"])
def test_gzip_cut_inside_the_last_member_is_quarantined_not_lost(tmp_path, cut):
    """warcio ends its iteration silently when the last gzip member is cut before its record header is
    whole (no clipped-record error): the reader notices the unread tail and quarantines it. A cut in the
    body is a clipped record, as before. Either way: 5 whole records read, the cut one quarantined."""
    path = tmp_path / "cut.warc.gz"
    write_warc(path, mixed_responses()[:3])  # 6 members: request, response × 3
    data = path.read_bytes()
    last = _member_starts(data)[-1]
    end = last + {"in_record_header": 60, "in_gzip_header": 5, "in_body": (len(data) - last) // 2}[cut]
    path.write_bytes(data[:end])
    table = read_warc_table(str(path), 1_000_000).to_pylist()
    assert len(table) == 6  # nothing silently gone
    assert [r["quarantine_reason"] for r in table[:5]] == [None] * 5
    assert sum(r["content"] is not None for r in table) == 2
    assert table[5]["record_offset"] == last
    reason = table[5]["quarantine_reason"]
    if cut == "in_body":
        assert reason.startswith("clipped record:") and table[5]["url"] == "http://a.test/chunked"
    else:
        assert reason.startswith(f"truncated archive: {end - last} bytes from byte {last} to the end are a cut-off gzip member")


def test_complete_gzip_padding_after_the_last_record_is_not_an_error(tmp_path):
    import gzip

    path = tmp_path / "padded.warc.gz"
    write_warc(path, mixed_responses()[:1])
    path.write_bytes(path.read_bytes() + gzip.compress(b"\r\n\r\n", mtime=0))
    table = read_warc_table(str(path), 1_000_000).to_pylist()
    assert sum(r["content"] is not None for r in table) == 1
    assert not any(r["quarantine_reason"] for r in table)


@pytest.mark.parametrize("gzip_records", [False, True])
def test_wrong_content_length_quarantines_that_record_and_reads_on(tmp_path, gzip_records):
    """A Content-Length shorter than the record cuts its body; the bytes after the declared end are not
    the blank lines WARC promises. That record is quarantined (not passed off as a whole page); the
    next record is read normally."""
    plain = tmp_path / "ok.warc"
    write_warc(plain, mixed_responses()[:3], gzip_records=False)
    data = plain.read_bytes()
    marker = b"WARC-Target-URI: http://a.test/gzip"
    response_start = data.rfind(b"WARC/1.0", 0, data.index(b"WARC-Type: response", data.index(marker) - 400))
    head_end = data.index(b"\r\n\r\n", response_start)
    header = data[response_start:head_end]
    length = int(header.split(b"Content-Length: ")[1].split(b"\r\n")[0])
    bad = data[:response_start] + header.replace(b"Content-Length: %d" % length, b"Content-Length: %d" % (length - 40)) + data[head_end:]
    path = tmp_path / ("bad.warc.gz" if gzip_records else "bad.warc")
    if gzip_records:  # re-pack record by record, as a WARC.gz writer does
        import gzip

        starts = [i for i in range(len(bad)) if bad.startswith(b"WARC/1.0\r\n", i)] + [len(bad)]
        bad = b"".join(gzip.compress(bad[a:b], mtime=0) for a, b in zip(starts, starts[1:]))
    path.write_bytes(bad)
    rows = _rows(path)
    assert rows["http://a.test/gzip"]["quarantine_reason"].startswith("wrong Content-Length")
    assert rows["http://a.test/gzip"]["content"] is None
    assert rows["http://a.test/plain"]["content"] == ARTICLE.encode()
    assert rows["http://a.test/chunked"]["content"] == ARTICLE.encode()


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
