"""ScoreClassifier: a fastText quality model's score for every document (after the heuristic stage).

The model loads once per worker (setup); documents are scored in chunks of `classifier.batch_size`.
A `classifier.min_score` threshold is a decide rule; `classifier.top_fraction` is the global step
`pipeline/steps/quality_cut.py` after the writers, since it needs the whole run's scores.
"""

from __future__ import annotations

from collections import Counter

import pyarrow as pa

from gristmill.filters.quality_model import QualityModel
from gristmill.pipeline.stages.base import Stage, active_mask, set_column
from gristmill.schemas import columns as C
from gristmill.schemas.job import ClassifierConfig


class ScoreClassifier(Stage):
    name = "classifier"
    reads = (C.TEXT,)
    writes = (C.QUALITY_MODEL_SCORE,)

    config: ClassifierConfig

    def __init__(self, config: ClassifierConfig | None = None):
        super().__init__(config or ClassifierConfig())

    def rules(self) -> list:
        from gristmill.pipeline.stages.decide import classifier_rules

        return classifier_rules(self.config)

    def setup(self) -> None:
        self.model = QualityModel(self.config.model, self.config.positive_label)

    def process(self, table: pa.Table, counts: Counter) -> pa.Table:
        scores: list[float | None] = [None] * table.num_rows
        rows = [i for i, is_doc in enumerate(active_mask(table).to_pylist()) if is_doc]
        texts = table[C.TEXT].to_pylist()
        step = self.config.batch_size
        for start in range(0, len(rows), step):
            chunk = rows[start:start + step]
            for i, score in zip(chunk, self.model.score([texts[i] for i in chunk])):
                scores[i] = score
        counts["scored"] += len(rows)
        return set_column(table, C.QUALITY_MODEL_SCORE, scores)
