"""The opt-out list format and its matcher (pipeline/lists/optout.py): what each kind of entry covers, and what not."""

from __future__ import annotations

import hashlib

import pytest

from gristmill.pipeline.lists.optout import (OptOutError, load_optout, parse_optout_text, parse_optout_yaml,
                                       read_optout_file, text_sha256)

LIST = f"""# opt-out requests, one per line
domain:Example.COM
domain:127.0.0.1:8001
prefix:https://blog.test/private/   # a trailing comment
url:HTTP://news.test:80/a/./b?x=1#fragment
sha256:{'A' * 64}
id:3fa2c91d00a7e5b4
"""


@pytest.mark.parametrize("url, entry", [
    ("https://example.com/x", "domain:example.com"),
    ("http://deep.sub.example.com/", "domain:example.com"),  # subdomains
    ("http://EXAMPLE.com:80/", "domain:example.com"),
    ("http://example.com.evil.test/", None),  # a suffix that is not a parent domain
    ("http://notexample.com/", None),
    ("http://127.0.0.1:8001/a", "domain:127.0.0.1:8001"),  # a port-bound entry: that port only
    ("http://127.0.0.1:8002/a", None),
    ("https://blog.test/private/notes", "prefix:blog.test/private/"),
    ("http://blog.test/private/", "prefix:blog.test/private/"),  # the scheme does not matter
    ("https://blog.test/privateer", None),
    ("https://news.test/a/b?x=1", "url:news.test/a/b?x=1"),  # canonical: dot segments, port, fragment
    ("http://news.test/a/b?x=1#top", "url:news.test/a/b?x=1"),
    ("https://news.test/a/b?x=2", None),
    ("https://news.test/a/b", None),
    (None, None),
    ("not a url at all", None),
])
def test_url_entries_match_canonical_urls(url, entry):
    assert parse_optout_text(LIST).match_url(url) == entry


def test_hash_and_id_entries_and_counts():
    optout = parse_optout_text(LIST)
    assert optout.match_text_hash("a" * 64) == f"sha256:{'a' * 64}" and optout.match_text_hash("b" * 64) is None
    assert optout.match_id("3fa2c91d00a7e5b4") == "id:3fa2c91d00a7e5b4" and optout.match_id("other") is None
    assert optout.counts() == {"domain": 2, "prefix": 1, "url": 1, "sha256": 1, "id": 1} and len(optout) == 6
    assert text_sha256("h\u00e9llo") == hashlib.sha256(b"h\xc3\xa9llo").hexdigest() and text_sha256(None) is None


def test_yaml_form_files_and_inline_entries_merge(tmp_path):
    (tmp_path / "a.yaml").write_text("domains: [example.org]\nprefixes: ['https://x.test/p/']\nids: [abc]\n")
    (tmp_path / "b.txt").write_text("url:https://y.test/page\n")
    optout = load_optout([str(tmp_path / "a.yaml"), str(tmp_path / "b.txt")], ["domain:z.test"])
    assert optout.match_url("http://www.example.org/") == "domain:example.org"
    assert optout.match_url("https://x.test/p/q") == "prefix:x.test/p/"
    assert optout.match_url("http://y.test/page") == "url:y.test/page"
    assert optout.match_url("http://z.test/") == "domain:z.test" and optout.match_id("abc") == "id:abc"
    assert optout.sources == [str(tmp_path / "a.yaml"), str(tmp_path / "b.txt"), "inline"]


@pytest.mark.parametrize("text, message", [
    ("domain:example.com\ndomian:example.org\n", r"list:2: 'domian:example.org' is not an opt-out entry"),
    ("example.com\n", r"list:1: 'example.com' is not an opt-out entry"),
    ("sha256:abc\n", r"list:1: sha256 'abc' is not 64 hex digits"),
    ("prefix:example.com/private\n", r"list:1: prefix 'example.com/private' needs a scheme"),
    ("domain:https://example.com/\n", r"list:1: domain 'https://example.com/' is a URL"),
    ("domain:exa mple.com\n", r"list:1: domain 'exa mple.com'"),
])
def test_malformed_entries_name_the_line(text, message):
    with pytest.raises(OptOutError, match=message):
        parse_optout_text(text)


def test_malformed_yaml_and_missing_file_are_clear_errors(tmp_path):
    with pytest.raises(OptOutError, match=r"x.yaml: hosts: unknown key"):
        parse_optout_yaml("hosts: [a.test]\n", "x.yaml")
    with pytest.raises(OptOutError, match=r"x.yaml: domains: expected a list"):
        parse_optout_yaml("domains: a.test\n", "x.yaml")
    with pytest.raises(OptOutError, match="cannot read opt-out list"):
        read_optout_file(str(tmp_path / "missing.txt"))
