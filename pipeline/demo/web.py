"""The embedded demo web site and its WARC serialization.

This module owns gristmill's default input: a small web site that the project writes itself, so the
quickstart job runs on data we may ship (no third-party text) and every curation step has something to
do. `build_demo_site` is the site model: a deterministic list of `DemoPage` responses across four hosts,
with the mix a real crawl has (articles wrapped in boilerplate, listing pages, syndicated near-duplicates
and exact copies, spam and other low-quality pages, non-English pages, PII inside good articles,
non-HTML responses, errors and redirects, and two pages whose declared charset lies). `write_demo_warc`
turns that model into a byte-identical gzipped WARC/1.1; a later crawler can serve the same pages over
HTTP, which is why the model knows nothing about WARC.

The prose comes from a bank of hand-written sentence templates on everyday topics. Each template has
inline choices (`[a|b]`), per-article setting slots (`{town}`, `{river}`, ...) and number ranges
(`{n:LO:HI}`), so articles on one topic share a style but not their word 5-grams: dedup must find the
syndicated copies, not mistake two articles about bread for each other.

    python -m gristmill.pipeline.demo.web OUT.warc.gz [--seed N]
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import email.utils
import hashlib
import html
import http
import io
import json
import os
import random
import re
import struct
import unicodedata
import uuid
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

# What each page is for; the pipeline never reads this, tests and the report do.
ARTICLE = "article"
LISTING = "listing"
SYNDICATED = "syndicated"  # near-duplicate of an article on another host
EXACT_COPY = "exact_copy"  # same article text under another URL
LOW_QUALITY = "low_quality"
NON_ENGLISH = "non_english"
CHARSET_MISMATCH = "charset_mismatch"  # declared charset differs from the body's encoding
NON_HTML = "non_html"
ERROR = "error"  # 4xx and 3xx responses
PAGE_KINDS = (ARTICLE, LISTING, SYNDICATED, EXACT_COPY, LOW_QUALITY, NON_ENGLISH, CHARSET_MISMATCH,
              NON_HTML, ERROR)

# PII planted in otherwise good articles, all from reserved documentation ranges (RFC 2606 domains,
# 555-01xx numbers, RFC 5737 addresses), so redaction tests have known spans and nothing is real.
DEMO_PII = ("jane.doe@example.com", "+1 555 0100", "192.0.2.10", "+1 202 555 0147",
            "orders@example.org", "john.smith@example.net")

# Every WARC-Date is this instant plus the page's index in seconds: a fixed clock makes the file
# byte-identical across runs.
CRAWL_START = dt.datetime(2024, 6, 1, 9, 0, 0, tzinfo=dt.timezone.utc)
# Record ids are uuid5 under this namespace, from (seed, index, record type, URL).
_RECORD_ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "http://demo.test/gristmill-demo-web")
_USER_AGENT = "gristmill-demo-crawler/0.1 (+http://demo.test/)"


@dataclass
class DemoPage:
    """One HTTP response of the demo site: what a server at `host` answers for GET `path`."""

    host: str
    path: str
    status: int
    content_type: str
    body: bytes
    headers: list[tuple[str, str]] = field(default_factory=list)  # extra HTTP headers (Location, ...)
    kind: str = ARTICLE

    @property
    def url(self) -> str:
        return f"http://{self.host}{self.path}"


# --------------------------------------------------------------------------------------------------
# The text bank (text_bank.json beside this module, data not code). Templates are one or two
# sentences; `[a|b]` picks one alternative, `{slot}` comes from the article's setting, `{n:LO:HI}` is
# a fresh integer. Alternatives never nest.

_BANK = json.loads((Path(__file__).with_name("text_bank.json")).read_text(encoding="utf-8"))
_TOWNS = _BANK["towns"]
_RIVERS = _BANK["rivers"]
_HILLS = _BANK["hills"]
_FIRST_NAMES = _BANK["first_names"]
_SURNAMES = _BANK["surnames"]
_STREETS = _BANK["streets"]
_GRAINS = _BANK["grains"]
_BREADS = _BANK["breads"]
_FLOWERS = _BANK["flowers"]
_VEGETABLES = _BANK["vegetables"]
_BIRDS = _BANK["birds"]
_MONTHS = _BANK["months"]
_WEEKDAYS = _BANK["weekdays"]
_TOPICS = _BANK["topics"]
_GENERAL_SENTENCES = _BANK["general_sentences"]
_PII_SENTENCES = _BANK["pii_sentences"]
_FOREIGN_PAGES = _BANK["foreign_pages"]
_FOREIGN_CHROME = _BANK["foreign_chrome"]
_CAFE_PARAGRAPH = _BANK["cafe_paragraph"]
_WALKS_PARAGRAPH = _BANK["walks_paragraph"]
_SYNDICATION_EDITS = _BANK["syndication_edits"]


# --------------------------------------------------------------------------------------------------
# The four sites: each has its own chrome, so boilerplate differs between copies of one story.

@dataclass(frozen=True)
class _Site:
    host: str
    name: str
    topics: tuple[str, ...]
    nav: tuple[tuple[str, str], ...]
    cookie_text: str
    footer_lines: tuple[str, ...]
    tagline: str


_NEWS = _Site(
    host="news.demo.test", name="The Valley Courier",
    topics=("history", "weather", "rivers", "cycling", "science"),
    nav=(("Home", "/"), ("Local", "/local/"), ("Weather", "/weather/"), ("Sport", "/sport/"),
         ("Science", "/science/"), ("Letters", "/letters/"), ("Subscribe", "/subscribe/")),
    cookie_text="We use cookies to personalise content and to analyse our traffic. By continuing to "
                "browse The Valley Courier you agree to our use of cookies.",
    footer_lines=("Copyright 2024 The Valley Courier Ltd. All rights reserved.",
                  "Registered in England, company number 00000000. Registered office: 1 Printing House "
                  "Yard.", "Advertise with us | Contact the newsroom | Complaints | Privacy policy"),
    tagline="News from the valley since 1887",
)
_BLOG = _Site(
    host="blog.demo.test", name="Crumbs and Cogs",
    topics=("bread", "milling", "gardening", "science"),
    nav=(("Home", "/"), ("Archive", "/archive/"), ("Recipes", "/tags/recipes/"), ("About me", "/about/"),
         ("Newsletter", "/newsletter/")),
    cookie_text="This blog uses cookies for statistics. Click Accept to hide this message, or read the "
                "cookie notice to change your settings.",
    footer_lines=("Crumbs and Cogs is a personal blog. Text and photographs copyright 2024, all rights "
                  "reserved.", "Powered by a very small static site generator. Subscribe by RSS."),
    tagline="Notes on bread, mills and muddy knees",
)
_SHOP = _Site(
    host="shop.demo.test", name="Millstone Supplies",
    topics=("bread", "milling", "gardening", "cycling"),
    nav=(("Shop", "/"), ("Grain mills", "/c/grain-mills/"), ("Baking", "/c/baking/"),
         ("Garden", "/c/garden/"), ("Guides", "/guides/"), ("Basket (0)", "/basket/")),
    cookie_text="Millstone Supplies uses essential cookies to run the basket and optional cookies for "
                "marketing. Manage your cookie preferences at any time.",
    footer_lines=("Free delivery on orders over 40 pounds. Returns accepted within 30 days.",
                  "Copyright 2024 Millstone Supplies. All rights reserved. VAT number GB000000000.",
                  "Terms and conditions | Delivery | Returns | Privacy"),
    tagline="Everything for the home miller and baker",
)
_FORUM = _Site(
    host="forum.demo.test", name="Valley Forum",
    topics=("weather", "cycling", "gardening", "rivers", "history", "bread"),
    nav=(("Forums", "/"), ("Latest", "/latest/"), ("Members", "/members/"), ("Search", "/search/"),
         ("Log in", "/login/"), ("Register", "/register/")),
    cookie_text="Valley Forum stores a session cookie so that you stay logged in. No tracking cookies "
                "are used.",
    footer_lines=("Valley Forum is run by volunteers. Posts are the opinions of their authors.",
                  "Copyright 2024 Valley Forum. All rights reserved. Forum rules | Moderators | Contact"),
    tagline="Talk about life in the valley",
)
_SITES = (_NEWS, _BLOG, _SHOP, _FORUM)

_ARTICLES_PER_SITE = {_NEWS.host: 18, _BLOG.host: 16, _SHOP.host: 6, _FORUM.host: 10}


# --------------------------------------------------------------------------------------------------
# Prose generation.

_CHOICE = re.compile(r"\[([^\[\]]*)\]")
_NUMBER = re.compile(r"\{n:(\d+):(\d+)\}")


def _spin(template: str, rng: random.Random, setting: dict[str, str]) -> str:
    """Fill one template: pick each `[a|b]` alternative, draw each `{n:LO:HI}`, then fill slots."""
    text = _CHOICE.sub(lambda m: rng.choice(m.group(1).split("|")), template)
    text = _NUMBER.sub(lambda m: str(rng.randint(int(m.group(1)), int(m.group(2)))), text)
    text = text.format_map(setting)
    return text[0].upper() + text[1:]


def _new_setting(rng: random.Random) -> dict[str, str]:
    """The people and places one article talks about, kept fixed within it so the story hangs together."""
    town, town2 = rng.sample(_TOWNS, 2)
    river = rng.choice(_RIVERS)
    first, first2 = rng.sample(_FIRST_NAMES, 2)
    surname, surname2 = rng.sample(_SURNAMES, 2)
    return {
        "town": town, "town2": town2, "river": river, "hill": rng.choice(_HILLS),
        "first": first, "person": f"{first} {surname}", "person2": f"{first2} {surname2}",
        "street": rng.choice(_STREETS), "grain": rng.choice(_GRAINS), "bread": rng.choice(_BREADS),
        "flower": rng.choice(_FLOWERS), "vegetables": rng.choice(_VEGETABLES), "bird": rng.choice(_BIRDS),
        "month": rng.choice(_MONTHS), "weekday": rng.choice(_WEEKDAYS),
        "year": str(rng.randint(1620, 1890)), "year2": str(rng.randint(1905, 2019)),
        "society": rng.choice([f"{town} Civic Society", f"Friends of the {river}",
                               f"{town} Heritage Group"]),
    }


@dataclass
class _Article:
    title: str
    author: str
    date: str  # display date, e.g. "12 March 2024"
    paragraphs: list[str]


def _compose_article(rng: random.Random, topic: str, pii_sentence: str | None = None) -> _Article:
    """One article of 250-900 words: a few sentences on its topic, then two neighbour topics, then glue.

    Capping the sentences taken from the main topic is what keeps two articles on one topic from
    sharing most of their 5-grams (and being clustered as near duplicates).
    """
    setting = _new_setting(rng)
    target_words = rng.randint(250, 900)
    secondary, tertiary = rng.sample([t for t in _TOPICS if t != topic], 2)
    # Sampling without replacement inside an article keeps it free of repeated sentences, which the
    # repetition rules would rightly punish.
    pool = (rng.sample(_TOPICS[topic]["sentences"], rng.randint(5, 9))
            + rng.sample(_TOPICS[secondary]["sentences"], rng.randint(3, 7))
            + rng.sample(_TOPICS[tertiary]["sentences"], len(_TOPICS[tertiary]["sentences"]))
            + rng.sample(_GENERAL_SENTENCES, len(_GENERAL_SENTENCES)))
    max_words = 900 - (len(pii_sentence.split()) if pii_sentence else 0)
    sentences: list[str] = []
    words = 0
    for template in pool:
        sentence = _spin(template, rng, setting)
        if words + len(sentence.split()) > max_words:
            break
        sentences.append(sentence)
        words += len(sentence.split())
        if words >= target_words:
            break
    if pii_sentence:
        sentences.insert(rng.randint(1, len(sentences)), pii_sentence)

    paragraphs = []
    while sentences:
        take = rng.randint(2, 4)
        paragraphs.append(" ".join(sentences[:take]))
        sentences = sentences[take:]
    title = _spin(rng.choice(_TOPICS[topic]["titles"]), rng, setting)
    author = f"{rng.choice(_FIRST_NAMES)} {rng.choice(_SURNAMES)}"
    date = f"{rng.randint(1, 28)} {rng.choice(_MONTHS[:5])} 2024"
    return _Article(title, author, date, paragraphs)


def _slug(title: str) -> str:
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^a-z0-9]+", "-", ascii_title.lower()).strip("-")


# --------------------------------------------------------------------------------------------------
# HTML rendering.

def _esc(text: str) -> str:
    return html.escape(text, quote=False)


def _paragraphs_html(paragraphs: list[str]) -> str:
    return "\n".join(f"<p>{_esc(p)}</p>" for p in paragraphs)


def _document(site: _Site, title: str, main_html: str, *, lang: str = "en", meta_charset: bool = True,
              related: list[tuple[str, str]] | None = None, home_label: str = "Home",
              footer_extra: str = "") -> str:
    """A full HTML5 page in the site's chrome: cookie banner, header and nav, main, sidebar, footer."""
    nav = "".join(f'<li><a href="{href}">{_esc(home_label if href == "/" and label == "Home" else label)}'
                  f"</a></li>" for label, href in site.nav)
    sidebar = ""
    if related:
        links = "".join(f'<li><a href="{href}">{_esc(text)}</a></li>' for text, href in related)
        sidebar = (f'<aside class="sidebar"><h2>Related</h2><ul class="related">{links}</ul>'
                   f'<div class="newsletter"><h3>Newsletter</h3><p>Get the best of {_esc(site.name)} in '
                   f"your inbox every week.</p><form><input type=\"email\" placeholder=\"Your email\">"
                   f"<button>Sign up</button></form></div></aside>")
    footer = "".join(f"<p>{_esc(line)}</p>" for line in site.footer_lines)
    charset = '<meta charset="utf-8">\n' if meta_charset else ""
    return f"""<!DOCTYPE html>
<html lang="{lang}">
<head>
{charset}<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_esc(title)} | {_esc(site.name)}</title>
<link rel="stylesheet" href="/static/site.css">
</head>
<body>
<div class="cookie-banner" id="cookie-consent"><p>{_esc(site.cookie_text)}</p>
<button>Accept all</button> <button>Settings</button></div>
<header class="site-header"><a class="logo" href="/">{_esc(site.name)}</a>
<span class="tagline">{_esc(site.tagline)}</span>
<nav class="menu"><ul>{nav}</ul></nav></header>
<div class="layout">
<main id="content">
{main_html}
</main>
{sidebar}
</div>
<footer class="site-footer">{footer}{footer_extra}</footer>
</body>
</html>
"""


