"""A corpus of hostile inputs, generated at test time (big ones in tmp, never committed): one file per
kind, each with the outcome its target record must get. `kind → (bytes writer, expected)`, where
expected is ("quarantine", substring of the reason), ("dropped", reason), ("kept", None) or
("no_rows", None) for a file that holds no record at all."""

from __future__ import annotations

import gzip
import io
import os
import zlib

from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from support.warc import chunked

HTML = [("Content-Type", "text/html; charset=utf-8")]
MB = 1024 * 1024


def _response(url, body: bytes, headers=None, status="200 OK", warc_headers=None, record_type="response") -> bytes:
    out = io.BytesIO()
    writer = WARCWriter(out, gzip=True)
    http = StatusAndHeaders(status, HTML if headers is None else headers, protocol="HTTP/1.1")
    record = writer.create_warc_record(url, record_type, payload=io.BytesIO(body), http_headers=http,
                                       length=None, warc_headers_dict=warc_headers or {})
    writer.write_record(record)
    return out.getvalue()


def _raw_record(block: bytes, content_length: int | None = None, extra_headers: bytes = b"",
                version: bytes = b"WARC/1.0", record_type: bytes = b"response") -> bytes:
    """An uncompressed WARC record written by hand (to lie in its headers)."""
    length = len(block) if content_length is None else content_length
    return (version + b"\r\nWARC-Type: " + record_type + b"\r\nWARC-Record-ID: <urn:uuid:00000000-0000-0000-0000-000000000001>\r\n"
            b"WARC-Date: 2026-01-01T00:00:00Z\r\nWARC-Target-URI: http://h.test/raw\r\n" + extra_headers +
            b"Content-Type: application/http; msgtype=response\r\nContent-Length: " + str(length).encode() +
            b"\r\n\r\n" + block + b"\r\n\r\n")


def _http(body: bytes, headers: bytes = b"Content-Type: text/html\r\n", status: bytes = b"HTTP/1.1 200 OK") -> bytes:
    return status + b"\r\n" + headers + b"\r\n" + body


