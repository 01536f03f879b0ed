"""The crawler against the live demo web on 127.0.0.1, with the server's own request log as evidence.

Every crawl here runs under a guard that fails any connection to an address other than 127.0.0.1 (and the
guard's log must stay empty). One full crawl of the demo web (module fixture) backs most checks; the
refusal checks crawl seeds that must never be connected to.
"""

from __future__ import annotations

import socket
from collections import defaultdict

import pytest
from support.crawl import connect_guard, guard_violations, journal_entries, served_twice
from warcio.archiveiterator import ArchiveIterator

from gristmill.pipeline.crawl import CrawlConfig, crawl
from gristmill.pipeline.crawl.robots import RobotsRules, record_for_response
from gristmill.pipeline.crawl.safety import AddressPolicy, Refused
from gristmill.pipeline.crawl.urls import BadURL, canonicalize, extract_links
from gristmill.pipeline.demo.server import HUB, DemoWebServer
from gristmill.pipeline.sources.warc import read_warc_table

CRAWL_DELAY_S = 0.06  # the demo robots.txt's Crawl-delay in this module (min_delay_s is 0.01)
TIMEOUT_S = 1.0
MAX_BYTES = 1_000_000
NEVER_FOR_US = ("/private/", "/basket/", "/login/", "/search/", "/members/")  # robots.txt, gristmill group


def config(seeds, **overrides) -> CrawlConfig:
    settings = dict(seeds=seeds, allow_addresses=["127.0.0.1"], min_delay_s=0.01, use_ray=False, fetchers=2,
                    connections_per_fetcher=4, max_depth=10, timeout_s=TIMEOUT_S, max_body_bytes=MAX_BYTES,
                    max_decoded_bytes=MAX_BYTES)
    settings.update(overrides)
    return CrawlConfig(**settings)


@pytest.fixture(scope="module")
def web():
    with DemoWebServer(crawl_delay_s=CRAWL_DELAY_S, slow_s=3.0, big_page_bytes=2_000_000) as server:
        yield server


@pytest.fixture(scope="module")
def full_crawl(web, tmp_path_factory):
    """The whole demo web, hub of hostile pages included; scope `any`, so redirects to the metadata
    service and a private network reach the safety check."""
    out = tmp_path_factory.mktemp("full-crawl")
    web.clear_log()
    with connect_guard(out / "guard.log"):
        result = crawl(config(web.seeds, scope="any"), out / "crawl")
    return result, web.requests(), journal_entries(out / "crawl")


# -- units -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("raw, canonical", [
    ("HTTP://News.Example.COM:80/a/./b/../c?x=1#top", "http://news.example.com/a/c?x=1"),
    ("https://example.com:443", "https://example.com/"),
    ("http://example.com/%7euser/%e2%82%ac?q=a%20b", "http://example.com/~user/%E2%82%AC?q=a%20b"),
    ("http://example.com/caf\u00e9 menu", "http://example.com/caf%C3%A9%20menu"),
    ("http://user:secret@example.com/", "http://example.com/"),
    ("http://b\u00fccher.example/", "http://xn--bcher-kva.example/"),
    ("http://example.com./x", "http://example.com/x"),
    ("http://2130706433/", "http://127.0.0.1/"),
    ("http://0x7f.1/", "http://127.0.0.1/"),
    ("http://0177.0.0.1/", "http://127.0.0.1/"),
    ("http://0xa9fea9fe/", "http://169.254.169.254/"),
    ("http://[0:0:0:0:0:ffff:0a00:0001]/", "http://[::ffff:a00:1]/"),
])
def test_canonical_urls_have_one_spelling(raw, canonical):
    assert canonicalize(raw) == canonical
    assert canonicalize(canonical) == canonical


@pytest.mark.parametrize("raw", ["mailto:a@example.com", "javascript:void(0)", "ftp://example.com/",
                                 "http://[fe80::1%25eth0]/", "http://1.2.3.4.5/", "http://exa mple.com/",
                                 "http://example.com:99999/"])
def test_unfetchable_urls_are_rejected(raw):
    with pytest.raises(BadURL):
        canonicalize(raw)


def test_links_are_resolved_canonical_and_nofollow_is_honoured():
    page = (b'<html><head><base href="http://example.com/dir/"></head><body><a href="a.html#x">a</a>'
            b'<a href="../b.html">b</a><a href="mailto:x@example.com">m</a><a href="A.HTML"></a>'
            b'<a href="a.html">again</a></body></html>')
    assert extract_links(page, "http://example.com/") == ["http://example.com/dir/a.html",
                                                          "http://example.com/b.html",
                                                          "http://example.com/dir/A.HTML"]
    nofollow = b'<html><head><meta name="ROBOTS" content="noindex, nofollow"></head><a href="/x">x</a></html>'
    assert extract_links(nofollow, "http://example.com/") == []