def _article_main(article: _Article, site: _Site) -> str:
    if site is _FORUM:
        return _forum_thread_main(article)
    body = _paragraphs_html(article.paragraphs)
    extra = ""
    if site is _SHOP:
        extra = ('<div class="product-box"><p class="price">From 24.99 pounds</p><button>Add to basket'
                 "</button><p>In stock, dispatched within two working days.</p></div>")
    return (f'<article class="story"><h1>{_esc(article.title)}</h1>'
            f'<p class="byline">By {_esc(article.author)}, {_esc(article.date)}</p>\n{body}\n'
            f'<div class="share">Share this: <a href="#">Email</a> <a href="#">Print</a></div></article>'
            f"{extra}")


def _forum_thread_main(article: _Article) -> str:
    # A thread is the same prose split into posts by different members.
    posts = []
    handles = ["millrace_mick", "sourdough_sue", "wend_walker", "gearcrank", "allotment_al",
               "cloudwatcher", "old_ledger"]
    for i, paragraph in enumerate(article.paragraphs):
        who = article.author.replace(" ", "_").lower() if i == 0 else handles[i % len(handles)]
        posts.append(f'<div class="post" id="post-{i + 1}"><div class="post-meta"><span class="user">'
                     f'{who}</span> <span class="when">{_esc(article.date)}</span></div>'
                     f'<div class="post-body"><p>{_esc(paragraph)}</p></div>'
                     f'<div class="post-actions"><a href="#">Reply</a> <a href="#">Quote</a></div></div>')
    return f'<h1 class="thread-title">{_esc(article.title)}</h1>\n' + "\n".join(posts)


