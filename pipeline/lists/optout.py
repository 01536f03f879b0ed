"""Opt-out lists: what must never be fetched or trained on, in one small format, and the matcher.

A list is a text file (or URI, read through fsspec) with one typed entry per line; `#` starts a
comment, blank lines are ignored:

    domain:example.com                   the host and every subdomain (a.example.com, b.a.example.com);
                                         `domain:host:PORT` matches that port only
    prefix:https://example.org/private/  every URL that starts with it
    url:https://example.net/page?id=7    that URL exactly
    sha256:9f86d081884c7d65…             a document whose extracted text (UTF-8, as trafilatura
                                         returned it, before any later stage edits it) has this SHA-256
                                         (stored per document in the `text_sha256` column), or whose
                                         HTTP body has it (decoded: after chunking and Content-Encoding,
                                         the bytes the crawler received and the WARC's payload)
    id:3fa2c91d00a7e5b4                  a gristmill document id (column `id`); takedown and runs

URLs are compared in canonical form (`pipeline.crawl.urls.canonicalize`: lowercase scheme and host,
default port dropped, dot segments and percent escapes normalized, fragment dropped) and without their
scheme, so an opt-out of `http://x/` covers `https://x/` too. The same content can be given as YAML
(a file ending in .yaml/.yml), one list per type:

    domains: [example.com]
    prefixes: ["https://example.org/private/"]
    urls: ["https://example.net/page?id=7"]
    sha256: ["9f86d081884c7d65…"]
    ids: ["3fa2c91d00a7e5b4"]

A malformed entry fails with an `OptOutError` naming the file and line; nothing is silently ignored.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from gristmill.pipeline.crawl.urls import BadURL, canonical_host, canonicalize

KINDS = ("domain", "prefix", "url", "sha256", "id")
_YAML_KEYS = {"domains": "domain", "prefixes": "prefix", "urls": "url", "sha256": "sha256", "ids": "id"}
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class OptOutError(ValueError):
    """An opt-out list that cannot be read or holds a malformed entry; the message names file and line."""


def text_sha256(text: str | None) -> str | None:
    """The content hash opt-out lists name: SHA-256 (hex) of the text's UTF-8 bytes."""
    return None if text is None else hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def url_key(url: str) -> str:
    """A URL as opt-out entries compare it: canonical, without its scheme (`host[:port]/path?query`).
    A URL the canonicalizer refuses is compared as written, lowercased and stripped."""
    try:
        canonical = canonicalize(url)
    except BadURL:
        return url.strip().lower().split("://", 1)[-1]
    return canonical.split("://", 1)[1]


@dataclass
class OptOutList:
    """Parsed entries of one or more lists; `match_url` / `match_text_hash` / `match_id` return the
    entry that matched (as written in list form, e.g. 'domain:example.com'), or None."""

    domains: dict[str, set[int | None]] = field(default_factory=dict)  # host -> ports (None: any port)
    prefixes: list[str] = field(default_factory=list)
    urls: set[str] = field(default_factory=set)
    sha256: set[str] = field(default_factory=set)
    ids: set[str] = field(default_factory=set)
    sources: list[str] = field(default_factory=list)  # where the entries came from

    def __len__(self) -> int:
        return sum(len(p) for p in self.domains.values()) + len(self.prefixes) + len(self.urls) + len(self.sha256) + len(self.ids)

    def counts(self) -> dict[str, int]:
        return {"domain": sum(len(p) for p in self.domains.values()), "prefix": len(self.prefixes),
                "url": len(self.urls), "sha256": len(self.sha256), "id": len(self.ids)}

    @property
    def has_url_entries(self) -> bool:
        return bool(self.domains or self.prefixes or self.urls)

    @property
    def has_content_entries(self) -> bool:
        return bool(self.sha256)

    # -- building ---------------------------------------------------------------------------------------

    def add(self, entry: str, where: str = "entry") -> None:
        """Add one `kind:value` entry; raise OptOutError (naming `where`) when it is malformed."""
        kind, sep, value = entry.strip().partition(":")
        kind, value = kind.strip().lower(), value.strip()
        if not sep or kind not in KINDS or not value:
            raise OptOutError(f"{where}: {entry.strip()!r} is not an opt-out entry; write one of "
                              + ", ".join(f"{k}:VALUE" for k in KINDS))
        if kind == "domain":
            host, port = _split_domain(value, where)
            self.domains.setdefault(host, set()).add(port)
        elif kind == "prefix":
            if "://" not in value:
                raise OptOutError(f"{where}: prefix {value!r} needs a scheme (http:// or https://)")
            key = url_key(value)  # a bare host gains its '/': example.org.evil.test is not covered
            if key not in self.prefixes:
                self.prefixes.append(key)
        elif kind == "url":
            if "://" not in value:
                raise OptOutError(f"{where}: url {value!r} needs a scheme (http:// or https://)")
            self.urls.add(url_key(value))
        elif kind == "sha256":
            value = value.lower()
            if not _SHA256.match(value):
                raise OptOutError(f"{where}: sha256 {value!r} is not 64 hex digits")
            self.sha256.add(value)
        else:
            self.ids.add(value)

    def extend(self, other: "OptOutList") -> None:
        for host, ports in other.domains.items():
            self.domains.setdefault(host, set()).update(ports)
        self.prefixes += [p for p in other.prefixes if p not in self.prefixes]
        self.urls |= other.urls
        self.sha256 |= other.sha256
        self.ids |= other.ids
        self.sources += other.sources

    # -- matching ---------------------------------------------------------------------------------------

    def match_url(self, url: str | None) -> str | None:
        if not url or not self.has_url_entries:
            return None
        key = url_key(url)
        if key in self.urls:
            return f"url:{key}"
        if self.domains:
            hostport = key.split("/", 1)[0]
            host, port = _host_port(hostport, url)
            labels = host.split(".")
            for i in range(len(labels)):  # the host itself, then each parent domain
                ports = self.domains.get(".".join(labels[i:]))
                if ports is not None and (None in ports or port in ports):
                    name = ".".join(labels[i:])
                    return f"domain:{name}" if None in ports else f"domain:{name}:{port}"
        for prefix in self.prefixes:
            if key.startswith(prefix):
                return f"prefix:{prefix}"
        return None

    def match_body(self, body: bytes | None) -> str | None:
        """The `sha256:` entry naming this decoded HTTP body, or None."""
        if body is None or not self.sha256:
            return None
        return self.match_text_hash(hashlib.sha256(body).hexdigest())

    def match_text_hash(self, digest: str | None) -> str | None:
        return f"sha256:{digest}" if digest is not None and digest in self.sha256 else None

    def match_id(self, doc_id: str | None) -> str | None:
        return f"id:{doc_id}" if doc_id is not None and doc_id in self.ids else None


