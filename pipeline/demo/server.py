"""The demo web, live: `build_demo_site()` served over HTTP on 127.0.0.1, one port per host.

Each demo host (news, blog, shop, forum .demo.test) gets its own `ThreadingHTTPServer` on 127.0.0.1, so
a crawler sees four hosts (`http://127.0.0.1:PORT`). Absolute links between the hosts are rewritten to
their ports. On top of the site model the server adds what only a live crawl meets (the shipped WARC
does not change):
- robots.txt per host with Disallow areas, a Crawl-delay and a group for the crawler's own token
  (`gristmill` may not read /members/, which others may; on the shop, every other agent is shut out);
- on every home page, a block linking the other hosts, a site index (so a crawl from the home pages
  reaches every page of the model, its 301s, 404s and non-HTML responses included), a disallowed
  `/private/` area, and redirects (to an article, into the disallowed area);
- on the news host, a hub `/crawl-tests/` linking hostile pages: a slow page that dribbles its body, an
  oversized page (with and without Content-Length), a gzip bomb, a response with oversized headers, a
  redirect chain longer than five, redirects to the cloud metadata address and to a private network,
  non-HTML responses and a 500.

Every request is logged (host, path, client, user agent, status, start and end on the monotonic clock,
wall time). The end is when the client closed the connection after the response, so one host's requests
overlap in the log exactly when a client held two connections to it at once. `pause()` holds new
requests before they are served (for tests that kill a crawler between requests).

    gristmill demo-server [--port 8000]     # serve until Ctrl-C
"""

from __future__ import annotations

import datetime as dt
import gzip
import html
import json
import select
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from gristmill.pipeline.demo.web import build_demo_site

HOSTS = ("news.demo.test", "blog.demo.test", "shop.demo.test", "forum.demo.test")
HUB = "/crawl-tests/"
CRAWLER_TOKEN = "gristmill"
_ARTICLE_PREFIX = {"news.demo.test": "/2024/", "blog.demo.test": "/posts/", "shop.demo.test": "/guides/",
                   "forum.demo.test": "/t/"}
_CHAIN_LENGTH = 8  # /crawl-tests/chain/1 -> ... -> /crawl-tests/chain/8 (200): 7 redirects


@dataclass(frozen=True)
class RequestLogEntry:
    host: str  # the demo host name the port serves
    port: int
    path: str  # the request target as sent
    client: str  # address:port of the client
    user_agent: str
    status: int | None  # None: nothing was served (the client was gone)
    started: float  # time.monotonic() when serving began
    ended: float  # time.monotonic() when the client closed (or the exchange failed)
    time: str  # wall-clock start, ISO 8601 UTC
    outcome: str  # "served", "client_aborted" (closed mid-response) or "client_gone" (before it)
    bytes_sent: int

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class _Response:
    status: int
    headers: list[tuple[str, str]]
    body: bytes = b""
    stream: object = None  # a callable giving an iterator of (bytes, pause_s) instead of body