def _html_page(site: _Site, path: str, title: str, main_html: str, kind: str, **document_kwargs) -> DemoPage:
    body = _document(site, title, main_html, **document_kwargs).encode("utf-8")
    return DemoPage(site.host, path, 200, "text/html; charset=utf-8", body, [], kind)


def _article_path(site: _Site, article: _Article, taken: set[str]) -> str:
    slug = _slug(article.title)
    pattern = {_NEWS.host: "/2024/{slug}.html", _BLOG.host: "/posts/{slug}/", _SHOP.host: "/guides/{slug}",
               _FORUM.host: "/t/{slug}"}[site.host]
    path = pattern.format(slug=slug)
    suffix = 2
    while path in taken:  # two articles may draw the same title
        path = pattern.format(slug=f"{slug}-{suffix}")
        suffix += 1
    taken.add(path)
    return path


def _syndicate(paragraphs: list[str], rng: random.Random, source_name: str) -> list[str]:
    """A republished copy: a handful of word swaps and a credit line, as syndication desks do."""
    text = "\n\n".join(paragraphs)
    edits = 0
    for word in rng.sample(sorted(_SYNDICATION_EDITS), len(_SYNDICATION_EDITS)):
        text, n = re.subn(rf"\b{word}\b", _SYNDICATION_EDITS[word], text, count=1)
        edits += n
        if edits >= 4:
            break
    return text.split("\n\n") + [f"This story first appeared on {source_name} and is republished with "
                                 f"permission."]


