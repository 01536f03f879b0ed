"""The crawl driver: seeds in, frontier out to the fetchers, outcomes back into the frontier.

    crawl(config, out_dir) -> CrawlResult

The driver owns the frontier (frontier.Frontier) and the scope rules; fetchers (fetcher.Fetcher, as Ray
actors or threads) own hosts, assigned by a hash of the host so one host is never fetched by two of
them. The driver keeps at most `per_host_concurrency` requests open per host and
`connections_per_fetcher` per fetcher. A crawl folder:

    DIR/
      warc/crawl-SSS-FF.warc.gz   request + response records (WARC/1.1), per session SSS and fetcher FF
      journal/crawl-SSS-FF.jsonl  one line per finished URL: outcome, links, WARC offsets (the truth)
      robots/*.json               robots.txt per host, reused across sessions within robots_ttl_s
      frontier.sqlite             every URL seen, its state and outcome
      crawl_config.json           the config of the latest session
      crawl_stats.json            fetched, per status class, robots-disallowed, refused/aborted/errors by
                                  reason, bytes, pages/s (rewritten as the crawl goes); opted_out: URLs
                                  an opt-out list kept out of the frontier (queued ones a later list
                                  names are refused before fetching: refused.opted_out)
Running `crawl` again on the same folder resumes: earlier sessions' journals are replayed, torn WARC
tails cut, spooled pages archived (store.recover), and the queue carries on.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from gristmill.pipeline.crawl.config import CrawlConfig
from gristmill.pipeline.crawl.fetcher import Fetcher, owner
from gristmill.pipeline.crawl.frontier import NETWORK_OUTCOMES, Frontier
from gristmill.pipeline.crawl.store import WARC_DIR, recover
from gristmill.pipeline.crawl.urls import BadURL, canonicalize, host_key

STATS_FILE = "crawl_stats.json"
CONFIG_FILE = "crawl_config.json"
_STATS_EVERY_S = 5.0


@dataclass
class CrawlResult:
    out_dir: Path
    warc_paths: list[Path]
    stats: dict
    completed: bool  # the frontier is empty (False: max_pages reached, or interrupted)
    recovery: dict = field(default_factory=dict)  # what resuming repaired


class Scope:
    """Whether a URL may enter the frontier."""

    def __init__(self, config: CrawlConfig, seeds: list[str]):
        self.config = config
        self.seed_hosts = {host_key(s) for s in seeds}
        self.domains = [d.lower().strip(".") for d in config.domains]
        self.include = [re.compile(p) for p in config.include_patterns]
        self.exclude = [re.compile(p) for p in config.exclude_patterns]

    def __call__(self, url: str) -> bool:
        if any(p.search(url) for p in self.exclude):
            return False
        if self.include and not any(p.search(url) for p in self.include):
            return False
        if self.config.scope == "seed_hosts":
            return host_key(url) in self.seed_hosts
        if self.config.scope == "domains":
            name = urlsplit(url).hostname or ""
            return any(name == d or name.endswith("." + d) for d in self.domains)
        return True


class _ThreadFetchers:
    """Fetchers as objects in this process, each behind its own thread pool."""

    def __init__(self, config: CrawlConfig, out_dir: Path, session: int):
        self.fetchers = [Fetcher(config, str(out_dir), session, i) for i in range(config.fetchers)]
        self.pools = [ThreadPoolExecutor(config.connections_per_fetcher, thread_name_prefix=f"fetcher-{i}")
                      for i in range(config.fetchers)]

    def submit(self, index: int, url: str):
        return self.pools[index].submit(self.fetchers[index].fetch, url)

    def wait(self, pending: list, timeout: float) -> list:
        done, _ = wait_futures(pending, timeout=timeout, return_when=FIRST_COMPLETED)
        return list(done)

    @staticmethod
    def result(handle) -> dict:
        return handle.result()

    def close(self) -> None:
        for pool in self.pools:
            pool.shutdown(wait=True)
        for fetcher in self.fetchers:
            fetcher.close()


class _RayFetchers:
    """Fetchers as threaded Ray actors (a local Ray is started unless one is running or RAY_ADDRESS is set)."""

    def __init__(self, config: CrawlConfig, out_dir: Path, session: int):
        import ray

        if not ray.is_initialized():
            from gristmill.pipeline.engine.cluster import init_ray
            from gristmill.schemas.job import RayConfig

            init_ray(RayConfig())
        self.ray = ray
        actor = ray.remote(Fetcher)
        options = {"max_concurrency": config.connections_per_fetcher, "num_cpus": config.fetcher_num_cpus,
                   **config.ray_actor_options}
        self.actors = [actor.options(**options).remote(config.model_dump(), str(out_dir), session, i)
                       for i in range(config.fetchers)]
        ray.get([a.ready.remote() for a in self.actors])

    def submit(self, index: int, url: str):
        return self.actors[index].fetch.remote(url)

    def wait(self, pending: list, timeout: float) -> list:
        done, _ = self.ray.wait(pending, num_returns=1, timeout=timeout)
        return done

    def result(self, handle) -> dict:
        return self.ray.get(handle)

    def close(self) -> None:
        try:
            self.ray.get([a.close.remote() for a in self.actors])
        finally:
            for a in self.actors:
                self.ray.kill(a)


def crawl(config: CrawlConfig, out_dir: str | os.PathLike, *, log: Callable[[str], None] | None = None) -> CrawlResult:
    """Crawl from the seeds until the frontier is empty or max_pages is reached; resumes a crawl
    already in out_dir. Returns the WARC files and the stats also written to DIR/crawl_stats.json."""
    log = log or (lambda message: None)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    lock = open(out / ".crawl.lock", "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        raise ValueError(f"another crawl is running in {out}") from None
    frontier = Frontier(out / "frontier.sqlite")
    warcinfo = {"software": "gristmill crawler", "format": "WARC File Format 1.1",
                "http-header-user-agent": config.user_agent, "robots": "obey"}
    try:
        recovery = recover(out, fsync=config.fsync, warcinfo=warcinfo)
        driver = _Driver(config, out, frontier, log)
        replayed = driver.replay(recovery.pop("entries"))
        recovery["replayed_entries"] = replayed
        recovery["requeued"] = frontier.requeue_claimed()
        if replayed or recovery["requeued"]:
            log(f"resuming: {replayed} journal entries replayed, {recovery['requeued']} URLs back in the queue, "
                f"{recovery['truncated_bytes']} torn WARC bytes cut, {recovery['recovered_from_spool']} pages "
                "archived from the spool")
        (out / CONFIG_FILE).write_text(config.model_dump_json(indent=2) + "\n")
        driver.add_seeds()
        frontier.commit()
        completed = driver.run()
        stats = driver.write_stats(completed)
    finally:
        frontier.close()
        lock.close()
    warcs = sorted(p for p in (out / WARC_DIR).glob("*.warc.gz") if p.stat().st_size > 0) if (out / WARC_DIR).exists() else []
    return CrawlResult(out, warcs, stats, completed, recovery)


class _Driver:
    def __init__(self, config: CrawlConfig, out: Path, frontier: Frontier, log: Callable[[str], None]):
        self.config = config
        self.out = out
        self.frontier = frontier
        self.log = log
        self.seeds = []
        for seed in config.seeds:
            try:
                self.seeds.append(canonicalize(seed))
            except BadURL as err:
                raise ValueError(f"seed {seed!r}: {err}") from None
        self.scope = Scope(config, self.seeds)
        from gristmill.pipeline.lists.optout import load_optout

        self.optout = load_optout(config.opt_out_lists, config.opt_out)
        self.session = frontier.begin_session()
        self.started = time.monotonic()
        self.session_pages = 0
        self.startup_s = 0.0
        self.interrupted = False

    def add_seeds(self) -> None:
        for seed in self.seeds:
            if self.optout.match_url(seed):
                self.frontier.count("opted_out")
            elif self.scope(seed):
                self.frontier.offer(seed, host_key(seed), 0, 0, None)
            else:
                self.frontier.count("seeds_out_of_scope")

    def replay(self, entries: list[dict]) -> int:
        applied = 0
        for entry in entries:
            row = self.frontier.get(entry["url"])
            if row is None or row[0] != "done":
                self.apply(entry, session=0)
                applied += 1
        self.frontier.commit()
        return applied

    def apply(self, entry: dict, session: int | None = None) -> None:
        """Record one outcome and queue what it leads to (links, a redirect's target)."""
        url = entry["url"]
        row = self.frontier.get(url)
        depth, hops = (row[1], row[2]) if row is not None else (0, 0)
        self.frontier.finish(url, host_key(url), entry, self.session if session is None else session)
        if (robots := entry.get("robots")) is not None:
            self.frontier.count("robots_requests", robots.get("requests", 0))
        if entry["outcome"] != "fetched":
            return
        if (location := entry.get("location")) is not None:
            if hops + 1 > self.config.max_redirects:
                self.frontier.count("refused:too_many_redirects")
            elif self.optout.match_url(location):
                self.frontier.count("opted_out")
            elif self.scope(location):
                self.frontier.offer(location, host_key(location), depth, hops + 1, url)
            else:
                self.frontier.count("links_out_of_scope")
        if depth < self.config.max_depth:
            for link in entry.get("links") or ():
                if self.optout.match_url(link):
                    self.frontier.count("opted_out")
                elif self.scope(link):
                    self.frontier.offer(link, host_key(link), depth + 1, 0, url)
                else:
                    self.frontier.count("links_out_of_scope")

    def run(self) -> bool:
        """Dispatch until the frontier is empty (True) or max_pages / Ctrl-C stops it (False)."""
        config, frontier = self.config, self.frontier
        pool = (_RayFetchers if config.use_ray else _ThreadFetchers)(config, self.out, self.session)
        self.startup_s = time.monotonic() - self.started
        self.started = time.monotonic()  # pages/s counts from the moment the fetchers are up
        pending: dict = {}  # handle -> (url, host, fetcher)
        per_host: Counter = Counter()
        per_fetcher: Counter = Counter()
        last_dispatch: dict[str, float] = {}
        attempts = frontier.network_attempts()
        last_stats = time.monotonic()
        try:
            while True:
                if not self.interrupted:
                    # Least recently served hosts first, so a busy host cannot starve its neighbours.
                    for host in sorted(frontier.hosts_with_work(), key=lambda h: last_dispatch.get(h, 0.0)):
                        index = owner(host, config.fetchers)
                        while (per_host[host] < config.per_host_concurrency
                               and per_fetcher[index] < config.connections_per_fetcher
                               and (config.max_pages is None or attempts + len(pending) < config.max_pages)):
                            row = frontier.next_url(host)
                            if row is None:
                                break
                            frontier.claim(row[0], host)
                            if self.optout.match_url(row[0]):  # queued before a list named it: never fetched
                                frontier.finish(row[0], host, {"url": row[0], "outcome": "refused", "reason": "opted_out"},
                                                self.session)
                                continue
                            last_dispatch[host] = time.monotonic()
                            pending[pool.submit(index, row[0])] = (row[0], host, index)
                            per_host[host] += 1
                            per_fetcher[index] += 1
                    frontier.commit()
                if not pending:
                    break
                try:
                    done = pool.wait(list(pending), timeout=1.0)
                except KeyboardInterrupt:
                    if self.interrupted:
                        raise
                    self.interrupted = True
                    self.log("interrupted: finishing the requests in flight (Ctrl-C again to abandon them)")
                    continue
                for handle in done:
                    url, host, index = pending.pop(handle)
                    per_host[host] -= 1
                    per_fetcher[index] -= 1
                    try:
                        entry = pool.result(handle)
                    except Exception as err:  # noqa: BLE001 - a fetcher crash costs one URL, not the crawl
                        entry = {"url": url, "outcome": "error", "reason": "fetcher_failed",
                                 "detail": f"{type(err).__name__}: {err}"[:300]}
                    self.apply(entry)
                    if entry["outcome"] in NETWORK_OUTCOMES:
                        attempts += 1
                        self.session_pages += 1
                frontier.commit()
                if time.monotonic() - last_stats > _STATS_EVERY_S:
                    self.write_stats(completed=False)
                    last_stats = time.monotonic()
        finally:
            pool.close()
        return not self.interrupted and not frontier.hosts_with_work()

    def write_stats(self, completed: bool) -> dict:
        frontier = self.frontier
        seconds = time.monotonic() - self.started
        frontier.end_session(self.session, self.session_pages)
        frontier.commit()
        counters = frontier.counters()
        stats: dict = {"seeds": self.seeds, "completed": completed, "interrupted": self.interrupted,
                       "pages": 0, "fetched": 0,
                       "status": {}, "robots_disallowed": 0, "refused": {}, "aborted": {}, "errors": {},
                       "robots_requests": counters.get("robots_requests", 0),
                       "links_out_of_scope": counters.get("links_out_of_scope", 0),
                       "opted_out": counters.get("opted_out", 0),
                       "bytes": {"received": 0, "warc": 0}}
        for outcome, reason, n, received in frontier.outcome_counts():
            stats["bytes"]["received"] += received
            if outcome in NETWORK_OUTCOMES:
                stats["pages"] += n
            if outcome == "fetched":
                stats["fetched"] += n
            elif outcome == "robots_disallowed":
                stats["robots_disallowed"] += n
            else:
                bucket = {"refused": "refused", "aborted": "aborted"}.get(outcome, "errors")
                stats[bucket][reason or "unknown"] = stats[bucket].get(reason or "unknown", 0) + n
        for name, n in counters.items():
            if name.startswith("refused:"):
                stats["refused"][name.split(":", 1)[1]] = stats["refused"].get(name.split(":", 1)[1], 0) + n
        for status, n in frontier.status_counts():
            key = f"{status // 100}xx"
            stats["status"][key] = stats["status"].get(key, 0) + n
        warcs = sorted((self.out / WARC_DIR).glob("*.warc.gz")) if (self.out / WARC_DIR).exists() else []
        stats["bytes"]["warc"] = sum(p.stat().st_size for p in warcs)
        stats["warc_files"] = [str(p.relative_to(self.out)) for p in warcs if p.stat().st_size > 0]
        states = frontier.state_counts()
        stats["urls"] = {"seen": sum(states.values()), "queued": states.get("queued", 0) + states.get("claimed", 0),
                         "done": states.get("done", 0)}
        sessions = frontier.sessions()
        total_seconds = sum((ended or started) - started for _, started, ended, _ in sessions)
        stats["sessions"] = len(sessions)
        stats["seconds"] = round(total_seconds, 3)
        stats["session"] = {"id": self.session, "pages": self.session_pages, "seconds": round(seconds, 3),
                            "startup_s": round(self.startup_s, 3),
                            "pages_per_s": round(self.session_pages / seconds, 2) if seconds > 0 else 0.0}
        stats["pages_per_s"] = round(stats["pages"] / total_seconds, 2) if total_seconds > 0 else 0.0
        path = self.out / STATS_FILE
        partial = path.with_name(path.name + ".partial")
        partial.write_text(json.dumps(stats, indent=2) + "\n")
        partial.replace(path)
        return stats