class DemoWebServer:
    """The live demo web. Use as a context manager; `base_urls` maps each demo host to its URL. As a crawl
    source's web server it names the addresses a crawl of it must be allowed (`addresses`: it serves on
    127.0.0.1, which the crawler refuses otherwise) and what it is (`title`)."""

    title = "the demo web"
    addresses = ("127.0.0.1",)

    def __init__(self, seed: int = 0, *, crawl_delay_s: float | None = 0.1, ports: dict[str, int] | None = None,
                 slow_s: float = 3.0, big_page_bytes: int = 6_000_000, bomb_bytes: int = 50_000_000,
                 log_path: str | Path | None = None):
        self.seed = seed
        self.crawl_delay_s = crawl_delay_s
        self.slow_s = slow_s
        self.big_page_bytes = big_page_bytes
        self.bomb_bytes = bomb_bytes
        self.log_path = Path(log_path) if log_path else None
        self._ports = ports or {}
        self._servers: dict[str, ThreadingHTTPServer] = {}
        self._threads: list[threading.Thread] = []
        self._log: list[RequestLogEntry] = []
        self._log_lock = threading.Lock()
        self._open = threading.Event()
        self._open.set()
        self._in_flight = 0
        self._routes: dict[tuple[str, str], _Response] = {}
        self._cache: dict[str, bytes] = {}
        self.base_urls: dict[str, str] = {}

    # -- lifecycle ------------------------------------------------------------------------------------

    def start(self) -> "DemoWebServer":
        for host in HOSTS:
            server = ThreadingHTTPServer(("127.0.0.1", self._ports.get(host, 0)), _Handler)
            server.daemon_threads = True
            server.web = self
            server.site_host = host
            self._servers[host] = server
            self.base_urls[host] = f"http://127.0.0.1:{server.server_address[1]}"
        self._build_routes()
        for host, server in self._servers.items():
            thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                      name=f"demo-web-{host}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._open.set()
        for server in self._servers.values():
            server.shutdown()
            server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._servers.clear()
        self._threads.clear()

    def __enter__(self) -> "DemoWebServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- what tests read ------------------------------------------------------------------------------

    @property
    def seeds(self) -> list[str]:
        """Every host's home page."""
        return [f"{self.base_urls[h]}/" for h in HOSTS]

    def url(self, host: str, path: str) -> str:
        return self.base_urls[host] + path

    def host_of_port(self, port: int) -> str:
        return next(h for h, u in self.base_urls.items() if u.endswith(f":{port}"))

    def requests(self) -> list[RequestLogEntry]:
        with self._log_lock:
            return list(self._log)

    def clear_log(self) -> None:
        with self._log_lock:
            self._log.clear()

    def pause(self) -> None:
        """Hold every new request before it is served (and logged) until resume()."""
        with self._log_lock:
            self._open.clear()

    def resume(self) -> None:
        self._open.set()

    def in_flight(self) -> int:
        """Requests being served now (past the pause gate, client not yet gone)."""
        with self._log_lock:
            return self._in_flight

    # -- the site -------------------------------------------------------------------------------------

    def _rewrite(self, data: bytes) -> bytes:
        for host in HOSTS:
            data = data.replace(f"http://{host}".encode(), self.base_urls[host].encode())
        return data

    def _build_routes(self) -> None:
        pages = build_demo_site(self.seed)
        first_article = {}
        index: dict[str, list[str]] = {host: [] for host in HOSTS}
        for page in pages:
            if page.path not in ("/", "/robots.txt"):
                index[page.host].append(page.path)
            headers = [("Content-Type", page.content_type)]
            headers += [(k, self._rewrite(v.encode()).decode()) for k, v in page.headers]
            self._routes[(page.host, page.path)] = _Response(page.status, headers, self._rewrite(page.body))
            if page.status == 200 and page.path.startswith(_ARTICLE_PREFIX[page.host]):
                first_article.setdefault(page.host, page.path)
        for host in HOSTS:
            self._routes[(host, "/robots.txt")] = _Response(
                200, [("Content-Type", "text/plain; charset=utf-8")], self._robots(host).encode())
            home = self._routes[(host, "/")]
            extra = self._home_extras(host).encode()
            home.body = home.body.replace(b"</main>", extra + b"</main>", 1)
            self._routes[(host, "/private/staff.html")] = _html(200, "Staff area", "<p>Rota, door codes and "
                                                                 "the staff phone list. Not for crawlers.</p>")
            self._routes[(host, "/go/latest")] = _redirect(302, first_article[host])
            self._routes[(host, "/go/staff")] = _redirect(302, "/private/staff.html")
            # An HTML sitemap, so a crawl from the home pages reaches every page of the site model.
            items = "".join(f'<li><a href="{html.escape(p)}">{html.escape(p)}</a></li>' for p in index[host])
            self._routes[(host, "/site-index.html")] = _html(200, "Site index", f"<ul>{items}</ul>")
        self._add_hub("news.demo.test")

    def _robots(self, host: str) -> str:
        delay = f"Crawl-delay: {self.crawl_delay_s:g}\n" if self.crawl_delay_s is not None else ""
        common = "Disallow: /basket/\nDisallow: /login/\nDisallow: /search/\nDisallow: /private/\n"
        ours = f"User-agent: {CRAWLER_TOKEN}\n{common}Disallow: /members/\n{delay}"
        others = f"User-agent: *\n{common}{delay}"
        if host == "shop.demo.test":
            others = "User-agent: *\nDisallow: /\n"
        return f"# demo web, {host}\n{ours}\n{others}\nSitemap: {self.base_urls[host]}/sitemap.xml\n"

    def _home_extras(self, host: str) -> str:
        links = "".join(f'<li><a href="{self.base_urls[h]}/">{h}</a></li>' for h in HOSTS if h != host)
        hub = f'<li><a href="{HUB}">Crawler test pages</a></li>' if host == "news.demo.test" else ""
        return (f'<section class="elsewhere"><h2>Elsewhere in the valley</h2><ul>{links}</ul>'
                f'<ul><li><a href="/site-index.html">Site index</a></li><li><a href="/go/latest">Latest story</a></li><li><a href="/private/staff.html">Staff area'
                f'</a></li><li><a href="/go/staff">Staff rota</a></li>{hub}</ul></section>\n')

    def _add_hub(self, host: str) -> None:
        r = self._routes
        pages = {
            "slow.html": "A slow page", "big.html": "An oversized page", "big-stream.html": "An oversized page without a length",
            "bomb.html": "A compressed bomb", "fat-headers.html": "Oversized headers", "chain/1": "A long redirect chain",
            "to-metadata": "A redirect to the metadata service", "to-intranet": "A redirect to a private network",
            "error.html": "A server error", "missing.html": "A missing page",
        }
        items = "".join(f'<li><a href="{HUB}{p}">{html.escape(t)}</a></li>' for p, t in pages.items())
        items += f'<li><a href="{self.base_urls["shop.demo.test"]}/static/logo.png">Logo</a></li>'
        items += f'<li><a href="{self.base_urls["shop.demo.test"]}/api/products.json">Products</a></li>'
        r[(host, HUB)] = _html(200, "Crawler test pages", f"<ul>{items}</ul>")
        r[(host, HUB + "slow.html")] = _Response(200, [("Content-Type", "text/html; charset=utf-8"),
                                                      ("Content-Length", str(40 * int(self.slow_s * 10)))],
                                                stream=self._slow)
        r[(host, HUB + "big.html")] = _Response(200, [("Content-Type", "text/html; charset=utf-8"),
                                                     ("Content-Length", str(self.big_page_bytes))], stream=self._big)
        r[(host, HUB + "big-stream.html")] = _Response(200, [("Content-Type", "text/html; charset=utf-8")],
                                                       stream=self._big)
        r[(host, HUB + "bomb.html")] = _Response(200, [("Content-Type", "text/html; charset=utf-8"),
                                                      ("Content-Encoding", "gzip")], stream=self._bomb)
        r[(host, HUB + "fat-headers.html")] = _Response(
            200, [("Content-Type", "text/html; charset=utf-8")] + [(f"X-Padding-{i}", "p" * 400) for i in range(300)],
            b"<html><body><p>Behind a wall of headers.</p></body></html>")
        for i in range(1, _CHAIN_LENGTH):
            r[(host, f"{HUB}chain/{i}")] = _redirect(302, f"{HUB}chain/{i + 1}")
        r[(host, f"{HUB}chain/{_CHAIN_LENGTH}")] = _html(200, "End of the chain", "<p>Eight hops in.</p>")
        r[(host, HUB + "to-metadata")] = _redirect(302, "http://169.254.169.254/latest/meta-data/")
        r[(host, HUB + "to-intranet")] = _redirect(302, "http://10.0.0.1/admin/")
        r[(host, HUB + "error.html")] = _html(500, "Server error", "<p>Something broke.</p>")

    def _slow(self) -> Iterator[tuple[bytes, float]]:
        for _ in range(int(self.slow_s * 10)):
            yield b"<p>" + b"s" * 32 + b"</p>\n", 0.1

    def _big(self) -> Iterator[tuple[bytes, float]]:
        line = b"<p>" + b"All work and no play makes a very large page. " * 20 + b"</p>\n"
        sent = 0
        while sent < self.big_page_bytes:
            piece = line[: self.big_page_bytes - sent]
            sent += len(piece)
            yield piece, 0.0

    def _bomb(self) -> Iterator[tuple[bytes, float]]:
        if "bomb" not in self._cache:
            self._cache["bomb"] = gzip.compress(b"<html><body>" + b"\0" * self.bomb_bytes, compresslevel=9, mtime=0)
        yield self._cache["bomb"], 0.0

    def route(self, host: str, target: str) -> _Response:
        found = self._routes.get((host, target))
        if found is None:
            return _html(404, "Page not found", "<p>Sorry, we could not find that page.</p>")
        return found

    # -- bookkeeping the handler calls ----------------------------------------------------------------

    def _record(self, entry: RequestLogEntry) -> None:
        with self._log_lock:
            self._log.append(entry)
            if self.log_path is not None:
                with open(self.log_path, "a") as handle:
                    handle.write(json.dumps(entry.to_dict()) + "\n")

    def _enter(self) -> None:
        while True:
            self._open.wait()
            with self._log_lock:
                if self._open.is_set():  # pause() may have closed the gate since the wait returned
                    self._in_flight += 1
                    return

    def _leave(self) -> None:
        with self._log_lock:
            self._in_flight -= 1


