"""URLs as the crawler sees them: one canonical spelling per resource, the host a URL belongs to for
politeness, and the links an HTML page points at.

Canonicalization is what makes "never fetch the same URL twice" hold: `HTTP://News.Example.COM:80/a/./b/../c?x=1#top`
and `http://news.example.com/a/c?x=1` are one frontier entry. Hosts follow the WHATWG URL standard's
parsing, so the IPv4 spellings browsers accept (`2130706433`, `0x7f.1`, `0177.0.0.1`) become the dotted
quad they mean before any safety check looks at them.
"""

from __future__ import annotations

import ipaddress
import posixpath
import re
from urllib.parse import urljoin, urlsplit, urlunsplit

SCHEMES = ("http", "https")
DEFAULT_PORTS = {"http": 80, "https": 443}

_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
# Characters left as they are in a path or query (RFC 3986 pchar / query, minus '%', handled apart).
_PATH_SAFE = _UNRESERVED | frozenset("!$&'()*+,;=:@/")
_QUERY_SAFE = _PATH_SAFE | frozenset("?")
_HOST_LABEL = re.compile(r"^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?$")
_WHITESPACE = re.compile(r"[\t\n\r]")


class BadURL(ValueError):
    """A URL the crawler cannot or will not fetch (another scheme, an unparseable host or port)."""


def parse_ipv4_whatwg(host: str) -> str | None:
    """The dotted quad a WHATWG URL parser makes of `host`, or None when it is not an IPv4 host.

    Parts may be decimal, octal (leading 0) or hex (0x); the last part fills the remaining bytes, so
    `127.1` is 127.0.0.1 and `2130706433` is too. Raises BadURL for a numeric host that overflows.
    """
    parts = host.split(".")
    if parts and parts[-1] == "":
        parts.pop()
    # WHATWG: a host is parsed as IPv4 only when its last label is a number.
    if not parts or _parse_ipv4_number(parts[-1]) is None:
        return None
    if len(parts) > 4:
        raise BadURL(f"IPv4 host {host!r} has more than four parts")
    numbers = []
    for part in parts:
        value = _parse_ipv4_number(part)
        if value is None:
            raise BadURL(f"host {host!r} mixes numbers and names")
        numbers.append(value)
    if any(n > 255 for n in numbers[:-1]) or numbers[-1] >= 256 ** (5 - len(numbers)):
        raise BadURL(f"IPv4 host {host!r} out of range")
    value = numbers[-1]
    for i, n in enumerate(numbers[:-1]):
        value += n * 256 ** (3 - i)
    return str(ipaddress.IPv4Address(value))


def _parse_ipv4_number(part: str) -> int | None:
    if part == "":
        return None
    base = 10
    if part[:2].lower() == "0x":
        part, base = part[2:], 16
    elif len(part) > 1 and part[0] == "0":
        part, base = part[1:], 8
    if part == "":
        return 0
    try:
        return int(part, base) if re.fullmatch(r"[0-9a-fA-F]+", part) else None
    except ValueError:
        return None


def canonical_host(host: str) -> str:
    """Lowercase, IDNA-encoded, trailing dot removed; IP literals in their one canonical form (IPv6 in
    brackets, compressed). Raises BadURL for anything that is not a usable host."""
    if not host:
        raise BadURL("empty host")
    if host.startswith("[") or ":" in host:
        literal = host.strip("[]")
        if "%" in literal:
            raise BadURL(f"IPv6 zone identifiers are not fetchable: {host!r}")
        try:
            return f"[{ipaddress.IPv6Address(literal).compressed}]"
        except ValueError:
            raise BadURL(f"bad IPv6 host {host!r}") from None
    host = host.rstrip(".").lower()
    ipv4 = parse_ipv4_whatwg(host)
    if ipv4 is not None:
        return ipv4
    try:
        host = host.encode("idna").decode("ascii")
    except UnicodeError:
        raise BadURL(f"host {host!r} is not a valid IDNA name") from None
    labels = host.split(".")
    if not all(_HOST_LABEL.match(label) for label in labels) or len(host) > 253:
        raise BadURL(f"bad host {host!r}")
    return host


