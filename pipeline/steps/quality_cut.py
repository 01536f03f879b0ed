"""The classifier's top-fraction cut: a global step over the run's curated/ documents after the writers.

`classifier.top_fraction` keeps the best-scored share of the run (DCLM keeps its top 10%), which needs
every score, so it cannot be a per-batch rule. The step reads (id, quality_model_score) of every
curated document, computes the cut with `filters.quality_model.percentile_cutoff` (the same pure
function a re-threshold calls), and rewrites each curated part without the documents below it;
those go to rejected/classifier-KEY.parquet (after curated/part-KEY.parquet) with keep=False and drop_reason `quality_not_top_fraction`.
The population is every document that passed the per-document rules (the step runs before dedup).
Ranking ties are broken by id, so the outcome does not depend on worker count or part layout.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.parquet as pq

from gristmill.filters.quality_model import Cutoff, percentile_cutoff
from gristmill.pipeline.steps.move_to_rejected import move_to_rejected
from gristmill.pipeline.engine.run_folder import RunFolder
from gristmill.schemas import columns as C
from gristmill.schemas import reasons as R

BATCH_ROWS = 4096


@dataclass
class CutResult:
    cutoff: Cutoff
    removed: int = 0
    removed_by_source: dict[str, int] = field(default_factory=dict)

    @property
    def dropped(self) -> Counter:
        return +Counter({R.QUALITY_NOT_TOP_FRACTION: self.removed})

    def to_dict(self) -> dict:
        return {**self.cutoff.to_dict(), "removed": self.removed,
                "removed_by_source": dict(sorted(self.removed_by_source.items()))}


def cut_run(run_dir, top_fraction: float, log=print) -> CutResult:
    """`run_dir`: a RunFolder or its path."""
    folder = RunFolder.of(run_dir)
    files = folder.parts()
    scores, ids = [], []
    for f in files:
        table = pq.read_table(f, columns=[C.ID, C.QUALITY_MODEL_SCORE])
        scores += table[C.QUALITY_MODEL_SCORE].to_pylist()
        ids += table[C.ID].to_pylist()
    cutoff = percentile_cutoff(scores, ids, top_fraction)
    result = CutResult(cutoff)
    by_source: Counter = Counter()
    folder.rejected.mkdir(parents=True, exist_ok=True)

    def below_cut(table: pa.Table, first: int) -> tuple[pa.Table, list]:
        return table, [None if cutoff.kept(score, doc_id) else R.QUALITY_NOT_TOP_FRACTION
                       for score, doc_id in zip(table[C.QUALITY_MODEL_SCORE].to_pylist(), table[C.ID].to_pylist())]

    for path in files:  # rejected/classifier-KEY.parquet, named after its curated part
        moved = move_to_rejected(path, folder.rejected_by("classifier", path), below_cut, batch_rows=BATCH_ROWS)
        result.removed += moved.removed
        by_source.update(moved.by_source)
    if result.removed != cutoff.documents - cutoff.keep:
        raise RuntimeError(f"classifier cut removed {result.removed} documents, expected "
                           f"{cutoff.documents - cutoff.keep}: are document ids unique?")
    result.removed_by_source = dict(by_source)
    log(f"gristmill: classifier kept the top {top_fraction:g} of {cutoff.documents} documents "
        f"({cutoff.keep}; cut at score {cutoff.score}), removed {result.removed}")
    return result
