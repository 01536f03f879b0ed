"""ComputeDedupSignatures: the per-batch half of dedup. For every row that is still a document it writes
`exact_hash` and `minhash` (filters/minhash.py), before decide, so the signatures of rejected documents
exist too and a what-if with other thresholds can re-cluster without re-reading text."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from gristmill.filters import minhash
from gristmill.pipeline.stages.base import Stage, active_mask, set_column
from gristmill.schemas import columns as C
from gristmill.schemas.job import DedupConfig


class ComputeDedupSignatures(Stage):
    """Per batch, before decide: `exact_hash` and `minhash` for every row that is still a document."""

    name = "dedup"
    reads = (C.TEXT,)
    # The cluster columns start empty here, so curated/ and every rejected/ part share one schema;
    # `deduplicate_run` fills them.
    writes = (C.EXACT_HASH, C.MINHASH, C.DUP_CLUSTER_ID, C.DUP_CLUSTER_SIZE)

    def __init__(self, config: DedupConfig | None = None):
        super().__init__(config or DedupConfig())
        self.device: str | None = None  # a torch device for the permutation step, chosen in setup()

    def setup(self) -> None:
        self.device = None
        if self.config.gpu:
            try:
                import torch
            except ImportError:
                return
            self.device = "cuda" if torch.cuda.is_available() else None

    def process(self, table: pa.Table, counts: Counter) -> pa.Table:
        exact: list = [None] * table.num_rows
        signature: list = [None] * table.num_rows
        if table.num_rows:
            rows = np.flatnonzero(pc.fill_null(active_mask(table), False).to_numpy(zero_copy_only=False))
            # A text near max_page_bytes is signed a piece at a time from the column's own buffer (bounded
            # memory, the same values); the rows are taken inside, so no long text is copied.
            sigs, present, digests = minhash.document_signatures(table[C.TEXT], self.config.n, self.config.num_perm,
                                                                 self.config.seed, device=self.device, rows=rows)
            packed = minhash.signature_bytes(sigs)
            for i, (row, digest) in enumerate(zip(rows, digests)):
                exact[row] = digest
                signature[row] = packed[i] if present[i] else None
            counts["signatures"] += int(present.sum())
            counts["no_words"] += int(len(rows) - present.sum())
        table = set_column(table, C.EXACT_HASH, exact)
        table = set_column(table, C.DUP_CLUSTER_ID, [None] * table.num_rows)
        table = set_column(table, C.DUP_CLUSTER_SIZE, [None] * table.num_rows)
        return set_column(table, C.MINHASH, signature)
