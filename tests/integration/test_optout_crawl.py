"""The crawler never fetches an opted-out URL, and never archives a body whose hash is listed: checked
against the live demo web's own request log and the crawl's WARC files.

Every crawl runs under the 127.0.0.1-only connection guard (tests/support/crawl.py). The hostile hub is
excluded (its slow pages are test_crawl.py's business).
"""

from __future__ import annotations

import hashlib
import time
import urllib.request

import pytest
from support.crawl import connect_guard
from warcio.archiveiterator import ArchiveIterator

from gristmill.pipeline.crawl import CrawlConfig, crawl
from gristmill.pipeline.demo.server import HUB, DemoWebServer
from gristmill.pipeline.lists.optout import OptOutError

BORAGE = "/t/bees-and-borage-in-a-town-garden"
MAYFLIES = "/t/counting-mayflies-on-the-hobb"


def config(seeds, **overrides) -> CrawlConfig:
    settings = dict(seeds=seeds, allow_addresses=["127.0.0.1"], min_delay_s=0.0, use_ray=False, fetchers=2,
                    connections_per_fetcher=4, max_depth=3, timeout_s=2.0, exclude_patterns=[HUB])
    settings.update(overrides)
    return CrawlConfig(**settings)


@pytest.fixture(scope="module")
def web():
    with DemoWebServer(crawl_delay_s=None) as server:
        yield server


def requests_since(web, t0: float):
    """The server's log entries for requests that began at or after `t0` (monotonic): one logged late
    (written when its exchange ends) by an earlier client cannot leak into this crawl's evidence."""
    return [r for r in web.requests() if r.started >= t0]


def port_of(web, host: str) -> int:
    return int(web.base_urls[host].rsplit(":", 1)[1])


def test_opted_out_domain_prefix_and_url_are_never_requested_and_a_listed_body_is_not_archived(web, tmp_path):
    blog, news, forum = (port_of(web, h) for h in ("blog.demo.test", "news.demo.test", "forum.demo.test"))
    with urllib.request.urlopen(web.base_urls["forum.demo.test"] + MAYFLIES, timeout=5) as response:
        body = response.read()
    listed = tmp_path / "optout.txt"
    listed.write_text(f"domain:127.0.0.1:{blog}\n"
                      f"prefix:{web.base_urls['news.demo.test']}/2024/\n"
                      f"url:{web.base_urls['forum.demo.test']}{BORAGE}\n"
                      f"sha256:{hashlib.sha256(body).hexdigest()}  # a body: fetched (to know it), never archived\n")
    t0 = time.monotonic()
    with connect_guard(tmp_path / "guard.log"):
        result = crawl(config(web.seeds, scope="any", opt_out_lists=[str(listed)]), tmp_path / "crawl")
    requests = requests_since(web, t0)
    assert result.completed and requests
    assert not [r for r in requests if r.port == blog]  # not even its robots.txt
    assert not [r for r in requests if r.port == news and r.path.startswith("/2024/")]
    assert not [r for r in requests if r.port == forum and r.path == BORAGE]
    # the rest of those hosts was crawled: the opt-out is what kept those URLs out
    assert any(r.port == news and r.path == "/" for r in requests)
    assert any(r.port == forum and r.path.startswith("/t/") for r in requests)
    assert result.stats["opted_out"] >= 3  # the blog seed, links to the blog, /2024/ articles, the thread
    assert [r.path for r in requests if r.port == forum and r.path == MAYFLIES] == [MAYFLIES]
    assert result.stats["aborted"]["opted_out_content"] == 1
    archived = set()
    for path in result.warc_paths:
        with open(path, "rb") as handle:
            archived |= {r.rec_headers.get_header("WARC-Target-URI") for r in ArchiveIterator(handle) if r.rec_type == "response"}
    assert web.base_urls["forum.demo.test"] + MAYFLIES not in archived
    assert web.base_urls["forum.demo.test"] + "/" in archived


def test_a_list_given_on_resume_refuses_urls_already_queued(web, tmp_path):
    news = port_of(web, "news.demo.test")
    out = tmp_path / "crawl"
    web.clear_log()
    with connect_guard(tmp_path / "guard.log"):
        first = crawl(config([web.base_urls["news.demo.test"] + "/"], max_pages=2), out)
        assert not first.completed  # /2024/ articles wait in the queue
        t0 = time.monotonic()
        second = crawl(config([web.base_urls["news.demo.test"] + "/"], max_pages=12,
                              opt_out=[f"prefix:{web.base_urls['news.demo.test']}/2024/"]), out)
    assert second.stats["refused"]["opted_out"] >= 1
    assert not [r for r in requests_since(web, t0) if r.port == news and r.path.startswith("/2024/")]


def test_a_malformed_list_stops_the_crawl_before_any_request(web, tmp_path):
    t0 = time.monotonic()
    with pytest.raises(OptOutError, match=r"inline entry 0: 'domian:example.com' is not an opt-out entry"):
        crawl(config(web.seeds, opt_out=["domian:example.com"]), tmp_path / "crawl")
    assert requests_since(web, t0) == []
