"""What-if thresholds: recomputing decisions from stored scores equals a full rerun with the new threshold,
including a duplicate whose kept copy is dropped by the new threshold; settings that cannot be
recomputed are refused with a clear message."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from gristmill.pipeline.cli.app import app
from gristmill.pipeline.tools.rethreshold import RethresholdError, rethreshold
from gristmill.schemas import columns as C

from support.report import quickstart_run


@pytest.fixture(scope="module")
def base_run(ray_local, tmp_path_factory) -> Path:
    return quickstart_run(tmp_path_factory)


def _keeper_dropping_min_words(run_dir: Path) -> tuple[int, str]:
    """A min_words that drops the kept copy of a near-duplicate cluster but not its duplicate (the
    syndicated copies carry a few more words), and that duplicate's id."""
    curated = pq.read_table(run_dir / "curated", columns=[C.ID, C.WORD_COUNT]).to_pylist()
    words = {r[C.ID]: r[C.WORD_COUNT] for r in curated}
    duplicates = pq.read_table(run_dir / "rejected" / "dedup-0000000-00000-000.parquet",
                               columns=[C.ID, C.WORD_COUNT, C.DUP_CLUSTER_ID, C.DROP_REASON]).to_pylist()
    candidates = sorted((words[d[C.DUP_CLUSTER_ID]] + 1, d[C.ID]) for d in duplicates
                        if d[C.WORD_COUNT] > words[d[C.DUP_CLUSTER_ID]])
    assert candidates, "the demo web plants near-duplicates with a few extra words"
    return candidates[0]


def _tables(folder: Path) -> dict[str, object]:
    return {p.name: pq.read_table(p) for p in sorted(folder.glob("*.parquet"))}


def test_rethreshold_equals_full_rerun(base_run, tmp_path_factory, tmp_path):
    min_words, promoted = _keeper_dropping_min_words(base_run)
    rerun = quickstart_run(tmp_path_factory, {"quality": {"min_words": min_words}})
    result = rethreshold(base_run, [f"quality.min_words={min_words}"], write=tmp_path / "what-if", log=lambda m: None)

    rerun_stats = json.loads((rerun / "stats.json").read_text())
    rerun_kept = pq.read_table(rerun / "curated", columns=[C.ID])[C.ID].to_pylist()
    assert result.kept_ids == rerun_kept  # same kept ids, in the same order
    assert promoted in rerun_kept  # its kept copy now fails min_words: the duplicate is kept instead
    assert result.ledger.to_dict() == rerun_stats["ledger"]
    assert result.funnel == rerun_stats["funnel"]
    assert result.dedup["cluster_sizes"] == rerun_stats["dedup"]["cluster_sizes"]
    # The written set is the rerun's, table for table (every column, every row, same part files).
    for folder in ("curated", "rejected"):
        ours, theirs = _tables(tmp_path / "what-if" / folder), _tables(rerun / folder)
        assert ours.keys() == theirs.keys()
        assert all(ours[name].equals(theirs[name]) for name in ours), folder
    written = json.loads((tmp_path / "what-if" / "stats.json").read_text())
    assert written["breakdown"] == rerun_stats["breakdown"] and written["scores"] == rerun_stats["scores"]
    assert result.newly_kept >= 1 and result.newly_dropped >= 1


@pytest.mark.parametrize("setting, message", [
    ("quality.c4_min_words_per_line=5", "sets no decide threshold"),
    ("quality.c4_bad_words_file=/tmp/words.txt", "which this run did not compute"),
    ("extract.favor_precision=true", "extraction options change the text"),
    ("dedup.num_perm=64", "changes the MinHash signatures"),
    ("dedup.n=3", "changes the MinHash signatures"),
    ("tokenize.vocab_size=1000", "do not change which documents are kept"),
    ("quality.min_wrods=10", "unknown key"),
    ("quality.min_words=many", "quality.min_words"),
    ("quality.min_words", "expected KEY=VALUE"),
    ("sources=[]", "which records are read"),
])
def test_refuses_what_it_cannot_recompute(base_run, setting, message):
    with pytest.raises(RethresholdError, match=message.replace("(", r"\(")):
        rethreshold(base_run, [setting], log=lambda m: None)


def test_cli_prints_the_funnel_change(base_run):
    result = CliRunner().invoke(app, ["rethreshold", str(base_run), "--set", "dedup.near=false"])
    assert result.exit_code == 0, result.output
    stats = json.loads((base_run / "stats.json").read_text())
    kept, near = stats["ledger"]["kept"], stats["dedup"]["near_removed"]
    # without near dedup the near-duplicates come back (the planted clusters are pairs)
    assert f"kept: {kept} → {kept + near} (+{near}); {near} newly kept, 0 newly dropped" in result.output
    refused = CliRunner().invoke(app, ["rethreshold", str(base_run), "--set", "extract.timeout_s=1"])
    assert refused.exit_code == 2 and "cannot recompute extract.timeout_s" in refused.output


def _assert_what_if_equals_rerun(tmp_path_factory, tmp_path, updates: dict, key: str, value) -> None:
    base = quickstart_run(tmp_path_factory, updates)
    section, field = key.split(".")
    rerun = quickstart_run(tmp_path_factory, {**updates, section: {**updates.get(section, {}), field: value}})
    result = rethreshold(base, [f"{key}={value}"], write=tmp_path / "what-if", log=lambda m: None)
    rerun_kept = pq.read_table(rerun / "curated", columns=[C.ID])[C.ID].to_pylist()
    base_kept = pq.read_table(base / "curated", columns=[C.ID])[C.ID].to_pylist()
    assert rerun_kept != base_kept, f"{key}={value} should change the kept set"
    assert result.kept_ids == rerun_kept
    assert result.ledger.to_dict() == json.loads((rerun / "stats.json").read_text())["ledger"]


def test_top_fraction_what_if_equals_rerun(ray_local, tmp_path_factory, tmp_path):
    """The quality classifier's global top-fraction cut, replayed from the stored classifier scores."""
    _assert_what_if_equals_rerun(tmp_path_factory, tmp_path, {"classifier": {"top_fraction": 0.5}}, "classifier.top_fraction", 0.3)


def test_toxicity_what_if_equals_rerun(ray_local, tmp_path_factory, tmp_path):
    """A toxicity threshold: the key is found generically (the toxicity field rethreshold accepts), its
    new value is the median stored toxicity score, so the kept set changes."""
    from gristmill.pipeline.tools.rethreshold import check_recomputable, decide_rules, load_run_job

    base = quickstart_run(tmp_path_factory, {"toxicity": {}})
    job = load_run_job(base)
    table = pq.read_table(base / "curated").to_pylist() + pq.read_table(base / "rejected").to_pylist()
    columns = {rule.column for rule in decide_rules(job) if "tox" in rule.column}
    assert columns, "the toxicity stage declares a rule on its score"
    column = sorted(columns)[0]
    scores = sorted(r[column] for r in table if r.get(column) is not None)
    value = round(scores[len(scores) // 2], 6)
    stored = {c: True for c in table[0]}
    for field, current in job.toxicity.model_dump().items():
        if isinstance(current, float) and not isinstance(current, bool):
            try:
                check_recomputable(job, f"toxicity.{field}", value, stored)
            except RethresholdError:
                continue
            _assert_what_if_equals_rerun(tmp_path_factory, tmp_path, {"toxicity": {}}, f"toxicity.{field}", value)
            return
    pytest.fail("no toxicity threshold key is accepted by rethreshold")
