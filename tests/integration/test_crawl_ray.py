"""The crawler's fetchers as Ray actors on a real local Ray: hosts split between actors by hash, one host
never fetched by two of them nor twice at once, the per-host delay held (server log as evidence), and
the connection guard installed inside the actors' processes."""

from __future__ import annotations

from collections import defaultdict

import pytest
from support.crawl import connect_guard, guard_env, guard_violations, journal_entries, served_twice

from gristmill.pipeline.crawl import CrawlConfig, crawl
from gristmill.pipeline.crawl.fetcher import Fetcher, owner
from gristmill.pipeline.crawl.urls import host_key
from gristmill.pipeline.demo.server import HUB, DemoWebServer
from gristmill.pipeline.sources.warc import read_warc_table

MIN_DELAY_S = 0.05


@pytest.fixture(scope="module")
def web():
    with DemoWebServer(crawl_delay_s=None) as server:  # no Crawl-delay: the crawler's own delay governs
        yield server


def test_fetcher_actors_own_their_hosts_and_keep_the_delay(ray_local, web, tmp_path):
    guard_log = tmp_path / "guard.log"
    config = CrawlConfig(seeds=web.seeds, allow_addresses=["127.0.0.1"], min_delay_s=MIN_DELAY_S, max_depth=10,
                         exclude_patterns=[HUB], fetchers=2, connections_per_fetcher=4, use_ray=True,
                         ray_actor_options={"runtime_env": {"env_vars": guard_env(tmp_path / "guard", guard_log)}})
    web.clear_log()
    with connect_guard(tmp_path / "driver-guard.log"):
        result = crawl(config, tmp_path / "crawl")
    assert result.completed and guard_violations(guard_log) == []

    requests = web.requests()
    assert served_twice(requests) == []
    by_port = defaultdict(list)
    for r in requests:
        by_port[r.port].append(r)
    assert len(by_port) == 4
    for rs in by_port.values():
        rs.sort(key=lambda r: r.started)
        for before, after in zip(rs, rs[1:]):
            assert after.started > before.ended  # one request at a time per host
            assert after.started - before.started >= MIN_DELAY_S
            assert after.started - before.ended >= MIN_DELAY_S - 0.02  # the server sees a close a moment late

    entries = journal_entries(result.out_dir)
    fetchers_of_host = defaultdict(set)
    for entry in entries:
        fetchers_of_host[host_key(entry["url"])].add(entry["fetcher"])
    assert {h: f for h, f in fetchers_of_host.items()} == {h: {owner(h, 2)} for h in fetchers_of_host}
    rows = [row for path in result.warc_paths for row in read_warc_table(str(path), 5_000_000).to_pylist()]
    responses = sorted(r["url"] for r in rows if r["warc_type"] == "response")
    assert responses == sorted(e["url"] for e in entries if e["outcome"] == "fetched") and len(responses) > 80
    # Each WARC file holds the pages of the hosts its fetcher owns.
    for path in result.warc_paths:
        index = int(path.name.split("-")[2].split(".")[0])
        assert {owner(host_key(r["url"]), 2) for r in read_warc_table(str(path), 5_000_000).to_pylist()
                if r["url"]} == {index}


def test_the_guard_is_live_inside_an_actor(ray_local, tmp_path):
    """Positive control: a fetcher actor told that 10.0.0.0/8 is allowed tries to connect there (for its
    robots.txt); the guard in the actor's process blocks and logs it, and the page is then not fetched."""
    guard_log = tmp_path / "guard.log"
    actor = ray_local.remote(Fetcher).options(num_cpus=0, runtime_env={"env_vars": guard_env(tmp_path / "g", guard_log)})
    config = CrawlConfig(seeds=["http://10.0.0.1:9/"], allow_addresses=["10.0.0.0/8"], timeout_s=2, connect_timeout_s=1)
    fetcher = actor.remote(config.model_dump(), str(tmp_path / "crawl"), 1, 0)
    try:
        entry = ray_local.get(fetcher.fetch.remote("http://10.0.0.1:9/"))
    finally:
        ray_local.kill(fetcher)
    assert entry["outcome"] == "robots_disallowed"  # robots.txt unreachable: the host is off limits
    assert len(guard_violations(guard_log)) == 1 and "10.0.0.1" in guard_violations(guard_log)[0]