# --------------------------------------------------------------------------------------------------
# Non-article pages.

def _robots(site: _Site) -> DemoPage:
    body = (f"User-agent: *\nDisallow: /basket/\nDisallow: /login/\nDisallow: /search/\n\n"
            f"Sitemap: http://{site.host}/sitemap.xml\n").encode("ascii")
    return DemoPage(site.host, "/robots.txt", 200, "text/plain; charset=utf-8", body, [], NON_HTML)


def _listing(site: _Site, path: str, heading: str, entries: list[tuple[_Article, str]]) -> DemoPage:
    """An index page: titles, dates and truncated teasers, the link-heavy text a crawl is full of."""
    items = []
    for article, href in entries:
        teaser = " ".join(article.paragraphs[0].split()[:9]) + "..."
        items.append(f'<li class="teaser"><a href="{href}">{_esc(article.title)}</a> '
                     f'<span class="date">{_esc(article.date)}</span><p>{_esc(teaser)}</p></li>')
    main = f'<h1>{_esc(heading)}</h1>\n<ul class="teasers">{"".join(items)}</ul>\n' \
           f'<nav class="pager"><a href="{path}?page=2">Older posts</a></nav>'
    return _html_page(site, path, heading, main, LISTING)


def _tiny_png() -> bytes:
    """A valid 2x2 grey PNG whose zlib stream is one stored (uncompressed) block, so its bytes do not
    depend on the zlib build."""
    raw = b"\x00\x80\x80" * 2  # two scanlines, each a filter byte and two grey pixels
    stored = b"\x01" + struct.pack("<HH", len(raw), len(raw) ^ 0xFFFF) + raw
    idat = b"\x78\x01" + stored + struct.pack(">I", zlib.adler32(raw))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", 2, 2, 8, 0, 0, 0, 0)  # 2x2, 8-bit greyscale
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


