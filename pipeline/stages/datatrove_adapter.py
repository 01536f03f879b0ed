"""DatatroveStep: any datatrove `PipelineStep` that maps documents to documents, as a gristmill stage.

Filters (GopherQualityFilter, URLFilter, …), formatters (FTFYFormatter, PIIFormatter, …) and
extractors run on Ray inside gristmill's actors, on the rows that are still documents:
- a document the step drops becomes `skip_reason = "<StepClass>:<its reason>"` (`<StepClass>:dropped`
  when the step gives none), which the decide step turns into the drop reason, so it lands in
  rejected/ and the ledger still sums; later stages skip it, as they would in datatrove;
- a document whose text the step rewrites gets an edit in `text_edits` (kind `rewrite`, the changed
  span between the common prefix and suffix), never the old text;
- the step's own counters (datatrove's `stat_update`) merge into stats.json as `datatrove:<name>`.
Reasons are captured through datatrove's exclusion-writer hook, so filters need no changes.
"""

from __future__ import annotations

from collections import Counter

import pyarrow as pa

from gristmill.pipeline.stages.base import Stage, active_mask, set_column
from gristmill.schemas import columns as C
from gristmill.schemas import reasons as R


class _ReasonCapture:
    """Stands in for a datatrove DiskWriter: records why each excluded document was dropped."""

    def __init__(self):
        self.reasons: dict[str, str] = {}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def write(self, document, rank: int = 0, **kwargs):
        self.reasons[document.id] = document.metadata.get("filter_reason") or "dropped"


def _changed_span(old: str, new: str) -> tuple[int, int]:
    """[start, end) in `old` of the part that differs from `new` (common prefix and suffix trimmed)."""
    limit = min(len(old), len(new))
    start = 0
    while start < limit and old[start] == new[start]:
        start += 1
    end_old, end_new = len(old), len(new)
    while end_old > start and end_new > start and old[end_old - 1] == new[end_new - 1]:
        end_old, end_new = end_old - 1, end_new - 1
    return start, end_old


class DatatroveStep(Stage):
    reads = (C.TEXT, C.TEXT_EDITS, C.SKIP_REASON)
    writes = (C.TEXT, C.TEXT_EDITS, C.SKIP_REASON)

    def __init__(self, step, name: str | None = None):
        super().__init__(step)
        self.name = name or type(step).__name__

    def setup(self) -> None:
        R.register(f"{self.name}:dropped", self.name, f"datatrove {self.name} dropped the document")

    def process(self, table: pa.Table, counts: Counter) -> pa.Table:
        from datatrove.data import Document
        from datatrove.pipeline.filters.base_filter import BaseFilter
        from datatrove.utils.stats import Stats

        step = self.config
        active = active_mask(table).to_pylist()
        texts = table[C.TEXT].to_pylist()
        ids = table[C.ID].to_pylist()
        urls = table[C.URL].to_pylist()
        edits = table[C.TEXT_EDITS].to_pylist()
        skip = table[C.SKIP_REASON].to_pylist()
        documents = [Document(text=texts[i], id=ids[i], metadata={"url": urls[i]}) for i in range(table.num_rows) if active[i]]

        capture = _ReasonCapture()
        if isinstance(step, BaseFilter):
            step.exclusion_writer = capture
        step.stats = Stats(str(step))  # per batch, so each batch reports only its own counts
        survivors = {doc.id: doc.text for doc in step.run(iter(documents), rank=0, world_size=1)}
        for key, metric in step.stats.stats.items():
            counts[f"datatrove:{key}"] += int(metric.total)

        for i in range(table.num_rows):
            if not active[i]:
                continue
            if ids[i] not in survivors:
                skip[i] = f"{self.name}:{capture.reasons.get(ids[i], 'dropped')}"
                counts[skip[i]] += 1
            elif survivors[ids[i]] != texts[i]:
                start, end = _changed_span(texts[i], survivors[ids[i]])
                edits[i] = [*(edits[i] or []), {"stage": self.name, "kind": "rewrite", "start": start, "end": end}]
                texts[i] = survivors[ids[i]]
                counts["rewritten"] += 1
        table = set_column(table, C.TEXT, texts)
        table = set_column(table, C.TEXT_EDITS, edits)
        return set_column(table, C.SKIP_REASON, skip)
