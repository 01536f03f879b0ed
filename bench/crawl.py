"""Crawl throughput against the local demo web: pages/s with 1, 2 and 4 fetcher actors, politeness off.

Usage:
    python bench/crawl.py [--sites 4] [--fetchers 1 2 4] [--connections 1 4] [--repeat 2] [--no-fsync]

The server runs in its own process: `--sites` copies of the demo web (seeds 0..N-1), each four hosts on
127.0.0.1 ports, so a crawl covers 4N hosts and about 125N pages (the hub of hostile test pages excluded).
Politeness off means min_delay_s=0, Crawl-delay ignored (the server sends none anyway) and
per_host_concurrency equal to the connections per fetcher; robots.txt is still fetched and obeyed, the
safety checks run, and every page is made durable (spool, WARC, journal, each fsynced unless --no-fsync).
pages/s is the crawl's own figure: HTTP fetches of frontier URLs divided by the seconds from the moment
the fetcher actors are up to the end (actor start-up is reported apart). Each configuration runs
`--repeat` times on a fresh crawl folder; the best run is reported (the machine is shared).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import tempfile
import time


def _serve(sites: int, pipe, stop) -> None:
    from gristmill.pipeline.demo.server import DemoWebServer

    servers = [DemoWebServer(seed, crawl_delay_s=None).start() for seed in range(sites)]
    pipe.send([seed for server in servers for seed in server.seeds])
    stop.wait()
    pipe.send(sum(len(s.requests()) for s in servers))
    for server in servers:
        server.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, default=4)
    parser.add_argument("--fetchers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--connections", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--no-fsync", action="store_true")
    args = parser.parse_args(argv)

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    from gristmill.pipeline.crawl import CrawlConfig, crawl
    from gristmill.pipeline.demo.server import HUB

    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    stop = context.Event()
    server = context.Process(target=_serve, args=(args.sites, child, stop), daemon=True)
    server.start()
    seeds = parent.recv()
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False, logging_level="WARNING")
    rows = []
    try:
        for connections in args.connections:
            for fetchers in args.fetchers:
                runs = []
                for _ in range(args.repeat):
                    config = CrawlConfig(seeds=seeds, allow_addresses=["127.0.0.1"], max_depth=10,
                                         exclude_patterns=[HUB], min_delay_s=0.0, obey_crawl_delay=False,
                                         per_host_concurrency=connections, fetchers=fetchers,
                                         connections_per_fetcher=connections, fetcher_num_cpus=0,
                                         fsync=not args.no_fsync, use_ray=True)
                    with tempfile.TemporaryDirectory(prefix="gristmill-bench-crawl-") as out:
                        result = crawl(config, out)
                    runs.append(result.stats)
                best = max(runs, key=lambda s: s["session"]["pages_per_s"])
                rows.append((fetchers, connections, best, statistics.median(s["session"]["pages_per_s"] for s in runs)))
                print(f"fetchers={fetchers} connections={connections}: {best['session']['pages_per_s']:.1f} pages/s",
                      file=sys.stderr, flush=True)
    finally:
        stop.set()
        served = parent.recv()
        server.join(timeout=10)
        ray.shutdown()

    print(f"\n{len(seeds) // 4} demo sites, {len(seeds)} hosts, fsync {'off' if args.no_fsync else 'on'}, "
          f"{os.cpu_count()} CPUs, best of {args.repeat}; server answered {served} requests in all\n")
    print("| fetchers | connections per fetcher | pages | seconds | pages/s (best) | pages/s (median) | MB/s | actor start-up s |")
    print("|---------:|------------------------:|------:|--------:|---------------:|-----------------:|-----:|-----------------:|")
    for fetchers, connections, stats, median in rows:
        session = stats["session"]
        mb_per_s = stats["bytes"]["received"] / 1e6 / session["seconds"] if session["seconds"] else 0.0
        print(f"| {fetchers} | {connections} | {session['pages']} | {session['seconds']:.2f} | "
              f"{session['pages_per_s']:.1f} | {median:.1f} | {mb_per_s:.2f} | {session['startup_s']:.2f} |")


if __name__ == "__main__":
    started = time.monotonic()
    main()
    print(f"\n(bench wall time {time.monotonic() - started:.0f} s)", file=sys.stderr)