_CSS = """/* The Valley Courier */
body { font-family: Georgia, serif; margin: 0; color: #222; }
.site-header { background: #1d3557; color: #fff; padding: 1rem; }
.menu ul { list-style: none; display: flex; gap: 1rem; }
.layout { display: grid; grid-template-columns: 3fr 1fr; gap: 2rem; max-width: 72rem; margin: auto; }
.cookie-banner { position: fixed; bottom: 0; width: 100%; background: #f1faee; }
.site-footer { font-size: 0.8rem; color: #555; border-top: 1px solid #ccc; }
"""


def _low_quality_pages(rng: random.Random) -> list[DemoPage]:
    """Pages a quality filter exists to drop, each failing a different rule."""
    pages = []
    keywords = ["cheap flour mill", "best grain mill", "buy flour mill online", "flour mill sale",
                "grain mill discount", "electric flour mill", "flour mill uk", "mill for flour cheap"]
    spam = " ".join(rng.choice(keywords) for _ in range(110))
    pages.append(_html_page(_SHOP, "/deals/cheap-flour-mill-best-price", "Cheap flour mill best price",
                            f"<h1>Cheap flour mill best price</h1><p>{_esc(spam)}</p>", LOW_QUALITY))

    products = ["stone burr", "hopper lid", "crank handle", "sieve frame", "flour bin", "dough scraper",
                "proving basket", "bench knife", "oven thermometer", "grain scoop"]
    items = "".join(f"<li>{rng.choice(products)} {n}</li>" for n in range(1, 51))
    pages.append(_html_page(_SHOP, "/catalogue/all-items", "All items",
                            f"<h1>All items</h1><ul class=\"catalogue\">{items}</ul>", LOW_QUALITY))

    tags = ["#bread", "#baking", "#sourdough", "#realbread", "#flour", "#crumbshot", "#homebaker",
            "#breadporn", "#levain", "#bakery", "#instabread", "#foodie"]
    lines = "".join(f"<p>{' '.join(rng.choice(tags) for _ in range(8))}</p>" for _ in range(12))
    pages.append(_html_page(_BLOG, "/posts/todays-bake-tags/", "Today's bake",
                            f"<article><h1>#todaysbake</h1>{lines}</article>", LOW_QUALITY))

    rows = "".join(f"<p>SKU-{rng.randint(1000, 9999)} | {rng.randint(1, 99)}.{rng.randint(10, 99)} | "
                   f"{rng.randint(1, 9)}/{rng.randint(2, 12)} | +/-{rng.randint(1, 9)}% | "
                   f"{rng.randint(100, 999)}-{rng.randint(1000, 9999)} | ***</p>" for _ in range(40))
    pages.append(_html_page(_SHOP, "/prices.html", "Price list", f"<h1>Price list</h1>{rows}", LOW_QUALITY))

    pages.append(_html_page(_FORUM, "/t/new-section-coming-soon", "Coming soon",
                            "<h1>Coming soon</h1><p>This section will open soon.</p>", LOW_QUALITY))
    return pages


