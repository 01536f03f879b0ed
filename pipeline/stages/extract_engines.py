"""Extraction engines: decoded HTML → main text. Imported only inside the extraction sandbox process.

`make_engine(options)` returns `extract(html, charset) -> text | None` for `extract.engine`:

- `trafilatura`: trafilatura 2 with the job's options (the default; its output is what it always was,
  except that binary bodies no longer reach it).
- `trafilatura-fast`: the same call with `fast=True` (no readability/jusText fallback pass).
- `resiliparse`: resiliparse's `extract_plain_text(main_content=True)` (lexbor DOM, C++ heuristics).
- `resiliparse-clean`: resiliparse's main content, then cheap block rules over its blocks (link
  density, calls to action and site chrome, short unpunctuated fragments): see `clean_blocks`.
- `resiliparse-cascade`: resiliparse-clean, and trafilatura for the pages where it finds fewer than
  10 words although the page holds a paragraph of 30+ words outside link lists (resiliparse's
  main-content pass finds nothing on some article pages; on listings, indexes and catalogues it rightly
  finds nothing, and those stay with it: they are a large share of a crawl and would cost trafilatura's time).

Every engine gets the same decoded HTML (the sandbox's `decode_html`; binary bodies never reach an
engine) and answers None for "no main text". The resiliparse engines also answer None, before any
work, for a nesting deeper than lxml parses (256), which trafilatura sees as an empty tree:
resiliparse's main-content pass is quadratic in depth (20,000 levels take 18 s, 100,000 over a minute). So a
hostile page gets the same drop reason whichever engine runs.
"""

from __future__ import annotations

import html as html_entities
import re
from typing import Callable

ENGINES = ("trafilatura", "trafilatura-fast", "resiliparse", "resiliparse-clean", "resiliparse-cascade")
# resiliparse-cascade: a page where resiliparse-clean finds fewer words than CASCADE_MIN_WORDS goes to
# trafilatura when its whole text, link lists and chrome dropped, holds a paragraph of
# CASCADE_PARAGRAPH_WORDS or more (an article the main-content pass missed; a listing's teasers are shorter).
CASCADE_MIN_WORDS = 10
CASCADE_PARAGRAPH_WORDS = 30
# lxml (libxml2) stops building the tree at this depth, so trafilatura never sees deeper text.
MAX_DEPTH = 256
_DEPTH_SELECTOR = " > ".join(["*"] * MAX_DEPTH)


def _non_printable_pattern() -> re.Pattern:
    """The characters trafilatura removes from its output (`utils.remove_control_characters`: neither
    printable nor space: controls, format characters such as U+200B and the soft hyphen, surrogates,
    private use, unassigned) in the Basic Multilingual Plane, plus every astral character, which
    `_keep_printable` judges one by one (they are rare). One class of BMP ranges compiles to a bitmap:
    1.8 GB/s; with the astral ranges spelled out it was 14 MB/s."""
    ranges, start, previous = [], None, None
    for code in range(0x10000):
        char = chr(code)
        if char.isprintable() or char.isspace():
            continue
        if previous is not None and code == previous + 1:
            previous = code
            continue
        if start is not None:
            ranges.append((start, previous))
        start = previous = code
    ranges.append((start, previous))
    bmp = "".join(re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}" for a, b in ranges)
    return re.compile(f"[{bmp}\U00010000-\U0010ffff]")


def _keep_printable(match: re.Match) -> str:
    char = match.group()
    return char if char.isprintable() or char.isspace() else ""


class TooDeep(Exception):
    """A page nested deeper than MAX_DEPTH: no main text (an exception, so a cascade tells it from a miss)."""


Extractor = Callable[[str, str], "str | None"]


def make_engine(options: dict) -> tuple[Extractor, tuple[type[Exception], ...]]:
    """(extract, the exceptions that mean "this page has no usable tree": scored as no main text)."""
    engine = options["engine"]
    if engine in ("trafilatura", "trafilatura-fast"):
        return _trafilatura(options, fast=engine == "trafilatura-fast")
    if engine in ("resiliparse", "resiliparse-clean"):
        return _resiliparse(options, clean=engine == "resiliparse-clean")
    if engine == "resiliparse-cascade":
        return _cascade(options)
    raise ValueError(f"unknown extraction engine {engine!r}; known: {', '.join(ENGINES)}")


def _trafilatura(options: dict, fast: bool):
    import trafilatura

    kwargs = {k: options[k] for k in ("favor_precision", "favor_recall", "include_tables", "include_comments")}
    if fast:
        kwargs["fast"] = True

    def extract(html: str, charset: str) -> str | None:
        return trafilatura.extract(html, output_format="txt", with_metadata=False, deduplicate=False, **kwargs)

    return extract, (ValueError, TypeError, AttributeError)  # lxml and trafilatura reject some broken trees