def _html(status: int, title: str, main: str) -> _Response:
    body = (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"</head><body><main><h1>{html.escape(title)}</h1>{main}</main></body></html>\n").encode("utf-8")
    return _Response(status, [("Content-Type", "text/html; charset=utf-8")], body)


def _redirect(status: int, location: str) -> _Response:
    body = (f'<html><head><title>Moved</title></head><body><p>Moved <a href="{html.escape(location)}">here</a>.'
            f"</p></body></html>\n").encode("utf-8")
    return _Response(status, [("Content-Type", "text/html; charset=utf-8"), ("Location", location)], body)


class _Handler(BaseHTTPRequestHandler):
    server_version = "demo-web/1.0"
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args) -> None:  # noqa: A002 - the log is DemoWebServer's
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        web: DemoWebServer = self.server.web
        host = self.server.site_host
        self.close_connection = True
        web._enter()
        started, wall = time.monotonic(), dt.datetime.now(dt.timezone.utc).isoformat()
        status, sent, outcome = None, 0, "client_gone"
        try:
            if not self._client_gone():
                response = web.route(host, self.path)
                status = response.status
                sent, outcome = self._send(response)
                if outcome == "served":
                    self._await_close()
        finally:
            web._leave()
        web._record(RequestLogEntry(host, self.server.server_address[1], self.path,
                                    f"{self.client_address[0]}:{self.client_address[1]}",
                                    self.headers.get("User-Agent", ""), status, started, time.monotonic(), wall,
                                    outcome, sent))

    def _client_gone(self) -> bool:
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            return bool(readable) and self.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def _send(self, response: _Response) -> tuple[int, str]:
        sent = 0
        try:
            self.send_response(response.status)
            has_length = False
            for key, value in response.headers:
                self.send_header(key, value)
                has_length |= key.lower() == "content-length"
            if response.stream is None and not has_length:
                self.send_header("Content-Length", str(len(response.body)))
            self.send_header("Connection", "close")
            self.end_headers()
            if response.stream is None:
                self.wfile.write(response.body)
                sent = len(response.body)
            else:
                for piece, pause_s in response.stream():
                    self.wfile.write(piece)
                    self.wfile.flush()
                    sent += len(piece)
                    # Pause by waiting on the socket, so a client that gives up is noticed at once.
                    if pause_s and select.select([self.connection], [], [], pause_s)[0] and self._client_gone():
                        return sent, "client_aborted"
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            return sent, "client_aborted"
        return sent, "served"

    def _await_close(self) -> None:
        """Half-close and wait for the client to close its side: the exchange ends when it does."""
        try:
            self.connection.shutdown(socket.SHUT_WR)
            self.connection.settimeout(30)
            while self.connection.recv(4096):
                pass
        except OSError:
            pass


def start_demo_web() -> DemoWebServer:
    """The demo web as a `type: crawl` source with `demo_web: true` crawls it: started on free ports, with a
    short crawl delay; the crawl source stops it after the crawl."""
    return DemoWebServer(crawl_delay_s=0.05).start()


def serve(port: int = 0, seed: int = 0, crawl_delay_s: float | None = 0.1, log_path: str | None = None,
          echo=print) -> None:
    """Run the demo web until Ctrl-C; hosts on port, port+1, ... (or free ports when port is 0)."""
    ports = {h: port + i for i, h in enumerate(HOSTS)} if port else None
    with DemoWebServer(seed, crawl_delay_s=crawl_delay_s, ports=ports, log_path=log_path) as web:
        for host in HOSTS:
            echo(f"{host:18} {web.base_urls[host]}/")
        echo("seeds: " + " ".join(web.seeds))
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            echo(f"stopping; {len(web.requests())} requests served")
