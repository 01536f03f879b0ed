"""FilterUrls: drop pages by URL before extraction (cheap: a blocked page is never extracted).

A match sets `skip_reason` (`url_blocked` or `url_banned_word`), which the extraction passes over
and the decide step turns into the drop reason, and `url_filter_match` (the domain or word).
"""

from __future__ import annotations

from collections import Counter

import pyarrow as pa

from gristmill.filters.url_filter import UrlFilter
from gristmill.pipeline.stages.base import Stage, active_mask, set_column
from gristmill.schemas import columns as C
from gristmill.schemas import reasons as R
from gristmill.schemas.job import UrlFilterConfig


class FilterUrls(Stage):
    name = "url_filter"
    reads = (C.URL, C.SKIP_REASON)
    writes = (C.SKIP_REASON, C.URL_FILTER_MATCH)

    config: UrlFilterConfig

    def __init__(self, config: UrlFilterConfig | None = None):
        super().__init__(config or UrlFilterConfig())

    def setup(self) -> None:
        c = self.config
        self.filter = UrlFilter.from_files(c.blocklist_files, c.banned_word_files, c.default_lists)

    def process(self, table: pa.Table, counts: Counter) -> pa.Table:
        skip = table[C.SKIP_REASON].to_pylist()
        match: list[str | None] = [None] * table.num_rows
        for i, (is_doc, url) in enumerate(zip(active_mask(table).to_pylist(), table[C.URL].to_pylist())):
            if not is_doc:
                continue
            domain = self.filter.blocked_domain(url)
            word = None if domain else self.filter.banned_word(url)
            if domain or word:
                skip[i] = R.URL_BLOCKED if domain else R.URL_BANNED_WORD
                match[i] = domain or word
                counts[skip[i]] += 1
        table = set_column(table, C.SKIP_REASON, skip)
        return set_column(table, C.URL_FILTER_MATCH, match)
