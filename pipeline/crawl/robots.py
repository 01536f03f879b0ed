"""robots.txt: what a fetch of it means, and the rules it gives, with urllib.robotparser's semantics.

Group selection, Allow/Disallow matching (first matching line of the group wins) and Crawl-delay come
from `urllib.robotparser`; one extension: fractional Crawl-delay values (`Crawl-delay: 0.5`, common in
the wild) are honoured where urllib would ignore them. Fetch outcomes follow RFC 9309 and urllib:
2xx parses the file; 401/403 disallow everything; other 4xx (no robots.txt) allow everything; 5xx, a
network failure or a refused target disallow everything (the host is treated as unreachable); more than
five redirects count as "no robots.txt".
"""

from __future__ import annotations

import re
import time
import urllib.robotparser
from dataclasses import asdict, dataclass

MAX_ROBOTS_BYTES = 512 * 1024  # RFC 9309 asks crawlers to parse at least 500 KiB
_DELAY_LINE = re.compile(r"^(\s*crawl-delay\s*:\s*)([0-9]*\.?[0-9]+)\s*(#.*)?$", re.IGNORECASE | re.MULTILINE)
_DELAY_SCALE = 1000  # delays are parsed as integer milliseconds, then scaled back


@dataclass
class RobotsRecord:
    """A host's robots.txt as fetched: enough to rebuild the rules, and cached in the crawl folder."""

    host: str  # scheme://host[:port]
    verdict: str  # "rules", "allow_all" or "disallow_all"
    status: int | None
    body: str
    fetched_at: float  # Unix time
    detail: str = ""

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "RobotsRecord":
        return cls(**data)

    def fresh(self, ttl_s: float) -> bool:
        return time.time() - self.fetched_at < ttl_s


def record_for_response(host: str, status: int | None, body: bytes, detail: str = "") -> RobotsRecord:
    """The verdict for a robots.txt response (status None: no response at all)."""
    now = time.time()
    text = body[:MAX_ROBOTS_BYTES].decode("utf-8", errors="replace")
    if status is None or status >= 500:
        return RobotsRecord(host, "disallow_all", status, "", now, detail or "unreachable")
    if status in (401, 403):
        return RobotsRecord(host, "disallow_all", status, "", now, detail)
    if 400 <= status < 500 or 300 <= status < 400:
        return RobotsRecord(host, "allow_all", status, "", now, detail)
    return RobotsRecord(host, "rules", status, text, now, detail)


class RobotsRules:
    """`can_fetch` and `delay_s` for one host."""

    def __init__(self, record: RobotsRecord, token: str):
        self.record = record
        self.token = token
        self.parser = urllib.robotparser.RobotFileParser()
        if record.verdict == "disallow_all":
            self.parser.disallow_all = True
        elif record.verdict == "allow_all":
            self.parser.allow_all = True
        else:
            scaled = _DELAY_LINE.sub(lambda m: f"{m.group(1)}{round(float(m.group(2)) * _DELAY_SCALE)}", record.body)
            self.parser.parse(scaled.splitlines())

    def can_fetch(self, url: str) -> bool:
        return self.parser.can_fetch(self.token, url)

    @property
    def delay_s(self) -> float | None:
        """Crawl-delay (or the interval a Request-rate implies) for our group, in seconds."""
        if self.record.verdict != "rules":
            return None
        delays = []
        if (delay := self.parser.crawl_delay(self.token)) is not None:
            delays.append(delay / _DELAY_SCALE)
        if (rate := self.parser.request_rate(self.token)) is not None and rate.requests > 0:
            delays.append(rate.seconds / rate.requests)
        return max(delays) if delays else None
