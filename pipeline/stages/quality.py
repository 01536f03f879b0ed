"""ScoreQuality: heuristic quality scores from one shared split of each document.

The split (`filters.textsplit.SplitText`) is built once per document here and handed to every rule,
so adding a rule never re-tokenizes the text.
"""

from __future__ import annotations

import dataclasses
from collections import Counter

import pyarrow as pa

from gristmill.filters.gopher import GopherQuality, gopher_quality_scores
from gristmill.filters.textsplit import SplitText
from gristmill.pipeline.stages.base import Stage, active_mask, set_column
from gristmill.schemas import columns as C

_GOPHER_FIELDS = [f.name for f in dataclasses.fields(GopherQuality)]


class ScoreQuality(Stage):
    name = "quality"
    reads = (C.TEXT,)
    writes = tuple(_GOPHER_FIELDS)

    def rules(self) -> list:
        from gristmill.pipeline.decide import quality_rules

        return quality_rules(self.config)

    def process(self, table: pa.Table, counts: Counter) -> pa.Table:
        values = {name: [None] * table.num_rows for name in _GOPHER_FIELDS}
        for i, (is_doc, text) in enumerate(zip(active_mask(table).to_pylist(), table[C.TEXT].to_pylist())):
            if not is_doc:
                continue
            split = SplitText(text)
            scores = gopher_quality_scores(split)
            for name in _GOPHER_FIELDS:
                values[name][i] = getattr(scores, name)
            counts["scored"] += 1
        for name in _GOPHER_FIELDS:
            table = set_column(table, name, values[name])
        return table
