"""TagRepresentation: which pronoun classes and identity descriptors each document mentions.

Writes three list columns (`pronoun_classes`, `identity_axes`, `identity_descriptors` as "axis:term")
and counts, per batch, the documents with each tag. Those counters, summed over the run, are the
representation report BEFORE filtering (every document that reached this stage); the runner computes
the AFTER report from curated/ once dedup is done (pipeline/representation.py). Never drops anything.
"""

from __future__ import annotations

from collections import Counter

import pyarrow as pa

from gristmill.pipeline.stages.base import Stage, active_mask, set_column
from gristmill.schemas import columns as C
from gristmill.schemas.job import BiasConfig


class TagRepresentation(Stage):
    name = "bias"
    reads = (C.TEXT,)
    writes = (C.PRONOUN_CLASSES, C.IDENTITY_AXES, C.IDENTITY_DESCRIPTORS)

    config: BiasConfig

    def __init__(self, config: BiasConfig | None = None):
        super().__init__(config or BiasConfig())

    def setup(self) -> None:
        from gristmill.filters.identity import IdentityLexicon

        path = self.config.identity_lexicon_file
        self.lexicon = IdentityLexicon.from_path(path) if path else IdentityLexicon.default()

    def process(self, table: pa.Table, counts: Counter) -> pa.Table:
        from gristmill.pipeline.representation import count_document

        n = table.num_rows
        pronouns, axes, descriptors = [None] * n, [None] * n, [None] * n
        for i, (is_doc, text) in enumerate(zip(active_mask(table).to_pylist(), table[C.TEXT].to_pylist())):
            if not is_doc:
                continue
            tags = self.lexicon.tag(text or "")
            pronouns[i] = list(tags.pronouns)
            axes[i] = list(tags.axes)
            descriptors[i] = [f"{axis}:{term}" for axis in tags.axes for term in tags.descriptors[axis]]
            count_document(counts, pronouns[i], descriptors[i])
        table = set_column(table, C.PRONOUN_CLASSES, pronouns)
        table = set_column(table, C.IDENTITY_AXES, axes)
        return set_column(table, C.IDENTITY_DESCRIPTORS, descriptors)
