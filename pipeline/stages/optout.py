"""Opt-out stages: documents on the job's opt-out lists (pipeline/lists/optout.py) leave as `opted_out`.

Two stages, each where its check is cheapest:
- `FilterOptedOutUrls`, right after the source and before extraction: domain, prefix, URL and id entries
  need only the record's URL and id, and a `sha256:` entry can name the HTTP body itself, so an
  opted-out page is never extracted or scored;
- `FilterOptedOutContent`, right after extraction: writes `text_sha256` for every document (what
  `sha256:` entries and a later takedown name) and drops those whose hash is listed (their text is
  cleared, so rejected/ does not keep it).
A match becomes the row's `skip_reason` (so no later stage spends time on it, and decide's annotate mode
drops it too: an opt-out is not a threshold) and `opt_out_match` records the entry that matched.
"""

from __future__ import annotations

from collections import Counter

import pyarrow as pa

from gristmill.pipeline.lists.optout import OptOutList, text_sha256
from gristmill.pipeline.stages.base import Stage, active_mask, set_column
from gristmill.schemas import columns as C
from gristmill.schemas import reasons as R


def _previous_matches(table: pa.Table) -> list:
    return table[C.OPT_OUT_MATCH].to_pylist() if C.OPT_OUT_MATCH in table.column_names else [None] * table.num_rows


class _OptOutStage(Stage):
    """`config`: an `optout.OptOutLists` (or an `OptOutList` already read)."""

    def lists(self) -> OptOutList:
        return self.config.get() if hasattr(self.config, "get") else self.config

    def prepare(self) -> None:
        self.lists()


class FilterOptedOutUrls(_OptOutStage):
    """Before extraction: rows whose URL, id or HTTP body hash is on an opt-out list are skipped as `opted_out`."""

    name = "optout"
    reads = (C.ID, C.URL, C.CONTENT, C.SKIP_REASON)
    writes = (C.SKIP_REASON, C.OPT_OUT_MATCH)

    def process(self, table: pa.Table, counts: Counter) -> pa.Table:
        optout: OptOutList = self.lists()
        skip = table[C.SKIP_REASON].to_pylist()
        matches = _previous_matches(table)
        bodies = table[C.CONTENT] if optout.sha256 and C.CONTENT in table.column_names else None
        for i, (is_doc, url, doc_id) in enumerate(zip(active_mask(table).to_pylist(), table[C.URL].to_pylist(),
                                                      table[C.ID].to_pylist())):
            if not is_doc:
                continue
            entry = optout.match_id(doc_id) or optout.match_url(url)
            if entry is None and bodies is not None:
                entry = optout.match_body(bodies[i].as_py())
            if entry is not None:
                skip[i], matches[i] = R.OPTED_OUT, entry
                counts[R.OPTED_OUT] += 1
                counts[f"by:{entry.split(':', 1)[0]}"] += 1  # domain, prefix, url, id or sha256 (the body)
        table = set_column(table, C.SKIP_REASON, skip)
        return set_column(table, C.OPT_OUT_MATCH, matches)


class FilterOptedOutContent(_OptOutStage):
    """After extraction: `text_sha256` for every document; listed hashes are skipped as `opted_out`."""

    name = "optout_content"
    reads = (C.TEXT, C.SKIP_REASON)
    writes = (C.TEXT, C.TEXT_SHA256, C.SKIP_REASON, C.OPT_OUT_MATCH)

    def process(self, table: pa.Table, counts: Counter) -> pa.Table:
        optout: OptOutList = self.lists()
        skip = table[C.SKIP_REASON].to_pylist()
        matches = _previous_matches(table)
        digests: list = [None] * table.num_rows
        texts = table[C.TEXT].to_pylist()
        for i, (is_doc, text) in enumerate(zip(active_mask(table).to_pylist(), texts)):
            if not is_doc or text is None:
                continue
            digests[i] = text_sha256(text)
            entry = optout.match_text_hash(digests[i])
            if entry is not None:
                skip[i], matches[i], texts[i] = R.OPTED_OUT, entry, None  # its text is not kept in rejected/
                counts[R.OPTED_OUT] += 1
                counts["by:sha256"] += 1
        table = set_column(table, C.TEXT, texts)
        table = set_column(table, C.TEXT_SHA256, digests)
        table = set_column(table, C.SKIP_REASON, skip)
        return set_column(table, C.OPT_OUT_MATCH, matches)