def _normalize_percent(text: str, safe: frozenset[str]) -> str:
    """Uppercase %xx escapes, decode the ones of unreserved characters, escape everything unsafe
    (non-ASCII as UTF-8), so two spellings of one path compare equal."""
    out = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "%" and re.fullmatch(r"[0-9A-Fa-f]{2}", text[i + 1:i + 3]):
            decoded = chr(int(text[i + 1:i + 3], 16))
            out.append(decoded if decoded in _UNRESERVED else "%" + text[i + 1:i + 3].upper())
            i += 3
            continue
        if ch in safe:
            out.append(ch)
        else:
            out.extend(f"%{b:02X}" for b in ch.encode("utf-8", "surrogatepass"))
        i += 1
    return "".join(out)


def _remove_dot_segments(path: str) -> str:
    if not path:
        return "/"
    trailing = path.endswith(("/", "/.", "/.."))
    path = posixpath.normpath(path)
    path = "/" + path.lstrip("/")  # normpath keeps a leading '//'; '..' above the root stays at the root
    if trailing and not path.endswith("/"):
        path += "/"
    return path


def canonicalize(url: str, base: str | None = None) -> str:
    """The canonical form of `url` (resolved against `base` when given). Raises BadURL for URLs the
    crawler does not fetch: other schemes (mailto:, javascript:, ftp:), bad hosts or ports."""
    url = _WHITESPACE.sub("", url.strip())
    if base is not None:
        url = urljoin(base, url)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as err:
        raise BadURL(f"unparseable URL {url[:200]!r}: {err}") from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise BadURL(f"scheme {scheme or '(none)'!r} is not fetched")
    # hostname drops user:password@ (credentials are never sent) and lowercases.
    raw_host = parts.netloc.rpartition("@")[2]
    raw_host = raw_host[: raw_host.rindex("]") + 1] if raw_host.startswith("[") else raw_host.split(":")[0]
    host = canonical_host(raw_host)
    netloc = host if port in (None, DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    path = _normalize_percent(_remove_dot_segments(parts.path), _PATH_SAFE)
    query = _normalize_percent(parts.query, _QUERY_SAFE)
    return urlunsplit((scheme, netloc, path, query, ""))


def host_key(url: str) -> str:
    """The politeness unit of a canonical URL: scheme, host and port (`http://127.0.0.1:8001`), which
    is also the scope of one robots.txt (RFC 9309)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def host_and_port(url: str) -> tuple[str, int]:
    """Host as a connectable name (IPv6 without brackets) and the port, defaults filled in."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    return host, parts.port or DEFAULT_PORTS[parts.scheme]


def request_target(url: str) -> str:
    parts = urlsplit(url)
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def extract_links(body: bytes, base_url: str) -> list[str]:
    """Canonical absolute URLs of the `<a href>` / `<area href>` links of an HTML page, in page order,
    each once; honours `<base href>` and `<meta name="robots" content="nofollow">`."""
    from lxml import etree
    from lxml import html as lxml_html

    try:
        tree = lxml_html.document_fromstring(body)
    except (etree.ParserError, ValueError):
        return []
    for content in tree.xpath('//meta[translate(@name, "ROBTS", "robts")="robots"]/@content'):
        if "nofollow" in content.lower() or "none" in content.lower().split(","):
            return []
    base = base_url
    for href in tree.xpath("//base/@href")[:1]:
        try:
            base = canonicalize(href, base_url)
        except BadURL:
            pass
    links, seen = [], set()
    for href in tree.xpath("//a/@href | //area/@href"):
        try:
            link = canonicalize(str(href), base)
        except BadURL:
            continue
        if link not in seen:
            seen.add(link)
            links.append(link)
    return links
