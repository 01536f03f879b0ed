"""A deterministic WARC benchmark corpus: N HTML pages in several .warc.gz files, read by gristmill and
datatrove alike (bench/e2e.py).

    .venv/bin/python bench/corpus.py OUT_DIR [--count 20000] [--seed 0] [--files 8]
                                     [--near-dup-fraction 0.05] [--data ../shared/data]

What goes in (every record is an HTTP 200 `text/html` response, UTF-8 bytes, unique URL):
- **demo pages**: `pipeline.demo.web.build_demo_site(seed + k)` for k = 0, 1, ... until the count is
  reached, each site under its own host names (`news-s0007.demo.test`), keeping its HTML 200 pages:
  articles, listings, low-quality pages, non-English pages, charset-mismatch pages and exact copies (a
  reprint in another chrome, a byte-for-byte print view). Left out: the demo's `syndicated` pages (their
  5-gram Jaccard with the original is 0.57-0.89, spread across the LSH threshold 0.75, so whether each is
  removed is a coin toss that depends on the hash family: two tools disagree on it by design), and the
  non-HTML, 404 and 301 responses (the tools differ on what a non-page is; not what this bench measures).
- **real pages**: the HTML 200 responses of `DATA/warc-samples/*.warc.gz` whose body is valid UTF-8 (so
  the two tools' decoders agree; datatrove decodes UTF-8 then cchardet, gristmill BOM/UTF-8/header/meta
  then charset-normalizer), first occurrence of each URL, in full once.
- **controlled near-duplicates**: `round(count * near_dup_fraction)` copies of demo articles, each under
  a new URL at a random later position, with one word in 200 of its `<p>` text replaced (at least one):
  5-gram Jaccard ≈ 0.95 with its original, where 11 bands × 10 rows detect it with probability > 0.9999.

Pages are shuffled (seeded), then cut into `--files` equal runs of records. Each file is a gzipped
WARC/1.1 of response records only, with WARC-Identified-Payload-Type: text/html (as Common Crawl
writes it), fixed dates and uuid5 record ids: same arguments, same bytes. `manifest.json` beside the
files records the counts by kind, the payload bytes, and every planted (copy, original) URL pair;
`pages.tsv` lists every page's URL, kind and (near-duplicates) original, in corpus order.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import glob
import io
import json
import random
import re
import uuid
from pathlib import Path

from warcio.archiveiterator import ArchiveIterator
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from gristmill.pipeline.demo.web import ARTICLE, SYNDICATED, build_demo_site

REAL = "real"
NEAR_DUP = "near_dup"
_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "http://demo.test/gristmill-bench-corpus")
_START = dt.datetime(2024, 6, 1, 9, 0, 0, tzinfo=dt.timezone.utc)
_PARAGRAPH = re.compile(r"<p>([^<]*)</p>")
_WORD = re.compile(r"\b[A-Za-z]{4,}\b")
# Replacement words for the planted edits: not in the demo's prose, so an edit always changes a 5-gram.
_SWAPS = ("lantern", "harbour", "quartz", "saffron", "juniper", "meadowlark", "copperplate", "turnstile",
          "mariner", "thistle", "pewter", "sycamore", "brigantine", "lodestar", "orchard", "kestrel")


@dataclasses.dataclass
class Page:
    url: str
    body: bytes
    content_type: str
    kind: str
    original: str | None = None  # planted near-duplicates: the URL they copy


def demo_pages(seed: int) -> list[Page]:
    pages = []
    for p in build_demo_site(seed):
        if p.status != 200 or not p.content_type.startswith("text/html") or p.kind == SYNDICATED:
            continue
        sub, rest = p.host.split(".", 1)
        pages.append(Page(f"http://{sub}-s{seed:04d}.{rest}{p.path}", p.body, p.content_type, p.kind))
    return pages


def real_pages(data: Path) -> list[Page]:
    """HTML 200 responses of the shared WARC samples whose (decoded) body is valid UTF-8, one per URL."""
    pages, seen = [], set()
    for path in sorted(glob.glob(str(data / "warc-samples" / "*.warc.gz"))):
        if path.endswith((".wat.gz", ".wet.gz")):
            continue
        with open(path, "rb") as f:
            for record in ArchiveIterator(f):
                if record.rec_type != "response" or record.http_headers is None:
                    continue
                content_type = record.http_headers.get_header("Content-Type") or ""
                url = record.rec_headers.get_header("WARC-Target-URI")
                if record.http_headers.get_statuscode() != "200" or "html" not in content_type.lower() or url in seen:
                    continue
                body = record.content_stream().read()  # transfer and content encodings undone
                if not body or len(body) > 5_000_000 or body.startswith(b"\xef\xbb\xbf"):
                    continue
                try:
                    body.decode("utf-8")
                except UnicodeDecodeError:
                    continue
                seen.add(url)
                pages.append(Page(url, body, content_type.split(";")[0].strip() + "; charset=utf-8", REAL))
    return pages


def near_duplicate(page: Page, index: int, rng: random.Random) -> Page:
    """The page under a mirror URL with one word in 200 of the bare <p> text inside <main> replaced (at least one)."""
    html = page.body.decode("utf-8")
    main_start, main_end = html.find("<main"), html.find("</main>")  # the article, not the chrome's <p>s
    spans = [(m.start(1), m.end(1)) for m in _PARAGRAPH.finditer(html, main_start, main_end)]
    words = [(w.start(), w.end()) for s, e in spans for w in _WORD.finditer(html, s, e)]  # positions in html
    edits = sorted(rng.sample(words, max(1, len(words) // 200)), reverse=True)
    for start, end in edits:
        swap = rng.choice([w for w in _SWAPS if w != html[start:end].lower()])
        html = html[:start] + swap + html[end:]
    path = page.url.split("/", 3)[3]
    return Page(f"http://mirror.demo.test/{index:06d}/{path}", html.encode("utf-8"), page.content_type, NEAR_DUP,
                original=page.url)


def build(count: int, seed: int, near_dup_fraction: float, data: Path | None) -> list[Page]:
    rng = random.Random(seed)
    dups = round(count * near_dup_fraction)
    real = real_pages(data) if data is not None and (data / "warc-samples").is_dir() else []
    real = real[: max(0, (count - dups) // 10)]  # at most a tenth of the corpus
    base = list(real)
    site = seed
    while len(base) < count - dups:
        base.extend(demo_pages(site))
        site += 1
    base = base[: count - dups]
    rng.shuffle(base)
    # Each copy goes to a random position after its original: keys 0..B-1 for the base pages.
    articles = [i for i, p in enumerate(base) if p.kind == ARTICLE]
    keyed = [(float(i), 0, p) for i, p in enumerate(base)]
    for k in range(dups):
        i = rng.choice(articles)
        keyed.append((rng.uniform(i + 0.5, len(base)), 1, near_duplicate(base[i], k, rng)))
    keyed.sort(key=lambda t: (t[0], t[1]))
    return [p for _, _, p in keyed]


def _record_id(seed: int, url: str) -> str:
    return f"<urn:uuid:{uuid.uuid5(_NAMESPACE, f'{seed}/{url}')}>"


BIG = "big"


def big_pages(pages: list[Page], n: int, seed: int, size: int = 4_900_000) -> list[Page]:
    """`pages` with `n` pages of about `size` bytes (just under the default max_page_bytes) inserted at
    seeded positions: long articles of the corpus's own paragraphs, each page different."""
    rng = random.Random(f"big/{seed}")
    paragraphs = [m.group(1) for p in pages[:200] for m in _PARAGRAPH.finditer(p.body.decode("utf-8", "replace"))]
    out = list(pages)
    for k in range(n):
        body, parts = [f"<html><head><title>Long read {k}</title></head><body><article><h1>Long read {k}</h1>"], 0
        length = len(body[0])
        while length < size - 200:
            text = f"<p>{rng.choice(paragraphs) if paragraphs else 'Text'} ({k}.{parts})</p>\n"
            body.append(text)
            length += len(text)
            parts += 1
        body.append("</article></body></html>")
        out.insert(rng.randrange(len(out) + 1), Page(f"http://longreads.demo.test/{k:03d}.html",
                                                     "".join(body).encode("utf-8"), "text/html; charset=utf-8", BIG))
    return out


