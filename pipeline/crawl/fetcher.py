"""A fetcher: the worker that owns a set of hosts (assigned by hash) and fetches their URLs politely.

It runs as a Ray actor (threaded: up to `connections_per_fetcher` requests at once) or, with
`use_ray: false`, as a plain object called from a thread pool; the code is the same. For each URL, in
this order and with nothing sent before each check passes:
1. the host is resolved and every address checked (safety.AddressPolicy), no connection otherwise;
2. robots.txt is consulted (fetched once per host under the same politeness, cached in the crawl folder);
3. the host's turn is awaited: `delay` seconds after the previous request to the host ended, where
   delay = max(min_delay_s, Crawl-delay); a host has at most `per_host_concurrency` requests open;
4. the GET runs under the request deadline and the header, body and decoded-size caps; a content type
   outside the allow-list is refused before its body is read;
5. a body whose SHA-256 is on an opt-out list (`sha256:` entries) is not archived and its links are not
   followed (outcome aborted, reason opted_out_content); URL entries never reach a fetcher;
6. the outcome is made durable (store.CrawlStore) before the connection closes.
Every call returns the journal entry the driver applies to the frontier.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from gristmill.pipeline.crawl.config import CrawlConfig
from gristmill.pipeline.crawl.http import Connection, FetchAborted, FetchFailed, ResponseHead, build_request
from gristmill.pipeline.crawl.robots import MAX_ROBOTS_BYTES, RobotsRecord, RobotsRules, record_for_response
from gristmill.pipeline.crawl.safety import AddressPolicy, Refused
from gristmill.pipeline.crawl.store import CrawlStore, new_record_id
from gristmill.pipeline.crawl.urls import (BadURL, canonicalize, extract_links, host_and_port, host_key,
                                           request_target)
from gristmill.pipeline.sources.warc import BodyError, BodyTooLarge, decode_body

ROBOTS_DIR = "robots"
HTML_TYPES = ("text/html", "application/xhtml+xml")
_ROBOTS_REDIRECTS = 5


@dataclass
class _Host:
    slots: threading.Semaphore
    lock: threading.Lock = field(default_factory=threading.Lock)
    last_end: float = float("-inf")  # time.monotonic() when the host's last request ended
    delay_s: float = 0.0
    robots: RobotsRules | None = None


def warc_date(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def owner(host: str, fetchers: int) -> int:
    """The fetcher that owns a host (scheme://host:port): a stable hash, the same in every process."""
    return int.from_bytes(hashlib.sha1(host.encode("utf-8")).digest()[:8], "big") % fetchers


class Fetcher:
    def __init__(self, config: CrawlConfig | dict, out_dir: str, session: int, index: int):
        self.config = config if isinstance(config, CrawlConfig) else CrawlConfig(**config)
        self.out_dir = Path(out_dir)
        self.index = index
        self.policy = AddressPolicy(self.config.allow_addresses)
        from gristmill.pipeline.lists.optout import load_optout

        # Content hashes of opt-out lists need the body: a listed body is fetched but never archived.
        self.opted_out_bodies = load_optout(self.config.opt_out_lists, self.config.opt_out).sha256
        self.store = CrawlStore(out_dir, session, index, fsync=self.config.fsync, warcinfo={
            "software": "gristmill crawler", "format": "WARC File Format 1.1",
            "http-header-user-agent": self.config.user_agent, "robots": "obey"})
        self._hosts: dict[str, _Host] = {}
        self._hosts_lock = threading.Lock()
        (self.out_dir / ROBOTS_DIR).mkdir(parents=True, exist_ok=True)

    def ready(self) -> bool:
        return True

    def close(self) -> None:
        self.store.close()

    # -- one URL --------------------------------------------------------------------------------------

    def fetch(self, url: str) -> dict:
        """Fetch one canonical frontier URL; returns its journal entry (already durable)."""
        started = time.monotonic()
        entry: dict = {"url": url, "outcome": None, "reason": None, "status": None, "bytes": 0,
                       "fetcher": self.index}
        key = host_key(url)
        host = self._host(key)
        records = spool = None
        with host.slots:
            try:
                name, port = host_and_port(url)
                target = self.policy.resolve(name, port)
                rules = self._robots(host, key, entry)
                if not rules.can_fetch(url):
                    entry.update(outcome="robots_disallowed")
                    self.store.journal(entry)
                    return entry
                self._await_turn(host)
                try:
                    records, spool = self._get(url, name, port, target, entry)
                finally:
                    host.last_end = time.monotonic()
            except Refused as refused:
                entry.update(outcome="refused", reason=refused.reason, detail=refused.detail[:300])
                self.store.journal(entry)
                return entry
        if records is not None:
            entry["seconds"] = round(time.monotonic() - started, 4)
            self.store.commit(entry, records, spool)
        return entry

    def _host(self, key: str) -> _Host:
        with self._hosts_lock:
            if key not in self._hosts:
                self._hosts[key] = _Host(threading.Semaphore(self.config.per_host_concurrency),
                                         delay_s=self.config.min_delay_s)
            return self._hosts[key]

    def _await_turn(self, host: _Host) -> None:
        wait = host.last_end + host.delay_s - time.monotonic()
        if wait > 0:
            time.sleep(wait)

    def _get(self, url: str, name: str, port: int, target, entry: dict) -> tuple[bytes | None, Path | None]:
        """The GET; returns (WARC records, spool path) for an archived response, else (None, None) with
        the entry journaled. Either way the outcome is durable before the connection closes."""
        config = self.config
        scheme = url.split(":", 1)[0]
        netloc = url.split("/", 3)[2]
        moment = dt.datetime.now(dt.timezone.utc)
        entry.update(ip=target.ip, fetched_at=warc_date(moment))
        request_line = f"GET {request_target(url)} HTTP/1.1"
        request_headers = build_request(netloc, config.user_agent)
        try:
            connection = Connection(target, name, port, scheme, timeout_s=config.timeout_s,
                                    connect_timeout_s=config.connect_timeout_s)
        except (FetchAborted, FetchFailed) as err:
            entry.update(outcome="aborted" if isinstance(err, FetchAborted) else "error", reason=err.reason,
                         detail=err.detail[:300])
            self.store.journal(entry)
            return None, None
        with connection:
            try:
                connection.send(request_line, request_headers)
                head = connection.read_head(config.max_header_bytes)
                entry.update(status=head.status, content_type=head.header("Content-Type"))
                location = head.header("Location") if 300 <= head.status < 400 else None
                mime = (head.header("Content-Type") or "").split(";")[0].strip().lower()
                if location is None and mime not in config.content_types:
                    raise FetchAborted("content_type_not_allowed", mime or "(none)")
                body = connection.read_body(head, config.max_body_bytes)
                links: list[str] = []
                if location is None:
                    decoded = decode_body(body, (head.header("Transfer-Encoding") or "").lower(),
                                          (head.header("Content-Encoding") or "").lower(), config.max_decoded_bytes)
                    if self.opted_out_bodies and (digest := hashlib.sha256(decoded).hexdigest()) in self.opted_out_bodies:
                        return self._unarchived(entry, connection, "aborted", "opted_out_content", f"sha256:{digest}")
                    if head.status == 200 and mime in HTML_TYPES:
                        links = extract_links(decoded, url)
                else:
                    try:
                        entry["location"] = canonicalize(location, url)
                    except BadURL as err:
                        entry["location_error"] = str(err)[:200]
            except BodyTooLarge:
                return self._unarchived(entry, connection, "aborted", "decoded_too_large",
                                        f"more than {config.max_decoded_bytes} bytes after Content-Encoding")
            except BodyError as err:
                return self._unarchived(entry, connection, "aborted", "undecodable_body", str(err))
            except FetchAborted as err:
                return self._unarchived(entry, connection, "aborted", err.reason, err.detail)
            except FetchFailed as err:
                return self._unarchived(entry, connection, "error", err.reason, err.detail)
            entry.update(outcome="fetched", bytes=connection.received, links=links)
            records = self._records(url, moment, target.ip, request_line, request_headers, head, body)
            spool = self.store.spool(entry, records)
        return records, spool

    def _unarchived(self, entry: dict, connection: Connection, outcome: str, reason: str, detail: str):
        entry.update(outcome=outcome, reason=reason, detail=detail[:300], bytes=connection.received)
        self.store.journal(entry)
        return None, None

    def _records(self, url: str, moment: dt.datetime, ip: str, request_line: str,
                 request_headers: list[tuple[str, str]], head: ResponseHead, body: bytes) -> bytes:
        """The request and response records, gzipped, ready to append."""
        buffer = io.BytesIO()
        writer = WARCWriter(buffer, gzip=True, warc_version="1.1")
        response_id = new_record_id()
        date = warc_date(moment)
        writer.write_record(writer.create_warc_record(
            url, "request", http_headers=StatusAndHeaders(request_line, request_headers, is_http_request=True),
            warc_headers_dict={"WARC-Record-ID": new_record_id(), "WARC-Date": date,
                               "WARC-Concurrent-To": response_id, "WARC-IP-Address": ip}))
        writer.write_record(writer.create_warc_record(
            url, "response", payload=io.BytesIO(body), length=len(body),
            http_headers=StatusAndHeaders(f"{head.status} {head.reason}".strip(), head.headers, protocol=head.protocol),
            warc_headers_dict={"WARC-Record-ID": response_id, "WARC-Date": date, "WARC-IP-Address": ip}))
        return buffer.getvalue()

    # -- robots.txt -----------------------------------------------------------------------------------

    def _robots(self, host: _Host, key: str, entry: dict) -> RobotsRules:
        """The host's rules: in memory, else from the crawl folder's cache, else fetched (politely)."""
        with host.lock:
            if host.robots is None:
                host.robots = self._load_robots(host, key, entry)
            return host.robots

    def _load_robots(self, host: _Host, key: str, entry: dict) -> RobotsRules:
        cache = self.out_dir / ROBOTS_DIR / (hashlib.sha1(key.encode("utf-8")).hexdigest()[:20] + ".json")
        record = None
        if cache.exists():
            try:
                record = RobotsRecord.from_dict(json.loads(cache.read_text()))
            except (ValueError, TypeError):
                record = None
            if record is not None and not record.fresh(self.config.robots_ttl_s):
                record = None
        if record is None:
            record = self._fetch_robots(host, key, cache, entry)
        rules = RobotsRules(record, self.config.token)
        if self.config.obey_crawl_delay and (delay := rules.delay_s) is not None:
            host.delay_s = max(self.config.min_delay_s, min(delay, self.config.max_crawl_delay_s))
        return rules

    def _fetch_robots(self, host: _Host, key: str, cache: Path, entry: dict) -> RobotsRecord:
        url = key + "/robots.txt"
        fetched = {"url": url, "requests": 0, "status": None}
        entry["robots"] = fetched
        for _ in range(_ROBOTS_REDIRECTS + 1):
            name, port = host_and_port(url)
            try:
                target = self.policy.resolve(name, port)
            except Refused as refused:
                return record_for_response(key, None, b"", f"robots.txt target refused: {refused}")
            self._await_turn(host)
            fetched["requests"] += 1
            try:
                connection = Connection(target, name, port, url.split(":", 1)[0], timeout_s=self.config.timeout_s,
                                        connect_timeout_s=self.config.connect_timeout_s)
            except (FetchAborted, FetchFailed) as err:
                host.last_end = time.monotonic()
                return record_for_response(key, None, b"", f"robots.txt: {err}")
            try:
                target_path = request_target(url)
                connection.send(f"GET {target_path} HTTP/1.1",
                                build_request(url.split("/", 3)[2], self.config.user_agent))
                head = connection.read_head(self.config.max_header_bytes)
                fetched["status"] = head.status
                location = head.header("Location") if 300 <= head.status < 400 else None
                if location is not None:
                    try:
                        url = canonicalize(location, url)
                    except BadURL:
                        location = None
                if location is None:
                    body = b""
                    if 200 <= head.status < 300:
                        raw = connection.read_body(head, MAX_ROBOTS_BYTES * 4)
                        body = decode_body(raw, (head.header("Transfer-Encoding") or "").lower(),
                                           (head.header("Content-Encoding") or "").lower(), MAX_ROBOTS_BYTES * 4)
                    record = record_for_response(key, head.status, body)
                    _write_atomic(cache, json.dumps(record.to_dict()).encode("utf-8"), self.config.fsync)
                    return record
            except (FetchAborted, FetchFailed, BodyError, BodyTooLarge) as err:
                return record_for_response(key, None, b"", f"robots.txt: {type(err).__name__}: {err}")
            finally:
                connection.close()
                host.last_end = time.monotonic()
        record = record_for_response(key, 399, b"", "more than 5 redirects")  # RFC 9309: treat as unavailable
        _write_atomic(cache, json.dumps(record.to_dict()).encode("utf-8"), self.config.fsync)
        return record


def _write_atomic(path: Path, data: bytes, fsync: bool) -> None:
    partial = path.with_name(path.name + ".partial")
    with open(partial, "wb") as handle:
        handle.write(data)
        handle.flush()
        if fsync:
            os.fsync(handle.fileno())
    partial.replace(path)
