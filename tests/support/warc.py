"""Small WARC files written by the tests themselves (real warcio records, no shared data needed)."""

from __future__ import annotations

import gzip
import io
import zlib

from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

ARTICLE = (
    "<html><head><title>Mill notes</title></head><body><nav>Home | About | Contact</nav>"
    "<article><h1>How a water mill grinds grain</h1>"
    + "".join(
        f"<p>The miller opens the sluice and the water turns the wheel, which drives the stones that grind "
        f"the grain into flour for the bakers of the valley; this is paragraph {i} of the story and it has "
        f"enough words to look like a real article with the usual stop words of English text.</p>"
        for i in range(6)
    )
    + "</article><footer>Copyright 2026 Mill Notes. All rights reserved.</footer></body></html>"
)


def chunked(body: bytes, size: int = 100) -> bytes:
    parts = [body[i : i + size] for i in range(0, len(body), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"


def write_warc(path, responses, gzip_records: bool = True) -> None:
    """responses: (url, status line, headers list, body bytes); a request record precedes each."""
    with open(path, "wb") as handle:
        writer = WARCWriter(handle, gzip=gzip_records)
        for url, status, headers, body in responses:
            request = writer.create_warc_record(
                url, "request", payload=io.BytesIO(b""),
                http_headers=StatusAndHeaders("GET / HTTP/1.1", [("Host", "example.test")], is_http_request=True),
            )
            writer.write_record(request)
            response = writer.create_warc_record(
                url, "response", payload=io.BytesIO(body),
                http_headers=StatusAndHeaders(status, headers, protocol="HTTP/1.1"), length=None,
            )
            writer.write_record(response)


def mixed_responses(bomb_bytes: int = 4_000_000) -> list:
    html = [("Content-Type", "text/html; charset=utf-8")]
    return [
        ("http://a.test/plain", "200 OK", html, ARTICLE.encode()),
        ("http://a.test/gzip", "200 OK", html + [("Content-Encoding", "gzip")], gzip.compress(ARTICLE.encode(), mtime=0)),
        ("http://a.test/chunked", "200 OK", html + [("Transfer-Encoding", "chunked")], chunked(ARTICLE.encode())),
        ("http://a.test/missing", "404 Not Found", html, b"<html><body>Not found</body></html>"),
        ("http://a.test/logo.png", "200 OK", [("Content-Type", "image/png")], b"\x89PNG\r\n\x1a\n" + bytes(64)),
        ("http://a.test/bomb", "200 OK", html + [("Content-Encoding", "deflate")], zlib.compress(b"<p>" + b"a" * bomb_bytes)),
        ("http://a.test/badgzip", "200 OK", html + [("Content-Encoding", "gzip")], b"\x1f\x8b\x08\x00garbage-not-gzip"),
        ("http://a.test/empty", "200 OK", html, b""),
    ]