def _split_domain(value: str, where: str) -> tuple[str, int | None]:
    value = value.lower().strip().strip(".")
    if "://" in value or "/" in value:
        raise OptOutError(f"{where}: domain {value!r} is a URL; write the host only (or use prefix:)")
    host, port = value, None
    if re.fullmatch(r".+:\d+", value) and not value.startswith("["):
        host, port_text = value.rsplit(":", 1)
        port = int(port_text)
    try:
        host = canonical_host(host)
    except BadURL as err:
        raise OptOutError(f"{where}: domain {value!r}: {err}") from None
    return host, port


def _host_port(hostport: str, url: str) -> tuple[str, int]:
    if hostport.startswith("["):
        host, _, rest = hostport.partition("]")
        return host + "]", int(rest[1:]) if rest.startswith(":") else _default_port(url)
    host, _, port = hostport.partition(":")
    return host, int(port) if port.isdigit() else _default_port(url)


def _default_port(url: str) -> int:
    return 443 if urlsplit(url.strip()).scheme.lower() == "https" else 80


def parse_optout_text(text: str, source: str = "list") -> OptOutList:
    """Entries of a list in the line format (see the module docstring)."""
    result = OptOutList(sources=[source])
    for number, line in enumerate(text.splitlines(), 1):
        line = "" if line.lstrip().startswith("#") else _strip_comment(line)
        if line:
            result.add(line, f"{source}:{number}")
    return result


def _strip_comment(line: str) -> str:
    """A comment after an entry is ' #…' (whitespace first), so a URL's '#fragment' is not one."""
    return re.split(r"\s+#", line, maxsplit=1)[0].strip()


def parse_optout_yaml(text: str, source: str = "list.yaml") -> OptOutList:
    import yaml

    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as err:
        raise OptOutError(f"{source}: not valid YAML: {err}") from None
    if not isinstance(raw, dict):
        raise OptOutError(f"{source}: a YAML opt-out list is a mapping of {', '.join(_YAML_KEYS)}")
    result = OptOutList(sources=[source])
    for key, values in raw.items():
        if key not in _YAML_KEYS:
            raise OptOutError(f"{source}: {key}: unknown key; expected one of {', '.join(_YAML_KEYS)}")
        if not isinstance(values, list):
            raise OptOutError(f"{source}: {key}: expected a list")
        for i, value in enumerate(values):
            result.add(f"{_YAML_KEYS[key]}:{value}", f"{source}: {key}[{i}]")
    return result


def read_optout_file(path: str) -> OptOutList:
    """One list from a path or URI (fsspec): YAML when it ends in .yaml/.yml, else the line format."""
    import fsspec

    try:
        with fsspec.open(path, "rt", encoding="utf-8") as handle:
            text = handle.read()
    except (OSError, ValueError) as err:
        raise OptOutError(f"{path}: cannot read opt-out list: {err}") from err
    if path.lower().endswith((".yaml", ".yml")):
        return parse_optout_yaml(text, path)
    return parse_optout_text(text, path)


class OptOutLists:
    """The job's opt-out lists, read on first use and kept: the two opt-out stages share one, the runner's
    `prepare()` reads it on the driver (a missing or malformed list fails the run before anything runs),
    and it travels to the workers read. Building the stages reads nothing."""

    def __init__(self, lists: list[str] = (), entries: list[str] = ()):
        self.lists, self.entries = list(lists), list(entries)
        self._read: OptOutList | None = None

    def get(self) -> OptOutList:
        if self._read is None:
            self._read = load_optout(self.lists, self.entries)
        return self._read


def load_optout(lists: list[str] = (), entries: list[str] = ()) -> OptOutList:
    """All the given list files plus inline entries, merged."""
    result = OptOutList()
    for path in lists:
        result.extend(read_optout_file(path))
    for i, entry in enumerate(entries):
        result.add(entry, f"inline entry {i}")
    if entries:
        result.sources.append("inline")
    return result