def _charset_mismatch_pages(rng: random.Random) -> list[DemoPage]:
    """Two pages whose HTTP charset lies; neither has a <meta charset> to fall back on."""
    pages = []
    for site, path, title, paragraph, declared, actual, topic in (
        (_NEWS, "/2024/a-cafe-on-bridge-street.html", "A café on Bridge Street", _CAFE_PARAGRAPH,
         "utf-8", "cp1252", "history"),
        (_BLOG, "/posts/autumn-walks-programme/", "The autumn walks programme", _WALKS_PARAGRAPH,
         "iso-8859-1", "utf-8", "rivers"),
    ):
        article = _compose_article(rng, topic)
        article.paragraphs.insert(0, paragraph)
        article.title = title
        text = _document(site, title, _article_main(article, site), meta_charset=False)
        pages.append(DemoPage(site.host, path, 200, f"text/html; charset={declared}", text.encode(actual),
                              [], CHARSET_MISMATCH))
    return pages


def _non_english_pages() -> list[DemoPage]:
    pages = []
    for lang, (title, paragraphs) in _FOREIGN_PAGES.items():
        home_label, footer_line = _FOREIGN_CHROME[lang]
        main = f"<article><h1>{_esc(title)}</h1>\n{_paragraphs_html(paragraphs)}</article>"
        pages.append(_html_page(_BLOG, f"/{lang}/{_slug(title)}/", title, main, NON_ENGLISH, lang=lang,
                                home_label=home_label, footer_extra=f"<p>{_esc(footer_line)}</p>"))
    return pages


def _error_pages(redirect_target: str) -> list[DemoPage]:
    pages = []
    for site, path in ((_NEWS, "/2023/11/council-meeting-postponed.html"), (_SHOP, "/guides/old-grinder")):
        main = ("<h1>Page not found</h1><p>Sorry, we could not find that page. Try the search box or go "
                'back to the <a href="/">home page</a>.</p>')
        body = _document(site, "Page not found", main).encode("utf-8")
        pages.append(DemoPage(site.host, path, 404, "text/html; charset=utf-8", body, [], ERROR))
    for site, path, target in ((_BLOG, "/2019/05/old-permalink/", redirect_target),
                               (_NEWS, "/archive/", f"http://{_NEWS.host}/")):
        body = (f'<html><head><title>301 Moved Permanently</title></head><body><h1>Moved Permanently</h1>'
                f'<p>The document has moved <a href="{target}">here</a>.</p></body></html>\n').encode("ascii")
        pages.append(DemoPage(site.host, path, 301, "text/html; charset=iso-8859-1", body,
                              [("Location", target)], ERROR))
    return pages


# --------------------------------------------------------------------------------------------------
# The site model.

