"""URL rules: a domain block list and banned URL words (RefinedWeb-style), from files the job names.

Block list: one domain a line; a URL whose host is the domain or a subdomain of it matches
(`blocked.example` blocks `www.blocked.example`, not `notblocked.example`). Banned words: one word a
line, matched against the URL's words (lowercase runs of letters and digits in host, path and
query), so `sex` does not match `essex`. Blank lines and `#` comments are ignored. The default lists
(filters/data/url_*.txt) are short lists written for this project.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

DATA = Path(__file__).parent / "data"
DEFAULT_BLOCKLIST = DATA / "url_blocklist.txt"
DEFAULT_BANNED_WORDS = DATA / "url_banned_words.txt"
_WORD = re.compile(r"[a-z0-9]+")


def read_list(path: str | Path) -> list[str]:
    """Entries of a list file: stripped, lowercased, without blanks and '#' comments."""
    out = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        entry = line.split("#", 1)[0].strip().lower()
        if entry:
            out.append(entry)
    return out


def url_host(url: str) -> str:
    try:
        host = urlsplit(url.strip()).hostname or ""
    except ValueError:
        return ""
    return host.rstrip(".").lower()


class UrlFilter:
    def __init__(self, domains=(), banned_words=()):
        self.domains = frozenset(d.strip(".").lower() for d in domains if d.strip("."))
        self.banned_words = frozenset(w.lower() for w in banned_words)

    @classmethod
    def from_files(cls, blocklists=(), banned_word_lists=(), defaults: bool = True) -> UrlFilter:
        blocklists = [*([DEFAULT_BLOCKLIST] if defaults else []), *blocklists]
        banned_word_lists = [*([DEFAULT_BANNED_WORDS] if defaults else []), *banned_word_lists]
        return cls([d for p in blocklists for d in read_list(p)], [w for p in banned_word_lists for w in read_list(p)])

    def blocked_domain(self, url: str | None) -> str | None:
        """The block-list domain the URL's host falls under, or None."""
        host = url_host(url or "")
        parts = host.split(".")
        for i in range(len(parts)):
            candidate = ".".join(parts[i:])
            if candidate in self.domains:
                return candidate
        return None

    def banned_word(self, url: str | None) -> str | None:
        """The first banned word among the URL's words, or None."""
        for word in _WORD.findall((url or "").lower()):
            if word in self.banned_words:
                return word
        return None