def _gzip_bomb(size: int) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = b"\0" * MB
    return b"".join(compressor.compress(chunk) for _ in range(size // MB)) + compressor.flush()


def _brotli_bomb(size: int) -> bytes:
    import brotli

    compressor = brotli.Compressor(quality=5)
    chunk = b"a" * MB
    return b"".join(compressor.process(chunk) for _ in range(size // MB)) + compressor.finish()


_SENTENCES = [
    "The miller opens the sluice before dawn and listens to the wheel as it begins to turn.",
    "Water from the upper pond drives the heavy stones that grind the grain of the valley.",
    "Farmers bring their sacks on carts, and they wait in the yard while the flour is made.",
    "In winter the river freezes at the edges, so the mill works only a few hours each day.",
    "The bakers of the town buy most of the flour, but some of it goes to the monastery.",
    "A good miller knows the sound of every gear and can hear when something is wrong.",
    "Children from the village like to watch the water fall from the wheel into the race.",
    "The old records show that this mill has stood on the same spot for three hundred years.",
    "When the harvest is poor, the miller takes a smaller share and helps his neighbours.",
    "Repairs to the wheel are made in summer, when the water is low and the work is slow.",
]


def _article(tag: str = "") -> bytes:
    """An English page that passes the quickstart filters (varied sentences, no repeated paragraphs)."""
    groups = ((0, 1, 2), (3, 4), (5, 6, 7), (8, 9))
    paragraphs = "".join(f"<p>{' '.join(_SENTENCES[i] for i in group)}</p>" for group in groups)
    return (f"<html><head><title>Mill notes {tag}</title></head><body><article><h1>The mill of {tag}</h1>"
            f"{paragraphs}</article></body></html>").encode()


def _write_big_page(path: str) -> None:
    """A 100 MB HTML page, uncompressed in the archive (the reader must not hold it whole)."""
    body_len = 100 * MB
    head = b"<html><body>" + b"<p>" + b"word " * 10 + b"</p>"
    filler = b"x" * (body_len - len(head))
    http_head = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: " + str(body_len).encode() + b"\r\n\r\n"
    block_len = len(http_head) + body_len
    with open(path, "wb") as out:
        out.write(b"WARC/1.0\r\nWARC-Type: response\r\nWARC-Record-ID: <urn:uuid:00000000-0000-0000-0000-0000000000bb>\r\n"
                  b"WARC-Date: 2026-01-01T00:00:00Z\r\nWARC-Target-URI: http://h.test/big\r\n"
                  b"Content-Type: application/http; msgtype=response\r\nContent-Length: " + str(block_len).encode() + b"\r\n\r\n")
        out.write(http_head + head)
        for i in range(0, len(filler), 8 * MB):
            out.write(filler[i:i + 8 * MB])
        out.write(b"\r\n\r\n")


def _cut_last_member(keep: int) -> bytes:
    """Two whole gzip members (records), then the first `keep` bytes of the third (before its record
    header is whole: warcio stops there without an error; a cut in the body is truncated_gzip's case)."""
    members = [_response(f"http://h.test/cut{i}", _article(f"cut{i}")) for i in range(3)]
    return members[0] + members[1] + members[2][:keep]


def _nested(depth: int) -> bytes:
    return b"<html><body>" + b"<div>" * depth + b"deep text " * 50 + b"</div>" * depth + b"</body></html>"


KINDS: dict = {
    # --- the archive itself ---
    "truncated_gzip": (lambda: (_response("http://h.test/a", _article("a")) * 3)[:-100], ("quarantine", "clipped record")),
    "non_warc_bytes": (lambda: os.urandom(5000), ("quarantine", "not a WARC or ARC file")),
    "gzip_of_garbage": (lambda: gzip.compress(b"hello, I am not a WARC\n" * 50, mtime=0), ("quarantine", "not a WARC or ARC file")),
    "bad_gzip_stream": (lambda: b"\x1f\x8b\x08\x00" + os.urandom(3000), ("quarantine", "gzip header but undecodable")),
    "empty_file": (lambda: b"", ("quarantine", "not a WARC or ARC file")),
    "content_length_too_long": (lambda: _raw_record(_http(_article("l")), content_length=10 * MB), ("quarantine", "clipped record")),
    "content_length_too_short": (lambda: _raw_record(_http(_article("s")), content_length=60), ("quarantine", "wrong Content-Length")),
    "gzip_cut_in_record_header": (lambda: _cut_last_member(60), ("quarantine", "truncated archive")),  # earlier members read whole
    "gzip_cut_in_gzip_header": (lambda: _cut_last_member(5), ("quarantine", "truncated archive")),
    "content_length_not_a_number": (lambda: _raw_record(_http(_article("n")), extra_headers=b"")
                                    .replace(b"Content-Length: ", b"Content-Length: x"), ("quarantine", "unreadable archive")),
    "huge_warc_header": (lambda: _raw_record(_http(_article("h")), extra_headers=b"X-Junk: " + b"j" * (2 * MB) + b"\r\n"), ("kept", None)),
    "many_http_headers": (lambda: _raw_record(_http(_article("m"), headers=b"Content-Type: text/html\r\n"
                                                    + b"".join(b"X-H%d: v\r\n" % i for i in range(50_000)))), ("kept", None)),
    "bad_warc_version": (lambda: _raw_record(_http(_article("v")), version=b"WARC/9.9"), ("quarantine", "Unknown archive format")),
    "unknown_warc_type": (lambda: _raw_record(b"whatever", record_type=b"frobnicate"), ("dropped", "not_response")),
    "warcinfo_only": (lambda: _raw_record(b"software: x\r\n", record_type=b"warcinfo"), ("dropped", "not_response")),
    # --- HTTP framing ---
    "malformed_status_line": (lambda: _raw_record(_http(_article("st"), status=b"HTTP/1.1 OK-ish")), ("quarantine", "malformed HTTP status line")),
    "status_500": (lambda: _response("http://h.test/500", _article("500"), status="500 Internal Server Error"), ("dropped", "http_status_not_ok")),
    "no_content_type": (lambda: _response("http://h.test/nct", _article("nct"), headers=[]), ("dropped", "not_html")),
    "bad_chunked": (lambda: _response("http://h.test/chunk", b"zz\r\nabc\r\n", HTML + [("Transfer-Encoding", "chunked")]), ("quarantine", "undecodable HTTP body")),
    # (tag "chunked", not "ck": the toxicity combiner reads "ck", a masked swear word's fragment, as offensive)
    "chunked_ok": (lambda: _response("http://h.test/chunkok", chunked(_article("chunked")), HTML + [("Transfer-Encoding", "chunked")]), ("kept", None)),
    "gzip_encoding_garbage": (lambda: _response("http://h.test/gz", b"\x1f\x8b\x08\x00garbage", HTML + [("Content-Encoding", "gzip")]), ("dropped", "empty_payload")),
    "unknown_content_encoding": (lambda: _response("http://h.test/enc", _article("enc"), HTML + [("Content-Encoding", "x-frob")]), ("kept", None)),  # passed through as identity
    "gzip_bomb_1gb": (lambda: _response("http://h.test/bomb", _gzip_bomb(1024 * MB), HTML + [("Content-Encoding", "gzip")]), ("dropped", "page_too_large")),
    "brotli_bomb_1gb": (lambda: _response("http://h.test/br", _brotli_bomb(1024 * MB), HTML + [("Content-Encoding", "br")]), ("dropped", "page_too_large")),
    "deflate_bomb": (lambda: _response("http://h.test/defl", zlib.compress(b"<p>" + b"a" * (64 * MB), 9), HTML + [("Content-Encoding", "deflate")]), ("dropped", "page_too_large")),
    "page_100mb": (None, ("dropped", "page_too_large")),  # written by _write_big_page
    "empty_body": (lambda: _response("http://h.test/empty", b""), ("dropped", "empty_payload")),
    "whitespace_body": (lambda: _response("http://h.test/ws", b" \r\n\t " * 100), ("dropped", "empty_payload")),
    # --- payloads ---
    "html_nested_100k": (lambda: _response("http://h.test/deep", _nested(100_000)), ("dropped", "no_main_text")),
    "nul_bytes": (lambda: _response("http://h.test/nul", _article("nul").replace(b" the ", b" \0the\0 ")), ("kept", None)),
    "lying_charset": (lambda: _response("http://h.test/cs", _article("café").decode().encode("utf-16"),
                                        [("Content-Type", "text/html; charset=utf-8")]), ("kept", None)),  # the BOM wins
    "binary_as_html": (lambda: _response("http://h.test/bin", os.urandom(20_000)), ("dropped", "no_main_text")),
    "invalid_utf8_url": (lambda: _raw_record(_http(_article("url"))).replace(b"http://h.test/raw", b"http://h.test/\xff\xfe\xc3("), ("kept", None)),
    "script_only": (lambda: _response("http://h.test/js", b"<html><script>" + b"var a=1;" * 1000 + b"</script></html>"), ("dropped", "no_main_text")),
    "one_word": (lambda: _response("http://h.test/one", b"<html><body><p>Hello.</p></body></html>"), ("dropped", "language_not_kept")),
    "control_chars": (lambda: _response("http://h.test/ctl", _article("ctl").replace(b" ", bytes([1, 32]))), ("kept", None)),
}


def write_corpus(folder) -> dict[str, str]:
    """One file per kind under `folder`; returns kind → path."""
    os.makedirs(folder, exist_ok=True)
    paths = {}
    for kind, (make, _) in KINDS.items():
        raw = kind in ("content_length_too_long", "content_length_too_short", "content_length_not_a_number", "huge_warc_header",
                       "many_http_headers", "bad_warc_version", "unknown_warc_type", "warcinfo_only",
                       "malformed_status_line", "invalid_utf8_url", "page_100mb")
        path = os.path.join(folder, f"{kind}.warc" if raw else f"{kind}.warc.gz")
        if make is None:
            _write_big_page(path)
        else:
            with open(path, "wb") as handle:
                handle.write(make())
        paths[kind] = path
    return paths
