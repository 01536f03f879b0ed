"""The classifier cut's selection (pipeline/steps/quality_cut.py): the k-th rank key found by radix
selection over byte keys equals percentile_cutoff over every (score, id), however few keys the driver may
sort and however the parts are grouped; the rank bytes sort as the rank key does."""

from __future__ import annotations

import math

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gristmill.filters.quality_model import percentile_cutoff, rank_key
from gristmill.pipeline.steps.quality_cut import cut_run, rank_bytes, select_cutoff
from gristmill.schemas import columns as C
from gristmill.schemas import reasons as R
from support.curated import scored_documents, write_scored_parts


def test_rank_bytes_sort_as_the_rank_key():
    docs = scored_documents(3000, 0) + [(None, None), (None, ""), (0.5, ""), (0.5, None), (0.0, "a"), (-0.0, "a"),
                                  (1e-310, "z"), (math.inf, "i"), (-math.inf, "j"), (0.5, "a\ud800")]
    by_key = sorted(docs, key=lambda d: rank_key(*d))
    by_bytes = sorted(docs, key=lambda d: rank_bytes(*d))
    assert [rank_key(*d) for d in by_bytes] == [rank_key(*d) for d in by_key]
    # equal keys, equal bytes; different keys, different bytes
    assert len({rank_bytes(*d) for d in docs}) == len({rank_key(*d) for d in docs})


@pytest.mark.parametrize("fetch_keys", [1, 7, 100_000])
@pytest.mark.parametrize("top_fraction", [0.001, 0.1, 0.5, 0.97, 1.0, "inside the identical keys"])
def test_selection_equals_percentile_cutoff_with_any_fetch_bound(tmp_path, fetch_keys, top_fraction):
    docs = scored_documents(1500, 1) + [(0.5, "same")] * 40  # a run of 40 identical keys
    if top_fraction == "inside the identical keys":
        first = sorted(rank_key(*d) for d in docs).index(rank_key(0.5, "same"))
        top_fraction = (first + 20) / len(docs)  # keep = the 21st of them
    paths = write_scored_parts(tmp_path, docs, parts=5)
    expected = percentile_cutoff([d[0] for d in docs], [d[1] for d in docs], top_fraction)
    got, passes = select_cutoff([paths[:2], paths[2:3], paths[3:]], len(docs), top_fraction, fetch_keys)
    assert (got.documents, got.keep, rank_key(got.score, got.id)) == (expected.documents, expected.keep,
                                                                     rank_key(expected.score, expected.id))
    assert passes == 1 if fetch_keys >= len(docs) else passes > 1


def test_the_cut_over_parts_moves_exactly_the_rows_below_it(tmp_path):
    docs = scored_documents(900, 2)
    docs = [(s, f"{i}:{d}") for i, (s, d) in enumerate(docs)]  # unique ids, as a run has them
    write_scored_parts(tmp_path, docs, parts=4)
    result = cut_run(tmp_path, 0.3, log=lambda m: None, fetch_keys=5)
    expected = percentile_cutoff([d[0] for d in docs], [d[1] for d in docs], 0.3)
    kept = pa.concat_tables(pq.read_table(p) for p in sorted((tmp_path / "curated").glob("*.parquet")))
    moved = pa.concat_tables(pq.read_table(p) for p in sorted((tmp_path / "rejected").glob("classifier-*.parquet")))
    assert kept.num_rows == expected.keep and moved.num_rows == len(docs) - expected.keep == result.removed
    assert set(kept[C.ID].to_pylist()) == {d[1] for d in docs if expected.kept(*d)}
    assert set(moved[C.DROP_REASON].to_pylist()) == {R.QUALITY_NOT_TOP_FRACTION} and not any(moved[C.KEEP].to_pylist())
    assert sum(result.removed_by_source.values()) == result.removed


def test_a_rewrite_task_run_again_counts_what_it_moved_the_first_time(tmp_path):
    """A retried task (its worker died after it had cut some parts) reports the same removals."""
    from gristmill.filters.quality_model import percentile_cutoff
    from gristmill.pipeline.steps.quality_cut import _rewrite_task

    docs = [(s, f"{i}:{d}") for i, (s, d) in enumerate(scored_documents(300, 4))]
    paths = write_scored_parts(tmp_path, docs, parts=3)
    (tmp_path / "rejected").mkdir()
    parts = [(p, str(tmp_path / "rejected" / f"classifier-{k:05d}.parquet")) for k, p in enumerate(paths)]
    cutoff = percentile_cutoff([d[0] for d in docs], [d[1] for d in docs], 0.4)
    first = _rewrite_task(parts[:2], cutoff)  # the try that died after two parts
    assert 0 < first["removed"] < len(docs) - cutoff.keep
    again = _rewrite_task(parts, cutoff)  # the retry: all three parts
    assert again["removed"] == len(docs) - cutoff.keep
    assert sum(again["by_source"].values()) == again["removed"]
