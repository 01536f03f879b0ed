"""A polite, safe crawler on Ray that writes what it fetched as WARC/1.1.

    from gristmill.pipeline.crawl import CrawlConfig, crawl
    result = crawl(CrawlConfig(seeds=["https://example.org/"], max_pages=100), "crawls/example")
    result.warc_paths  # -> WarcSource(paths=[...]) runs them through the pipeline

Modules: config (CrawlConfig), urls (canonical URLs, links), safety (which addresses may be connected
to), http (a capped HTTP/1.1 client), robots (robots.txt rules), store (WARC, journal and spool, and
recovery after a kill), fetcher (the per-host worker, a Ray actor), frontier (SQLite queue), crawler
(the driver: `crawl`).
"""

from gristmill.pipeline.crawl.config import CrawlConfig
from gristmill.pipeline.crawl.crawler import CrawlResult, crawl

__all__ = ["CrawlConfig", "CrawlResult", "crawl"]