@pytest.mark.parametrize("address, reason", [
    ("10.0.0.1", "private_address"), ("192.168.1.1", "private_address"), ("172.16.0.1", "private_address"),
    ("169.254.169.254", "link_local_address"), ("127.0.0.2", "loopback_address"), ("::1", "loopback_address"),
    ("0.0.0.0", "unspecified_address"), ("224.0.0.1", "multicast_address"), ("ff02::1", "multicast_address"),
    ("fe80::1", "link_local_address"), ("fc00::1", "private_address"), ("100.64.0.1", "shared_address"),
    ("::ffff:10.0.0.1", "private_address"), ("::ffff:169.254.169.254", "link_local_address"),
    ("2002:a00:1::", "private_address"),  # 6to4 around 10.0.0.1
    ("64:ff9b::a9fe:a9fe", "link_local_address"),  # NAT64 around 169.254.169.254
    ("240.0.0.1", "reserved_address"),
])
def test_addresses_that_are_not_global_are_refused(address, reason):
    with pytest.raises(Refused) as refused:
        AddressPolicy(["127.0.0.1"]).resolve(address, 80)
    assert refused.value.reason == reason


def test_allow_list_admits_exactly_what_it_names():
    policy = AddressPolicy(["127.0.0.1"])
    assert policy.resolve("127.0.0.1", 80).ip == "127.0.0.1"
    target = policy.resolve("::ffff:127.0.0.1", 80)  # IPv4-mapped: connected to as plain IPv4
    assert (target.family, target.ip) == (socket.AF_INET, "127.0.0.1")
    with pytest.raises(Refused):
        policy.resolve("127.0.0.2", 80)
    assert AddressPolicy().resolve("93.184.216.34", 80).ip == "93.184.216.34"
    with pytest.raises(Refused):
        AddressPolicy().resolve("127.0.0.1", 80)


def test_robots_groups_fractional_delays_and_fetch_outcomes():
    text = ("User-agent: gristmill\nDisallow: /members/\nCrawl-delay: 0.25\n\n"
            "User-agent: *\nDisallow: /\nCrawl-delay: 7\n")
    ours = RobotsRules(record_for_response("http://h", 200, text.encode()), "gristmill")
    theirs = RobotsRules(record_for_response("http://h", 200, text.encode()), "otherbot")
    assert ours.can_fetch("http://h/posts/") and not ours.can_fetch("http://h/members/x")
    assert not theirs.can_fetch("http://h/posts/")
    assert (ours.delay_s, theirs.delay_s) == (0.25, 7)
    assert RobotsRules(record_for_response("http://h", 404, b""), "gristmill").can_fetch("http://h/x")
    for status in (401, 403, 500, 503, None):
        assert not RobotsRules(record_for_response("http://h", status, b""), "gristmill").can_fetch("http://h/x")


def test_config_refuses_an_anonymous_user_agent_and_more_than_five_redirects():
    with pytest.raises(ValueError, match="contact"):
        CrawlConfig(seeds=["http://example.com/"], user_agent="anonbot/1.0")
    with pytest.raises(ValueError):
        CrawlConfig(seeds=["http://example.com/"], max_redirects=6)
    with pytest.raises(ValueError, match="allow_addresses"):
        CrawlConfig(seeds=["http://example.com/"], allow_addresses=["intranet.example"])


# -- the full crawl ----------------------------------------------------------------------------------------

def test_disallowed_paths_are_never_requested(full_crawl, web):
    result, requests, entries = full_crawl
    assert not [r.path for r in requests if r.path.startswith(NEVER_FOR_US)]
    disallowed = {e["url"].split("/", 3)[3] for e in entries if e["outcome"] == "robots_disallowed"}
    # Linked from every home page, reached through a redirect, or in the gristmill-only group (/members/).
    assert {"private/staff.html", "members/", "basket/", "login/", "search/"} <= disallowed
    assert result.stats["robots_disallowed"] == len([e for e in entries if e["outcome"] == "robots_disallowed"])
    staff_redirect = [r for r in requests if r.path == "/go/staff"]
    assert len(staff_redirect) == 4 and all(r.status == 302 for r in staff_redirect)
    # Every request carries the crawler's user agent with its contact URL.
    assert {r.user_agent for r in requests} == {CrawlConfig(seeds=["http://x/"]).user_agent}


