"""bench/corpus.py: the end-to-end benchmark's input is deterministic and its planted duplicates are what
the bench claims (unique URLs, HTML 200 responses both tools read, near-duplicates at Jaccard ≈ 0.95)."""

from __future__ import annotations

import html
import json
import re
import sys
from pathlib import Path

from warcio.archiveiterator import ArchiveIterator

from gristmill.filters import minhash

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import corpus  # noqa: E402


def _paragraph_text(body: bytes) -> str:
    return "\n".join(html.unescape(p) for p in re.findall(r"<p>([^<]*)</p>", body.decode("utf-8")))


def test_corpus_is_deterministic_and_plants_what_it_says(tmp_path):
    a = corpus.write_corpus(tmp_path / "a", count=240, seed=3, files=3, near_dup_fraction=0.1, data=None)
    corpus.write_corpus(tmp_path / "b", count=240, seed=3, files=3, near_dup_fraction=0.1, data=None)
    names = sorted(p.name for p in (tmp_path / "a").glob("*.warc.gz"))
    assert names == ["corpus-000.warc.gz", "corpus-001.warc.gz", "corpus-002.warc.gz"]
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert (tmp_path / "a" / "pages.tsv").read_text() == (tmp_path / "b" / "pages.tsv").read_text()

    bodies, order = {}, []
    for name in names:
        with open(tmp_path / "a" / name, "rb") as f:
            for record in ArchiveIterator(f):
                assert record.rec_type == "response"
                assert record.rec_headers.get_header("WARC-Identified-Payload-Type") == "text/html"
                assert record.http_headers.get_statuscode() == "200"
                url = record.rec_headers.get_header("WARC-Target-URI")
                bodies[url] = record.content_stream().read()
                order.append(url)
    assert len(order) == len(bodies) == a["count"] == 240  # unique URLs
    assert a["kinds"]["near_dup"] == 24 and "syndicated" not in a["kinds"]
    assert json.loads((tmp_path / "a" / "manifest.json").read_text())["near_duplicates"] == a["near_duplicates"]

    texts = []
    for copy, original in a["near_duplicates"]:
        assert order.index(original) < order.index(copy)  # the original comes first
        assert bodies[copy] != bodies[original]
        texts += [_paragraph_text(bodies[original]), _paragraph_text(bodies[copy])]
    shingles = [set(s) for s in minhash.shingles(minhash.words(texts), 5)]
    similarities = [minhash.exact_jaccard(shingles[i], shingles[i + 1]) for i in range(0, len(shingles), 2)]
    assert 0.9 <= min(similarities) and max(similarities) < 1.0
