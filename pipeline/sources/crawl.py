"""`type: crawl` sources: fetch the web first, then read what was fetched as WARC.

The crawl is the first step of the run, on the same Ray: `CrawlSource.materialize` crawls into the crawl
folder (RUN/crawl unless the job names one) and returns the `WarcSource` over the WARC files it wrote, so
crawl → WARC → pipeline is one path and every run can be repeated from its archive (`type: warc` on
RUN/crawl/warc/*.warc.gz). A crawl folder that exists is resumed by the crawler (nothing is fetched
twice). With `web_server` (the demo web, given by the api: this module knows no server) a local server is
started for the crawl and stopped after it; it is new each run (new ports), so its crawl always starts fresh.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gristmill.pipeline.engine.run_folder import RunFolder
from gristmill.pipeline.sources.warc import WarcSource
from gristmill.schemas.job import ExtractConfig

@dataclass
class CrawlSource:
    # CrawlConfig keys (validated when the job loads and again here).
    crawl: dict
    # Starts a local web server to crawl and returns it (with .seeds, .base_urls, .addresses the crawl must be
    # allowed, .title and .stop()); None: the web.
    web_server: Callable[[], Any] | None = None
    crawl_dir: str | None = None
    max_page_bytes: int = ExtractConfig().max_page_bytes
    type: str = field(default="crawl", init=False)
    # A crawl source has no paths until it has crawled.
    paths: list[str] = field(default_factory=list, init=False)

    def folder(self, output: Path) -> Path:
        return Path(self.crawl_dir) if self.crawl_dir else RunFolder(output).crawl

    def materialize(self, output: Path, log=print) -> tuple[WarcSource, dict]:
        """Crawl (or resume the crawl) and return the WARC source over its files, with the crawl's stats."""
        from gristmill.pipeline.crawl import CrawlConfig, crawl

        folder = self.folder(output)
        settings = dict(self.crawl)
        server = None
        if self.web_server is not None:
            if folder.exists():
                shutil.rmtree(folder)
            server = self.web_server()
            settings.setdefault("seeds", server.seeds)
            settings["allow_addresses"] = sorted({*settings.get("allow_addresses", []), *server.addresses})
            log(f"gristmill: serving {server.title} on {', '.join(server.base_urls.values())}")
        try:
            result = crawl(CrawlConfig(**settings), folder, log=log)
        finally:
            if server is not None:
                server.stop()
        stats = {"folder": str(folder), "completed": result.completed, **result.stats}
        log(f"gristmill: crawl {'complete' if result.completed else 'stopped'}: "
            f"{len(result.warc_paths)} WARC file(s) in {folder}")
        return WarcSource([str(p) for p in result.warc_paths], self.max_page_bytes), stats
