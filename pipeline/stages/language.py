"""ScoreLanguage: top language and its probability for every document (offline, py3langid)."""

from __future__ import annotations

from collections import Counter

import pyarrow as pa

from gristmill.filters.language import LanguageScorer
from gristmill.pipeline.stages.base import Stage, active_mask, set_column
from gristmill.schemas import columns as C


class ScoreLanguage(Stage):
    name = "language"
    reads = (C.TEXT,)
    writes = (C.LANGUAGE, C.LANGUAGE_SCORE)

    def rules(self) -> list:
        from gristmill.pipeline.stages.decide import language_rules

        return language_rules(self.config)

    def setup(self) -> None:
        self.scorer = LanguageScorer()

    def process(self, table: pa.Table, counts: Counter) -> pa.Table:
        languages: list[str | None] = [None] * table.num_rows
        scores: list[float | None] = [None] * table.num_rows
        for i, (is_doc, text) in enumerate(zip(active_mask(table).to_pylist(), table[C.TEXT].to_pylist())):
            if is_doc:
                languages[i], scores[i] = self.scorer.score(text)
                counts[f"language:{languages[i]}"] += 1
        table = set_column(table, C.LANGUAGE, languages)
        return set_column(table, C.LANGUAGE_SCORE, scores)
