"""A small HTTP/1.1 client with hard limits, for a crawler that talks to servers it does not trust.

It connects to an address the safety policy has already checked (never resolving the name itself),
sends one GET with `Connection: close`, and reads the response under a deadline for the whole request
and caps on the header and body bytes; the body is kept exactly as received (chunked and compressed, as
WARC wants it). Splitting the exchange into `read_head` and `read_body` lets the caller refuse a
content type or a declared length before reading a byte of the body. The connection stays open until the
caller closes it, so the caller can make its record durable first.
"""

from __future__ import annotations

import socket
import ssl
import time
from dataclasses import dataclass

from gristmill.pipeline.crawl.safety import Target

_READ = 64 * 1024
ACCEPT = "text/html,application/xhtml+xml;q=0.9,text/plain;q=0.8,*/*;q=0.1"
ACCEPT_ENCODING = "gzip, deflate, br"


class FetchAborted(Exception):
    """The response broke a limit (or was malformed); `reason` is a stats key."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class FetchFailed(Exception):
    """A network failure: connection refused or reset, TLS error."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass
class ResponseHead:
    protocol: str
    status: int
    reason: str
    headers: list[tuple[str, str]]
    raw_bytes: int  # status line and headers as received

    def header(self, name: str) -> str | None:
        name = name.lower()
        for key, value in self.headers:
            if key.lower() == name:
                return value
        return None


def build_request(host_header: str, user_agent: str) -> list[tuple[str, str]]:
    return [("Host", host_header), ("User-Agent", user_agent), ("Accept", ACCEPT),
            ("Accept-Encoding", ACCEPT_ENCODING), ("Connection", "close")]