def build_demo_site(seed: int = 0) -> list[DemoPage]:
    """Every response of the demo crawl, in crawl order; the same seed always gives the same pages."""
    rng = random.Random(seed)
    pages: list[DemoPage] = [_robots(site) for site in _SITES]

    # Articles, with PII planted in three of them (one per sentence in _PII_SENTENCES).
    articles: dict[str, list[tuple[_Article, str]]] = {}
    article_pages: dict[str, DemoPage] = {}
    taken: set[str] = set()
    pii_slots = {(_BLOG.host, 2): _PII_SENTENCES[0], (_NEWS.host, 5): _PII_SENTENCES[1],
                 (_FORUM.host, 3): _PII_SENTENCES[2]}
    for site in _SITES:
        articles[site.host] = []
        for i in range(_ARTICLES_PER_SITE[site.host]):
            article = _compose_article(rng, rng.choice(site.topics), pii_slots.get((site.host, i)))
            path = _article_path(site, article, taken)
            articles[site.host].append((article, path))
    for site in _SITES:
        own = articles[site.host]
        for i, (article, path) in enumerate(own):
            related = [(a.title, p) for a, p in own[i + 1:i + 5] or own[:4] if p != path]
            page = _html_page(site, path, article.title, _article_main(article, site), ARTICLE,
                              related=related)
            article_pages[page.url] = page
            pages.append(page)

    # Listing pages: one home page per host, plus tag and category pages with a few links each.
    for site in _SITES:
        pages.append(_listing(site, "/", f"Latest from {site.name}", articles[site.host][:8]))
    for tag, start in (("recipes", 0), ("sourdough", 3), ("mills", 6), ("allotment", 9), ("weekend", 12)):
        pages.append(_listing(_BLOG, f"/tags/{tag}/", f"Posts tagged {tag}",
                              articles[_BLOG.host][start:start + 3]))
    for section, start in (("local", 0), ("weather", 5), ("science", 10)):
        pages.append(_listing(_NEWS, f"/{section}/", section.capitalize(),
                              articles[_NEWS.host][start:start + 4]))

    # Syndication: four blog stories republished by the news site with small edits (near duplicates),
    # two republished verbatim (exact text duplicates in other chrome), and one print view that is a
    # byte-for-byte copy under another URL.
    for article, path in articles[_BLOG.host][:4]:
        copy = _Article(article.title, article.author, article.date,
                        _syndicate(article.paragraphs, rng, _BLOG.name))
        pages.append(_html_page(_NEWS, f"/syndicated/{_slug(article.title)}.html", copy.title,
                                _article_main(copy, _NEWS), SYNDICATED))
    for article, path in articles[_NEWS.host][:2]:
        pages.append(_html_page(_BLOG, f"/reprints/{_slug(article.title)}/", article.title,
                                _article_main(article, _BLOG), EXACT_COPY))
    original = article_pages[f"http://{_SHOP.host}{articles[_SHOP.host][0][1]}"]
    pages.append(DemoPage(_SHOP.host, f"/print{original.path}", 200, original.content_type,
                          original.body, [], EXACT_COPY))

    pages.extend(_low_quality_pages(rng))
    pages.extend(_non_english_pages())
    pages.extend(_charset_mismatch_pages(rng))

    # Non-HTML responses a crawler fetches alongside pages.
    pages.append(DemoPage(_NEWS.host, "/static/site.css", 200, "text/css", _CSS.encode("utf-8"), [],
                          NON_HTML))
    pages.append(DemoPage(_SHOP.host, "/static/logo.png", 200, "image/png", _tiny_png(), [],
                          NON_HTML))
    catalogue = [{"sku": f"MS-{100 + i}", "name": name, "price_pence": rng.randint(500, 25000),
                  "in_stock": rng.random() < 0.8}
                 for i, name in enumerate(["Hand grain mill", "Proving basket", "Bench scraper",
                                           "Rye flour 1.5 kg", "Oven stone"])]
    pages.append(DemoPage(_SHOP.host, "/api/products.json", 200, "application/json",
                          json.dumps({"products": catalogue}, indent=2, sort_keys=True).encode("utf-8"),
                          [], NON_HTML))

    pages.extend(_error_pages(redirect_target=f"http://{_BLOG.host}{articles[_BLOG.host][0][1]}"))
    return pages


# --------------------------------------------------------------------------------------------------
# WARC serialization.

def _record_id(seed: int, index: int, rec_type: str, url: str) -> str:
    return f"<urn:uuid:{uuid.uuid5(_RECORD_ID_NAMESPACE, f'{seed}/{index}/{rec_type}/{url}')}>"


