"""Decontaminate: documents that share a word n-gram with an evaluation set are dropped as
`contaminated:<set>` (mode drop), or lose the overlapping spans (mode remove_spans).

The index (pipeline/lists/decontam_index.py) is built once, on the driver, by `prepare()` (the runner calls it
before the stages are shipped; constructing the stage reads nothing, so its rules cost nothing). It
travels to the workers once: put in the Ray object store when the stage is first serialized on a driver
with Ray running (each worker maps the arrays read-only from shared memory in `setup()`), else inside
the stage's pickled state. Never per batch.

Per batch, every document's n-grams are hashed together (filters/ngrams.py, Arrow + numpy) and looked up
with one `searchsorted`. Only documents with a hit are looked at one by one: in remove_spans mode their
words are re-read with offsets, the character spans covered by matching n-grams (overlapping ones merged)
are cut out right to left, and each cut is recorded in `text_edits` ({stage, kind: contaminated:<set>,
start, end}, offsets in the text this stage received, which are also valid before each cut since cuts go
right to left). Counters per set: `<set>:documents_hit`, `<set>:ngrams_matched`, and in remove_spans
mode `<set>:spans_removed` and `<set>:chars_removed`.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pyarrow as pa

from gristmill.filters.ngrams import WordHasher, merge_windows, ngram_hashes, ngram_hashes_batch, word_spans
from gristmill.pipeline.lists.decontam_index import EvalIndex, build_index
from gristmill.pipeline.stages.base import Stage, active_mask, set_column
from gristmill.schemas import columns as C
from gristmill.schemas import reasons as R
from gristmill.schemas.job import DecontaminateConfig


class Decontaminate(Stage):
    name = "decontaminate"
    reads = (C.TEXT,)

    def __init__(self, config: DecontaminateConfig, index: EvalIndex | None = None):
        super().__init__(config)
        self.index = index  # built by prepare() (or setup(), in a process without a driver)
        self._index_ref = None
        self.remove_spans = config.mode == "remove_spans"
        self.writes = (C.CONTAMINATED_BY, C.CONTAMINATION_NGRAM_COUNT) + ((C.TEXT, C.TEXT_EDITS) if self.remove_spans else ())
        self.reasons = {s.name: R.contaminated(s.name) for s in config.eval_sets}

    def prepare(self) -> None:
        """Build the evaluation-set index, once, on the driver (read every set: a bad path fails here)."""
        if self.index is None:
            self.index = build_index(self.config)

    def rules(self) -> list:
        if self.remove_spans:
            return []
        from gristmill.pipeline.stages.decide import Rule

        return [Rule(self.reasons[s.name], C.CONTAMINATED_BY, "==", s.name) for s in self.config.eval_sets]

    # -- shipping the index once ------------------------------------------------------------------------

    def __getstate__(self) -> dict:
        self.prepare()
        state = self.__dict__.copy()
        if isinstance(self.index, EvalIndex):
            try:
                import ray
            except ImportError:  # pragma: no cover - ray is a dependency
                return state
            if ray.is_initialized():
                job = ray.get_runtime_context().get_job_id()
                if self._index_ref is None or self._index_ref[0] != job:  # once per Ray session
                    self._index_ref = (job, ray.put(self.index))
                state["index"], state["_index_ref"] = self._index_ref[1], None
        return state

    def setup(self) -> None:
        self.prepare()  # in-process use without a run: built here
        if not isinstance(self.index, EvalIndex):  # an ObjectRef: fetched once per worker
            import ray

            self.index = ray.get(self.index)
        for name in self.index.names:  # the reason registry is per process
            R.contaminated(name)
        self.hasher = WordHasher()

    # -- per batch ----------------------------------------------------------------------------------------

    def process(self, table: pa.Table, counts: Counter) -> pa.Table:
        index: EvalIndex = self.index
        by: list = [None] * table.num_rows
        ngram_count: list = [None] * table.num_rows
        texts = table[C.TEXT].to_pylist() if self.remove_spans else None
        edits = (table[C.TEXT_EDITS].to_pylist() if C.TEXT_EDITS in table.column_names else [None] * table.num_rows) \
            if self.remove_spans else None
        rows = np.flatnonzero(np.asarray(active_mask(table).to_pylist(), dtype=bool) if table.num_rows else [])
        if len(rows):
            active_texts = table[C.TEXT].take(pa.array(rows, pa.int64()))
            hashes, doc = ngram_hashes_batch(active_texts, index.n, self.hasher)
            masks = index.lookup(hashes)
            hit = masks != 0
            hits_per_doc = np.bincount(doc[hit], minlength=len(rows))
            counts["documents_checked"] += len(rows)
            counts["ngrams_checked"] += len(hashes)
            for j, row in enumerate(rows):
                ngram_count[row] = int(hits_per_doc[j])
            for j in np.flatnonzero(hits_per_doc):
                row = int(rows[j])
                doc_masks = masks[hit][doc[hit] == j]
                union = int(np.bitwise_or.reduce(doc_masks))
                by[row] = index.first_set(union)
                for name in index.set_names(union):
                    counts[f"{name}:documents_hit"] += 1
                    counts[f"{name}:ngrams_matched"] += int(np.count_nonzero(doc_masks & np.uint64(1 << index.names.index(name))))
                if self.remove_spans and texts[row] is not None:
                    texts[row], cuts = self._cut(texts[row], counts)
                    edits[row] = list(edits[row] or []) + cuts
        table = set_column(table, C.CONTAMINATED_BY, by)
        table = set_column(table, C.CONTAMINATION_NGRAM_COUNT, ngram_count)
        if self.remove_spans:
            table = set_column(table, C.TEXT, texts)
            table = set_column(table, C.TEXT_EDITS, edits)
        return table

    def _cut(self, text: str, counts: Counter) -> tuple[str, list[dict]]:
        """`text` without the spans its matching n-grams cover, and the edits (ascending offsets)."""
        index: EvalIndex = self.index
        words, spans = word_spans(text)
        masks = index.lookup(ngram_hashes(words, index.n, self.hasher))
        starts = np.flatnonzero(masks)
        cuts = []
        for first, last in merge_windows(starts, index.n):
            inside = starts[(starts >= first) & (starts <= last)]
            union = int(np.bitwise_or.reduce(masks[inside]))
            start, end = spans[first][0], spans[last][1]
            cuts.append({"stage": self.name, "kind": self.reasons[index.first_set(union)], "start": start, "end": end})
            for name in index.set_names(union):
                counts[f"{name}:spans_removed"] += 1
                counts[f"{name}:chars_removed"] += end - start
        for cut in reversed(cuts):
            text = text[: cut["start"]] + text[cut["end"]:]
        return text, cuts
