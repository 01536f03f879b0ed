"""A crawl killed with SIGKILL, twice, then resumed: nothing is fetched twice (the server's log says so)
and the WARC ends up with exactly the pages an uninterrupted crawl archives.

The crawls run as `python -m gristmill.pipeline.cli.app crawl` subprocesses under the connection guard.
The first kill lands halfway through a WARC append (the crawler's fault hook SIGKILLs itself there,
leaving a torn record whose page is in the spool); the second comes from this test, midway through the
crawl, at a moment when no request is open (the server holds new requests back, and the kill waits until
the ones being served are done).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support.crawl import connect_guard, guard_env, guard_violations, served_twice

from gristmill.pipeline.crawl import CrawlConfig, crawl
from gristmill.pipeline.demo.server import HUB, DemoWebServer
from gristmill.pipeline.sources.warc import read_warc_table


@pytest.fixture(scope="module")
def web():
    with DemoWebServer(crawl_delay_s=None) as server:
        yield server


def warc_rows(out: Path) -> list[dict]:
    return [row for path in sorted((out / "warc").glob("*.warc.gz"))
            for row in read_warc_table(str(path), 5_000_000).to_pylist()]


def response_urls(out: Path) -> list[str]:
    return sorted(r["url"] for r in warc_rows(out) if r["warc_type"] == "response")


def pages_served(web: DemoWebServer) -> int:
    return len([r for r in web.requests() if r.outcome != "client_gone" and r.path != "/robots.txt"])


def test_sigkill_during_a_warc_write_and_midway_then_resume(web, tmp_path):
    settings = dict(allow_addresses=["127.0.0.1"], min_delay_s=0.02, max_depth=10, exclude_patterns=[HUB])
    with connect_guard(tmp_path / "guard-reference.log"):
        reference = crawl(CrawlConfig(seeds=web.seeds, use_ray=False, **settings), tmp_path / "reference")
    expected = response_urls(reference.out_dir)
    assert reference.completed and len(expected) > 80

    out = tmp_path / "killed"
    guard_log = tmp_path / "guard.log"
    env = {**os.environ, **guard_env(tmp_path / "guard", guard_log), "RAY_USAGE_STATS_ENABLED": "0"}
    command = [sys.executable, "-m", "gristmill.pipeline.cli.app", "crawl", *web.seeds, "--out", str(out), "--no-ray",
               "--allow-host", "127.0.0.1", "--delay", "0.02", "--max-depth", "10", "--exclude", HUB]
    web.clear_log()

    # 1. Killed halfway through its 10th WARC append: one fetcher, one connection, so nothing else is open.
    first = subprocess.run(command + ["--fetchers", "1", "--connections", "1"], capture_output=True, text=True,
                           env={**env, "GRISTMILL_CRAWL_FAULT": "warc-write:10"}, timeout=120)
    assert first.returncode == -signal.SIGKILL, first.stdout + first.stderr
    torn = warc_rows(out)
    assert torn[-1]["quarantine_reason"].startswith(("clipped record", "unreadable archive"))  # half-written
    assert len([r for r in torn if r["warc_type"] == "response" and not r["quarantine_reason"]]) == 9
    assert len(list((out / "spool").rglob("*.spool"))) == 1  # the 10th page, safe before its connection closed
    assert pages_served(web) == 10

    # 2. Resumed with more workers and killed from outside, midway, with no request open.
    second = subprocess.Popen(command + ["--fetchers", "2", "--connections", "4"], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, env=env)
    deadline = time.monotonic() + 60
    while pages_served(web) < 40 and second.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    web.pause()
    try:
        while web.in_flight() and time.monotonic() < deadline:
            time.sleep(0.005)
        second.send_signal(signal.SIGKILL)
        output, _ = second.communicate(timeout=30)
    finally:
        web.resume()
    assert second.returncode == -signal.SIGKILL, output
    assert "1 pages archived from the spool" in output and "torn WARC bytes cut" in output
    midway = pages_served(web)
    assert 40 <= midway < len(expected)

    # 3. Resumed to the end.
    third = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert third.returncode == 0, third.stdout + third.stderr

    requests = web.requests()
    assert served_twice(requests) == []  # robots.txt included: each host's is cached in the crawl folder
    assert response_urls(out) == expected  # each page once, across every session's WARC files
    rows = warc_rows(out)
    assert not [r for r in rows if r["quarantine_reason"]]  # the torn record was cut, the spooled one archived
    assert len([r for r in rows if r["warc_type"] == "request"]) == len(expected)
    assert not list((out / "spool").rglob("*.spool"))
    assert guard_violations(guard_log) == []
    stats = (out / "crawl_stats.json").read_text()
    assert '"sessions": 3' in stats and '"completed": true' in stats