def write_warc(path: Path, pages: list[Page], seed: int = 0, first_index: int = 0) -> None:
    """`pages` as one gzipped WARC/1.1 of response records (the page at position i dated `first_index + i`
    seconds after the corpus start)."""
    buffer = io.BytesIO()
    writer = WARCWriter(buffer, gzip=True, warc_version="1.1")
    for index, page in enumerate(pages, first_index):
        http = StatusAndHeaders("200 OK", [("Content-Type", page.content_type),
                                           ("Content-Length", str(len(page.body)))], protocol="HTTP/1.1")
        writer.write_record(writer.create_warc_record(
            page.url, "response", payload=io.BytesIO(page.body), length=len(page.body), http_headers=http,
            warc_headers_dict={"WARC-Record-ID": _record_id(seed, page.url),
                               "WARC-Date": (_START + dt.timedelta(seconds=index)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                               "WARC-Identified-Payload-Type": "text/html"}))
    path.write_bytes(buffer.getvalue())


def write_corpus(out: Path, count: int = 20_000, seed: int = 0, files: int = 8, near_dup_fraction: float = 0.05,
                 data: Path | None = None, big: int = 0) -> dict:
    pages = build(count, seed, near_dup_fraction, data)
    if big:
        pages = big_pages(pages, big, seed)
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("corpus-*.warc.gz"):
        old.unlink()
    per_file = -(-len(pages) // files)
    for f in range(files):
        first = f * per_file
        write_warc(out / f"corpus-{f:03d}.warc.gz", pages[first:(f + 1) * per_file], seed, first)
    kinds: dict[str, int] = {}
    for page in pages:
        kinds[page.kind] = kinds.get(page.kind, 0) + 1
    manifest = {
        "count": len(pages), "seed": seed, "files": files, "near_dup_fraction": near_dup_fraction,
        "html_bytes": sum(len(p.body) for p in pages),
        "warc_bytes": sum(p.stat().st_size for p in out.glob("corpus-*.warc.gz")),
        "kinds": dict(sorted(kinds.items())),
        "near_duplicates": [[p.url, p.original] for p in pages if p.original],
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    (out / "pages.tsv").write_text("url\tkind\toriginal\n" + "".join(
        f"{p.url}\t{p.kind}\t{p.original or ''}\n" for p in pages))
    return manifest


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--near-dup-fraction", type=float, default=0.05)
    parser.add_argument("--big", type=int, default=0, help="pages of about 4.9 MB (near max_page_bytes) to add")
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[1] / ".." / "shared" / "data",
                        help="shared data folder (real pages from warc-samples); absent: demo pages only")
    args = parser.parse_args(argv)
    manifest = write_corpus(args.out, args.count, args.seed, args.files, args.near_dup_fraction, args.data, args.big)
    summary = {k: v for k, v in manifest.items() if k != "near_duplicates"}
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
