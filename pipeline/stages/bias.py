"""TagRepresentation: which pronoun classes and identity descriptors each document uses for people.

Writes the tags as list columns (`pronoun_classes`, `identity_axes`, `identity_descriptors` as
"axis:term"), beside each list the number of sentences that use each tag for people (mentions), and
the document's sentence count. A term counts only where it refers to people (filters/identity.py:
"Black voters" tags race, "black coffee" nothing). Per batch it counts the documents and the mentions of
each tag; those counters, summed over the run, are the representation report BEFORE filtering (every
document that reached this stage); the runner computes the AFTER report from curated/ once dedup is done
(pipeline/steps/representation.py). Never drops anything.
"""

from __future__ import annotations

from collections import Counter

import pyarrow as pa

from gristmill.filters.identity import IdentityLexicon
from gristmill.filters.textsplit import SplitText
from gristmill.pipeline.steps.representation import DocumentTags, count_document
from gristmill.pipeline.stages.base import Stage, active_mask, set_column
from gristmill.schemas import columns as C
from gristmill.schemas.job import BiasConfig


class TagRepresentation(Stage):
    name = "bias"
    reads = (C.TEXT,)
    writes = (C.PRONOUN_CLASSES, C.IDENTITY_AXES, C.IDENTITY_DESCRIPTORS, C.PRONOUN_SENTENCE_COUNTS,
              C.IDENTITY_AXIS_SENTENCE_COUNTS, C.IDENTITY_DESCRIPTOR_SENTENCE_COUNTS, C.REPRESENTATION_SENTENCE_COUNT)

    config: BiasConfig

    def __init__(self, config: BiasConfig | None = None):
        super().__init__(config or BiasConfig())

    def setup(self) -> None:
        path = self.config.identity_lexicon_file
        self.lexicon = IdentityLexicon.from_path(path) if path else IdentityLexicon.default()

    def process(self, table: pa.Table, counts: Counter) -> pa.Table:
        columns: dict[str, list] = {name: [None] * table.num_rows for name in self.writes}
        for i, (is_doc, text) in enumerate(zip(active_mask(table).to_pylist(), table[C.TEXT].to_pylist())):
            if not is_doc:
                continue
            doc = DocumentTags.of(self.lexicon.tag(SplitText(text)))
            count_document(counts, doc)
            for name, value in doc.columns().items():
                columns[name][i] = value
        for name in self.writes:
            table = set_column(table, name, columns[name])
        return table