def test_each_host_gets_one_request_at_a_time_with_the_crawl_delay_between(full_crawl):
    _, requests, _ = full_crawl
    by_port = defaultdict(list)
    for r in requests:
        by_port[r.port].append(r)
    assert len(by_port) == 4
    for port, rs in by_port.items():
        rs.sort(key=lambda r: r.started)
        assert rs[0].path == "/robots.txt"
        for before, after in zip(rs, rs[1:]):
            # The server starts serving after the crawler connected, and the crawler connects Crawl-delay
            # after it closed the previous connection, which came after that request began to be served.
            assert after.started - before.started >= CRAWL_DELAY_S, (port, before.path, after.path)
            # The server sees the close a moment after the crawler made it: allow it 20 ms.
            assert after.started - before.ended >= CRAWL_DELAY_S - 0.02, (port, before.path, after.path)
            assert after.started > before.ended  # never two open requests to one host


def test_every_url_is_fetched_once(full_crawl):
    result, requests, entries = full_crawl
    assert served_twice(requests) == []
    assert len({e["url"] for e in entries}) == len(entries)
    assert result.completed and result.stats["urls"]["queued"] == 0


def test_caps_and_the_redirect_limit_hold(full_crawl):
    result, requests, entries = full_crawl
    by_path = {e["url"].split("/", 3)[3]: e for e in entries}
    hub = HUB.lstrip("/")
    expected = {"slow.html": "timeout", "big.html": "body_too_large", "big-stream.html": "body_too_large",
                "bomb.html": "decoded_too_large", "fat-headers.html": "headers_too_large"}
    for page, reason in expected.items():
        assert (by_path[hub + page]["outcome"], by_path[hub + page]["reason"]) == ("aborted", reason)
    assert by_path["static/logo.png"]["reason"] == "content_type_not_allowed"
    assert by_path["api/products.json"]["reason"] == "content_type_not_allowed"
    # Content-Length over the cap: refused on the headers, after one 64 KiB read.
    assert by_path[hub + "big.html"]["bytes"] <= 64 * 1024
    assert by_path[hub + "big-stream.html"]["bytes"] <= MAX_BYTES + 64 * 1024 + 1024
    slow = next(r for r in requests if r.path == HUB + "slow.html")
    assert slow.outcome == "client_aborted" and slow.ended - slow.started < TIMEOUT_S + 0.5
    # The chain starts at hop 0: five redirects are followed (chain/2..6), the sixth target never requested.
    chain = sorted(r.path for r in requests if "/chain/" in r.path)
    assert chain == [f"{HUB}chain/{i}" for i in range(1, 7)]
    assert result.stats["refused"]["too_many_redirects"] == 1
    assert result.stats["aborted"]["timeout"] == 1 and result.stats["status"]["5xx"] == 1


def test_redirects_to_private_addresses_are_refused_without_connecting(full_crawl):
    result, _, entries = full_crawl
    refused = {e["url"]: e["reason"] for e in entries if e["outcome"] == "refused"}
    assert refused == {"http://169.254.169.254/latest/meta-data/": "link_local_address",
                       "http://10.0.0.1/admin/": "private_address"}
    assert result.stats["refused"]["private_address"] == 1
    assert guard_violations(result.out_dir.parent / "guard.log") == []


def test_warc_round_trips_through_the_pipeline_reader(full_crawl, web):
    result, requests, entries = full_crawl
    fetched = {e["url"]: e for e in entries if e["outcome"] == "fetched"}
    rows = [row for path in result.warc_paths for row in read_warc_table(str(path), 5_000_000).to_pylist()]
    assert not [r for r in rows if r["quarantine_reason"]]
    responses = [r for r in rows if r["warc_type"] == "response"]
    assert sorted(r["url"] for r in responses) == sorted(fetched)
    assert len([r for r in rows if r["warc_type"] == "request"]) == len(responses)
    html_ok = {url for url, e in fetched.items() if e["status"] == 200 and e["content_type"].startswith("text/html")}
    with_content = {r["url"]: r["content"] for r in responses if r["content"] is not None}
    assert set(with_content) == html_ok and len(html_ok) > 60
    assert all(b"<html" in body.lower() for body in with_content.values())
    # The bodies are what the server sent: the home page carries the crawl-only links block.
    assert b"Elsewhere in the valley" in with_content[web.seeds[0]]
    served = {f"http://127.0.0.1:{r.port}{r.path}" for r in requests if r.outcome == "served"}
    assert set(fetched) <= served
    with open(result.warc_paths[0], "rb") as handle:
        record = next(r for r in ArchiveIterator(handle) if r.rec_type == "response")
        headers = record.rec_headers
        assert headers.get_header("WARC-IP-Address") == "127.0.0.1"
        assert headers.get_header("WARC-Payload-Digest").startswith("sha1:")
        assert headers.get_header("WARC-Target-URI").startswith("http://127.0.0.1:")
        assert headers.get_header("WARC-Date").endswith("Z") and record.content_stream().read()


