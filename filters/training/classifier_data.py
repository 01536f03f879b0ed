"""Readers for classifier training and evaluation text: each yields documents (plain text) from one
source file in its own format. Used by `gristmill train-classifier` (filters/training/classifier_train.py).

Kinds: `jsonl` (a text field per line), `lines` (one document per line), `file` (the whole file is one
document), `mediawiki_xml` (a MediaWiki XML dump, .bz2 or plain: main-namespace articles, redirects
skipped, wikitext stripped to prose), `wikitext_tokens` (WikiText-2/103 token files: articles split at
` = Title = ` lines and detokenized), `article_json` (scrapinghub article-extraction-benchmark output:
`{"output": {id: {"articleBody": text}}}`), `warc` (HTML responses extracted with trafilatura).
"""

from __future__ import annotations

import bz2
import json
import re
from pathlib import Path
from typing import Iterator

KINDS = ("jsonl", "lines", "file", "mediawiki_xml", "wikitext_tokens", "article_json", "warc")


def read_documents(kind: str, path: str | Path, text_key: str = "text") -> Iterator[str]:
    path = Path(path)
    if kind == "jsonl":
        with path.open(encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    yield json.loads(line)[text_key]
    elif kind == "lines":
        with path.open(encoding="utf-8") as f:
            yield from (line.strip() for line in f if line.strip())
    elif kind == "file":
        yield path.read_text(encoding="utf-8")
    elif kind == "mediawiki_xml":
        yield from _mediawiki_articles(path)
    elif kind == "wikitext_tokens":
        yield from _wikitext_articles(path.read_text(encoding="utf-8"))
    elif kind == "article_json":
        data = json.loads(path.read_text(encoding="utf-8"))
        for key in sorted(data["output"]):
            yield data["output"][key]["articleBody"]
    elif kind == "warc":
        yield from _warc_texts(path)
    else:
        raise ValueError(f"unknown document kind {kind!r}; one of {KINDS}")


# --- MediaWiki XML ----------------------------------------------------------------------------------

_PAGE = re.compile(r"<page>(.*?)</page>", re.S)
_NS = re.compile(r"<ns>(\d+)</ns>")
_TEXT = re.compile(r"<text[^>]*>(.*?)</text>", re.S)
_COMMENT = re.compile(r"<!--.*?-->", re.S)
_REF = re.compile(r"<ref[^>/]*/>|<ref[^>]*>.*?</ref>", re.S | re.I)
_TAG = re.compile(r"<[^>]+>")
_TEMPLATE = re.compile(r"\{\{[^{}]*\}\}")
_TABLE = re.compile(r"\{\|.*?\|\}", re.S)
_FILE_LINK = re.compile(r"\[\[(?:File|Image|Category):[^\[\]]*(?:\[\[[^\[\]]*\]\][^\[\]]*)*\]\]", re.I)
_LINK = re.compile(r"\[\[(?:[^\[\]|]*\|)?([^\[\]]*)\]\]")
_EXTERNAL = re.compile(r"\[https?://\S+\s*([^\]]*)\]")
_HEADING = re.compile(r"^=+\s*(.*?)\s*=+\s*$", re.M)
_EMPHASIS = re.compile(r"'{2,}")
_LIST = re.compile(r"^[*#:;]+\s*", re.M)
_SECTIONS_AFTER = re.compile(r"^==\s*(See also|References|External links|Further reading|Notes)\s*==.*", re.S | re.M)


def strip_wikitext(markup: str) -> str:
    """Wikitext → prose: comments, refs, templates, tables, files and categories out; links to their text."""
    import html

    text = html.unescape(markup)
    text = _SECTIONS_AFTER.sub("", text)
    text = _COMMENT.sub("", text)
    text = _REF.sub("", text)
    for _ in range(10):  # nested templates, innermost first
        text, n = _TEMPLATE.subn("", text)
        if not n:
            break
    text = _TABLE.sub("", text)
    text = _FILE_LINK.sub("", text)
    text = _LINK.sub(r"\1", text)
    text = _EXTERNAL.sub(r"\1", text)
    text = _TAG.sub("", text)
    text = _HEADING.sub(r"\1", text)
    text = _EMPHASIS.sub("", text)
    text = _LIST.sub("", text)
    lines = [line.strip() for line in text.splitlines()]
    text = "\n".join(line for line in lines if line and not line.startswith(("{", "|", "}", "!")))
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def _mediawiki_articles(path: Path) -> Iterator[str]:
    raw = bz2.open(path, "rt", encoding="utf-8").read() if path.suffix == ".bz2" else path.read_text(encoding="utf-8")
    for page in _PAGE.findall(raw):
        ns, body = _NS.search(page), _TEXT.search(page)
        if not ns or ns.group(1) != "0" or not body or "<redirect" in page:
            continue
        text = strip_wikitext(body.group(1))
        if text:
            yield text


# --- WikiText tokens --------------------------------------------------------------------------------

_TITLE = re.compile(r"^ = [^=].* = $")
_DETOKENIZE = [
    (re.compile(r" @(.)@ "), r"\1"),  # " @-@ ", " @,@ ", " @.@ "
    (re.compile(r" <unk> ?"), " "),
    (re.compile(r" ([.,;:!?)\]}%])"), r"\1"),
    (re.compile(r"([(\[{$]) "), r"\1"),
    (re.compile(r" (n't|'s|'re|'ve|'m|'ll|'d)\b"), r"\1"),
    (re.compile(r"\" (.*?) \""), r'"\1"'),
    (re.compile(r" {2,}"), " "),
]


def detokenize(line: str) -> str:
    for pattern, repl in _DETOKENIZE:
        line = pattern.sub(repl, line)
    return line.strip()


def _wikitext_articles(raw: str) -> Iterator[str]:
    article: list[str] = []
    for line in raw.splitlines():
        if _TITLE.match(line):
            if article:
                yield "\n".join(article)
            article = [detokenize(line.strip(" ="))]
        elif line.strip():
            heading = re.match(r"^ (=+) (.*) \1 $", line)
            article.append(heading.group(2) if heading else detokenize(line))
    if article:
        yield "\n".join(article)


# --- WARC -------------------------------------------------------------------------------------------

def _warc_texts(path: Path) -> Iterator[str]:
    import trafilatura
    from warcio.archiveiterator import ArchiveIterator

    with path.open("rb") as f:
        for record in ArchiveIterator(f, arc2warc=True):
            if record.rec_type != "response" or record.http_headers is None:
                continue
            if record.http_headers.get_statuscode() != "200":
                continue
            if "html" not in (record.http_headers.get_header("Content-Type") or "").lower():
                continue
            body = record.content_stream().read()
            try:
                text = trafilatura.extract(body, include_comments=False, include_tables=True)
            except Exception:  # a page trafilatura cannot parse is not a document here
                continue
            if text:
                yield text