def _warc_date(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _payload_digest(body: bytes) -> str:
    """The digest warcio writes as WARC-Payload-Digest, needed to point a revisit at its original."""
    return "sha1:" + base64.b32encode(hashlib.sha1(body).digest()).decode("ascii")


def _response_headers(page: DemoPage, moment: dt.datetime) -> StatusAndHeaders:
    reason = http.HTTPStatus(page.status).phrase
    headers = [("Date", email.utils.format_datetime(moment, usegmt=True)), ("Server", "demo-web/1.0"),
               ("Content-Type", page.content_type), ("Content-Length", str(len(page.body))),
               *page.headers]
    return StatusAndHeaders(f"{page.status} {reason}", headers, protocol="HTTP/1.1")


def write_demo_warc(path: str | os.PathLike, seed: int = 0, pages: list[DemoPage] | None = None) -> dict:
    """Write the demo crawl as a gzipped WARC/1.1 and return record counts.

    Layout: one warcinfo record, then per page a request, its response and a metadata record, then
    revisit records for two pages fetched again unchanged. Bytes are identical across runs: dates come
    from CRAWL_START, record ids are uuid5 of (seed, index, type, URL), and warcio compresses each
    record as its own gzip member through zlib, whose gzip header carries mtime 0 (no clock).
    """
    pages = build_demo_site(seed) if pages is None else pages
    counts = {"records": 0, "warcinfo": 0, "request": 0, "response": 0, "metadata": 0, "revisit": 0,
              "html_responses": 0}
    buffer = io.BytesIO()
    writer = WARCWriter(buffer, gzip=True, warc_version="1.1")

    def write(record) -> None:
        writer.write_record(record)
        counts["records"] += 1
        counts[record.rec_type] += 1

    # No WARC-Filename: it would make the bytes depend on where the file is written.
    info = (f"software: gristmill demo_web\r\nformat: WARC File Format 1.1\r\n"
            f"description: gristmill embedded demo crawl, seed {seed}\r\nisPartOf: gristmill-demo-web\r\n"
            f"robots: obey\r\n").encode("utf-8")
    write(writer.create_warc_record(
        "", "warcinfo", payload=io.BytesIO(info), length=len(info),
        warc_content_type="application/warc-fields",
        warc_headers_dict={"WARC-Record-ID": _record_id(seed, -1, "warcinfo", ""),
                           "WARC-Date": _warc_date(CRAWL_START)}))

    fetched: dict[str, tuple[str, str]] = {}  # url -> (response record id, WARC-Date)
    for index, page in enumerate(pages):
        moment = CRAWL_START + dt.timedelta(seconds=index)
        date = _warc_date(moment)
        response_id = _record_id(seed, index, "response", page.url)
        request_headers = StatusAndHeaders(
            f"GET {page.path} HTTP/1.1",
            [("Host", page.host), ("User-Agent", _USER_AGENT), ("Accept", "*/*"), ("Connection", "close")],
            is_http_request=True)
        write(writer.create_warc_record(
            page.url, "request", http_headers=request_headers,
            warc_headers_dict={"WARC-Record-ID": _record_id(seed, index, "request", page.url),
                               "WARC-Date": date, "WARC-Concurrent-To": response_id}))
        write(writer.create_warc_record(
            page.url, "response", payload=io.BytesIO(page.body), length=len(page.body),
            http_headers=_response_headers(page, moment),
            warc_headers_dict={"WARC-Record-ID": response_id, "WARC-Date": date}))
        counts["html_responses"] += page.status == 200 and page.content_type.startswith("text/html")
        fetched[page.url] = (response_id, date)

        # Crawl metadata beside each response, as Common Crawl writes it.
        fields = (f"fetchTimeMs: {37 + (index * 53) % 400}\r\n"
                  f"outlinks: {page.body.count(b'<a ')}\r\n").encode("ascii")
        write(writer.create_warc_record(
            page.url, "metadata", payload=io.BytesIO(fields), length=len(fields),
            warc_content_type="application/warc-fields",
            warc_headers_dict={"WARC-Record-ID": _record_id(seed, index, "metadata", page.url),
                               "WARC-Date": date, "WARC-Concurrent-To": response_id}))

    # A second visit to two articles found them unchanged: revisit records, headers only, no payload.
    revisited = [p for p in pages if p.kind == ARTICLE][:2]
    for k, page in enumerate(revisited):
        index = len(pages) + k
        moment = CRAWL_START + dt.timedelta(days=1, seconds=k)
        original_id, original_date = fetched[page.url]
        write(writer.create_revisit_record(
            page.url, _payload_digest(page.body), page.url, original_date,
            http_headers=_response_headers(page, moment),
            warc_headers_dict={"WARC-Record-ID": _record_id(seed, index, "revisit", page.url),
                               "WARC-Date": _warc_date(moment), "WARC-Refers-To": original_id}))

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Write then rename, so a reader never sees half a file.
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(buffer.getvalue())
    partial.replace(path)
    counts["bytes"] = path.stat().st_size
    return counts


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write gristmill's embedded demo crawl as a WARC.gz.")
    parser.add_argument("out", help="output path, e.g. jobs/data/demo-web.warc.gz")
    parser.add_argument("--seed", type=int, default=0, help="site seed (the shipped file uses 0)")
    args = parser.parse_args(argv)
    print(json.dumps(write_demo_warc(args.out, seed=args.seed), indent=2))


if __name__ == "__main__":
    main()