def test_stats_file_counts_every_outcome(full_crawl):
    result, requests, entries = full_crawl
    stats = result.stats
    assert (result.out_dir / "crawl_stats.json").exists()
    assert stats["fetched"] == len([e for e in entries if e["outcome"] == "fetched"])
    network = [e for e in entries if e["outcome"] in ("fetched", "aborted", "error")]
    assert stats["pages"] == len(network) == len([r for r in requests if r.path != "/robots.txt"])
    assert stats["robots_requests"] == 4
    assert sum(stats["status"].values()) == len([e for e in entries if e.get("status") is not None])
    assert stats["bytes"]["received"] > 0 and stats["pages_per_s"] > 0 and stats["errors"] == {}


# -- refusal before connecting -----------------------------------------------------------------------------

def test_private_targets_are_refused_before_any_connection(web, tmp_path, monkeypatch):
    port = web.base_urls["news.demo.test"].rsplit(":", 1)[1]
    real_getaddrinfo = socket.getaddrinfo
    fake_dns = {"intranet.example": ["10.1.2.3"], "split.example": ["93.184.216.34", "192.168.0.7"]}

    def getaddrinfo(host, *args, **kwargs):
        if host in fake_dns:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, 80)) for ip in fake_dns[host]]
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    seeds = {
        "http://10.0.0.1/": "private_address",
        "http://169.254.169.254/latest/meta-data/": "link_local_address",
        f"http://[::1]:{port}/": "loopback_address",
        f"http://localhost:{port}/": "loopback_address",
        f"http://127.0.0.1:{port}/": "loopback_address",  # no allow-list in this crawl
        "http://167772161/": "private_address",  # 10.0.0.1 in decimal
        "http://0xa9fea9fe/": "link_local_address",  # 169.254.169.254 in hex
        f"http://0177.0.0.1:{port}/": "loopback_address",  # octal
        "http://[::ffff:10.0.0.1]/": "private_address",  # IPv4-mapped IPv6
        "http://[::ffff:a9fe:a9fe]/": "link_local_address",
        "http://intranet.example/": "private_address",  # a name resolving to a private address
        "http://split.example/": "private_address",  # one public and one private answer
    }
    web.clear_log()
    with connect_guard(tmp_path / "guard.log"):
        result = crawl(config(list(seeds), allow_addresses=[], scope="any"), tmp_path / "crawl")
    outcomes = {e["url"]: (e["outcome"], e["reason"]) for e in journal_entries(tmp_path / "crawl")}
    assert outcomes == {canonicalize(url): ("refused", reason) for url, reason in seeds.items()}
    assert web.requests() == [] and result.stats["pages"] == 0
    # 12 spellings, 10 URLs: the octal loopback and the decimal 10.0.0.1 canonicalize onto others.
    assert sum(result.stats["refused"].values()) == len(outcomes) == 10


def test_the_guard_itself_blocks_other_addresses(tmp_path):
    log = tmp_path / "guard.log"
    with pytest.raises(AssertionError, match="127.0.0.1 was attempted"):
        with connect_guard(log):
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection(("10.0.0.1", 80), timeout=0.5)
    assert len(guard_violations(log)) == 1


# -- scope, limits, resume in process ----------------------------------------------------------------------

def test_scope_max_pages_and_resume_without_refetching(web, tmp_path):
    """One host only (seed_hosts scope); stop at 6 pages, then resume the same folder to the end."""
    blog = web.base_urls["blog.demo.test"] + "/"
    settings = dict(exclude_patterns=[HUB], min_delay_s=0.0)
    web.clear_log()
    with connect_guard(tmp_path / "guard.log"):
        first = crawl(config([blog], max_pages=6, **settings), tmp_path / "crawl")
        assert not first.completed and first.stats["pages"] == 6
        second = crawl(config([blog], **settings), tmp_path / "crawl")
    assert second.completed and second.stats["sessions"] == 2
    requests = web.requests()
    assert {r.host for r in requests} == {"blog.demo.test"}
    assert served_twice(requests) == []  # robots.txt included: its cache carries over
    assert second.stats["pages"] == len([r for r in requests if r.path != "/robots.txt"]) > 20
    assert second.stats["links_out_of_scope"] > 0


def test_max_depth_limits_the_frontier(web, tmp_path):
    forum = web.base_urls["forum.demo.test"] + "/"
    web.clear_log()
    with connect_guard(tmp_path / "guard.log"):
        result = crawl(config([forum], max_depth=0, min_delay_s=0.0), tmp_path / "crawl")
    assert sorted(r.path for r in web.requests()) == ["/", "/robots.txt"]
    assert result.completed and result.stats["pages"] == 1