class _Resiliparse:
    """resiliparse's parse and main-content pass, with the job's table and comment options."""

    def __init__(self, options: dict):
        from resiliparse.extract.html2text import extract_plain_text
        from resiliparse.parse.html import HTMLParserException, HTMLTree

        self.parse_html, self.plain_text = HTMLTree.parse, extract_plain_text
        self.errors = (TooDeep, HTMLParserException, ValueError, TypeError)
        self.skip = None if options["include_tables"] else ["table"]
        self.comments = options["include_comments"]
        self.non_printable = _non_printable_pattern()

    def parse(self, html: str):
        """The lexbor tree, or None for an empty document; TooDeep past MAX_DEPTH."""
        tree = self.parse_html(html)
        if tree.document is None:
            return None
        if tree.document.query_selector(_DEPTH_SELECTOR) is not None:
            raise TooDeep
        return tree

    def main_text(self, tree) -> str | None:
        return self.non_printable.sub(_keep_printable, self.plain_text(tree, main_content=True, comments=self.comments,
                                                                      skip_elements=self.skip))

    def clean_text(self, tree, main_content: bool = True) -> str | None:
        marked = self.plain_text(tree, preserve_formatting="minimal_html", main_content=main_content, comments=self.comments,
                                 links=True, skip_elements=self.skip)
        return clean_blocks(self.non_printable.sub(_keep_printable, marked))


def _resiliparse(options: dict, clean: bool):
    engine = _Resiliparse(options)

    def extract(html: str, charset: str) -> str | None:
        tree = engine.parse(html)
        if tree is None:
            return None
        return engine.clean_text(tree) if clean else engine.main_text(tree)

    return extract, engine.errors


def _cascade(options: dict):
    fast = _Resiliparse(options)
    careful, careful_errors = _trafilatura(options, fast=False)

    def extract(html: str, charset: str) -> str | None:
        try:
            tree = fast.parse(html)
            if tree is None:
                return None
            text = fast.clean_text(tree)
            if text is not None and len(text.split()) >= CASCADE_MIN_WORDS:
                return text
            # Main content found (almost) nothing. A page without a paragraph outside link lists (a
            # listing of teasers, an index, a catalogue, an empty shell) has no main text; otherwise the
            # pass missed an article.
            whole = fast.clean_text(tree, main_content=False) or ""
            if not any(len(block.split()) >= CASCADE_PARAGRAPH_WORDS for block in whole.split("\n")):
                return text
        except TooDeep:
            return None
        except fast.errors:
            pass
        return careful(html, charset)

    return extract, careful_errors


# ----------------------------------------------------------------------------------- resiliparse-clean

_TAG = re.compile(r"<[^>]*>")
_LINK = re.compile(r"<a\b[^>]*>(.*?)</a>", re.S)
# Calls to action and site chrome, in the words sites use for them (the generic vocabulary of C4's and
# trafilatura's boilerplate lists, not phrases of any one site). Only blocks under 30 words are judged.
_CHROME = re.compile(
    r"(?i)\b(?:subscribe|subscriber|subscription|newsletter|sign(?:ing)? up|log ?in|all rights reserved|"
    r"advertisement|advertising|follow (?:us|the)|share (?:this|on)|filed under|posted in|read more|click here|"
    r"cookies?|privacy policy|terms of (?:use|service)|download (?:the|our)|apps? for|related (?:articles|posts|stories)|"
    r"comments?|contact us|copyright|sponsored)\b|©")
_MONTH = r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
_DATE = re.compile(rf"(?i)\b{_MONTH}\.? \d{{1,2}},? \d{{4}}\b|\b\d{{1,2}}\.? {_MONTH}\.? \d{{4}}\b|\b\d{{4}}-\d{{2}}-\d{{2}}\b|\b\d{{1,2}}[/.]\d{{1,2}}[/.]\d{{2,4}}\b")
_DATELINE_MAX_WORDS = 8
_SENTENCE_END = (".", "!", "?", ":", '"', "”", "'", "’", ")")
_CHROME_MAX_WORDS = 30
_SHORT_MAX_WORDS = 3
_MAX_LINK_SHARE = 0.5


def clean_blocks(marked: str) -> str:
    """Main text from resiliparse's `minimal_html` output (one block per line: <p>, <h1-6>, <li>, <pre>,
    bare text), dropping a block when:
    - more than half of its characters are link text (navigation, related-article lists);
    - it has under 30 words and names a call to action or site chrome (`_CHROME`);
    - it has 3 words or fewer, ends without sentence punctuation, and is not a heading, list item or
      preformatted line ("Advertisement", "Contact", "By Staff Writer", "Filed under");
    - it has 8 words or fewer, holds a date and ends without . ! ?: a byline or timestamp
      ("sourdough_sue 2 March 2024", "Updated 11/08/2023 10:15"), the metadata trafilatura leaves out.
    Kept blocks are joined by newlines, tags stripped and entities decoded."""
    kept = []
    in_pre = False
    for line in marked.split("\n"):
        opens_pre = "<pre" in line
        structured = in_pre or opens_pre or line.lstrip().startswith(("<li", "<h1", "<h2", "<h3", "<h4", "<h5", "<h6"))
        in_pre = (in_pre or opens_pre) and "</pre>" not in line
        text = html_entities.unescape(_TAG.sub("", line)).strip()
        if not text:
            continue
        linked = sum(len(_TAG.sub("", m)) for m in _LINK.findall(line))
        words = len(text.split())
        if linked > _MAX_LINK_SHARE * len(text):
            continue
        if words < _CHROME_MAX_WORDS and _CHROME.search(text):
            continue
        if words <= _SHORT_MAX_WORDS and not structured and not text.endswith(_SENTENCE_END):
            continue
        if words <= _DATELINE_MAX_WORDS and not text.endswith((".", "!", "?")) and _DATE.search(text):
            continue
        kept.append(text)
    return "\n".join(kept) or None