class Connection:
    """One request on one connection, under one deadline."""

    def __init__(self, target: Target, host: str, port: int, scheme: str, *, timeout_s: float,
                 connect_timeout_s: float):
        self.deadline = time.monotonic() + timeout_s
        self.received = 0
        self._buffer = b""
        self.sock: socket.socket | None = None
        sock = socket.socket(target.family, socket.SOCK_STREAM)
        try:
            sock.settimeout(min(connect_timeout_s, self._remaining()))
            address = (target.ip, port) if target.family == socket.AF_INET else (target.ip, port, 0, 0)
            sock.connect(address)
            if scheme == "https":
                context = ssl.create_default_context()
                sock.settimeout(self._remaining())
                sock = context.wrap_socket(sock, server_hostname=host)
        except socket.timeout:
            sock.close()
            raise FetchAborted("timeout", "connect") from None
        except ssl.SSLError as err:
            sock.close()
            raise FetchFailed("tls_error", str(err)[:200]) from None
        except OSError as err:
            sock.close()
            raise FetchFailed(_os_reason(err), str(err)[:200]) from None
        self.sock = sock

    def _remaining(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout("deadline")
        return left

    def close(self) -> None:
        if self.sock is not None:
            try:
                self.sock.close()
            finally:
                self.sock = None

    def __enter__(self) -> "Connection":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def send(self, request_line: str, headers: list[tuple[str, str]]) -> None:
        data = (request_line + "\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n").encode("latin-1")
        try:
            self.sock.settimeout(self._remaining())
            self.sock.sendall(data)
        except socket.timeout:
            raise FetchAborted("timeout", "sending the request") from None
        except OSError as err:
            raise FetchFailed(_os_reason(err), str(err)[:200]) from None

    def _recv(self) -> bytes:
        try:
            self.sock.settimeout(self._remaining())
            chunk = self.sock.recv(_READ)
        except socket.timeout:
            raise FetchAborted("timeout", f"after {self.received} bytes") from None
        except OSError as err:
            raise FetchFailed(_os_reason(err), str(err)[:200]) from None
        self.received += len(chunk)
        return chunk

    def read_head(self, max_header_bytes: int) -> ResponseHead:
        data = b""
        while True:
            end = data.find(b"\r\n\r\n")
            if end >= 0:
                head, self._buffer = data[:end + 4], data[end + 4:]
                break
            if len(data) > max_header_bytes:
                raise FetchAborted("headers_too_large", f"more than {max_header_bytes} bytes")
            chunk = self._recv()
            if not chunk:
                raise FetchAborted("bad_response", "connection closed before the end of the headers")
            data += chunk
        if len(head) > max_header_bytes:
            raise FetchAborted("headers_too_large", f"{len(head)} bytes")
        return _parse_head(head)

    def read_body(self, head: ResponseHead, max_body_bytes: int) -> bytes:
        """The body exactly as sent; framing by Transfer-Encoding, Content-Length or connection close."""
        if head.status < 200 or head.status in (204, 304):
            return b""
        body = bytearray(self._buffer)
        self._buffer = b""
        chunked = "chunked" in (head.header("Transfer-Encoding") or "").lower()
        length = None
        if not chunked and (declared := head.header("Content-Length")) is not None:
            try:
                length = int(declared.strip())
            except ValueError:
                raise FetchAborted("bad_response", f"Content-Length {declared[:40]!r}") from None
            if length > max_body_bytes:
                raise FetchAborted("body_too_large", f"Content-Length {length} > {max_body_bytes}")
        scan = _ChunkScanner() if chunked else None
        while True:
            if length is not None and len(body) >= length:
                return bytes(body[:length])
            if scan is not None and scan.complete(body):
                return bytes(body[:scan.end])
            if len(body) > max_body_bytes:
                raise FetchAborted("body_too_large", f"more than {max_body_bytes} bytes")
            chunk = self._recv()
            if not chunk:
                if length is not None:
                    raise FetchAborted("bad_response", f"body ended at {len(body)} of {length} bytes")
                return bytes(body)  # close-delimited (or a chunked body cut short, which decoding reports)
            body += chunk


class _ChunkScanner:
    """Finds the end of a chunked body as bytes arrive, without re-walking what it has seen."""

    def __init__(self):
        self.pos = 0
        self.end = 0

    def complete(self, buf: bytearray) -> bool:
        while True:
            eol = buf.find(b"\r\n", self.pos)
            if eol < 0:
                return False
            size_field = bytes(buf[self.pos:eol]).split(b";", 1)[0].strip()
            try:
                size = int(size_field, 16)
            except ValueError:
                raise FetchAborted("bad_response", f"chunk size {size_field[:20]!r}") from None
            if size == 0:
                trailer_end = buf.find(b"\r\n\r\n", eol)
                if trailer_end < 0:
                    return False
                self.end = trailer_end + 4
                return True
            next_pos = eol + 2 + size + 2
            if len(buf) < next_pos:
                return False
            self.pos = next_pos


def _parse_head(head: bytes) -> ResponseHead:
    lines = head.decode("latin-1").split("\r\n")
    status_line = lines[0]
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit() or len(parts[1]) != 3:
        raise FetchAborted("bad_response", f"status line {status_line[:80]!r}")
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if not line:
            continue
        if line[0] in " \t" and headers:  # obsolete line folding
            key, value = headers[-1]
            headers[-1] = (key, value + " " + line.strip())
            continue
        key, sep, value = line.partition(":")
        if not sep or not key.strip():
            raise FetchAborted("bad_response", f"header line {line[:80]!r}")
        headers.append((key.strip(), value.strip()))
    return ResponseHead(parts[0], int(parts[1]), parts[2] if len(parts) > 2 else "", headers, len(head))


def _os_reason(err: OSError) -> str:
    if isinstance(err, ConnectionRefusedError):
        return "connection_refused"
    if isinstance(err, ConnectionResetError):
        return "connection_reset"
    if isinstance(err, (ConnectionAbortedError, BrokenPipeError)):
        return "connection_aborted"
    return "network_error"
