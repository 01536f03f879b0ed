"""Faults and resume, with real processes: `gristmill run` subprocesses (each its own local Ray) killed
with SIGKILL at named points (pipeline/engine/faults.py), Ray workers killed mid-stage, and `--resume`; every
finished run's curated/rejected/quarantine Parquet and shards must equal a clean run's byte for byte.

CI runs a reduced matrix (one chained driver-kill test, one run with ten worker kills at once on four
workers). GRISTMILL_FULL_FAULTS=1 runs every point on its own (`faults_full`, a few minutes each)."""

from __future__ import annotations

import json
import os

import pyarrow.parquet as pq
import pytest

from gristmill.pipeline.engine.api import run
from gristmill.schemas import columns as C
from gristmill.schemas.job import JobError, load_job

from support.reliability import DEMO, assert_same_outputs, gristmill_run, small_job, split_warc

KILLED = -9  # the subprocess's return code after SIGKILL
full = pytest.mark.skipif(not os.environ.get("GRISTMILL_FULL_FAULTS"), reason="full fault matrix: GRISTMILL_FULL_FAULTS=1")
WORKER_POINTS = ["read@1", "stage:extract@2", "stage:language@1", "stage:quality@2", "stage:dedup@1", "stage:decide@2",
                 "write:batch@2", "write:input@1", "tokenize:encode@1", "tokenize:write@1"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("faults")
    inputs = split_warc(DEMO, folder / "in", 4)
    return folder, inputs, small_job(folder, inputs)


@pytest.fixture(scope="module")
def clean(corpus, ray_local):
    folder, _, job = corpus
    return run(load_job(job), output=folder / "clean", log=lambda m: None, max_workers=1).output


def _stats(output):
    return json.loads((output / "stats.json").read_text())


def _check(result, expect_killed: bool):
    if expect_killed:
        assert result.returncode == KILLED, result.stdout[-2000:] + result.stderr[-2000:]
    else:
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def _assert_complete_and_equal(output, clean):
    assert_same_outputs(output, clean)
    assert not (output / ".work").exists()
    ids = pq.read_table(output / "curated", columns=[C.ID])[C.ID].to_pylist()
    assert len(ids) == len(set(ids))  # no document twice
    assert _stats(output)["ledger"] == _stats(clean)["ledger"]


def test_driver_killed_three_times_then_resumed(corpus, clean, tmp_path):
    """Killed mid-extraction (after it received the 2nd of 4 inputs' completion records), then resumed and
    killed after dedup rewrote curated/ in place, then resumed and killed mid-tokenization (after the first
    shard), then resumed to the end."""
    _, inputs, job = corpus
    out = tmp_path / "run"
    _check(gristmill_run(job, out, fault="driver:split@2"), expect_killed=True)
    done = sorted(p.name for p in (out / ".work" / "done").iterdir() if p.suffix == ".json")
    # two records received; the workers may finish the splits they hold before the dying driver's Ray stops them
    assert 2 <= len(done) and set(done) <= {f"{i:07d}-00000.json" for i in range(4)}, done
    assert not (out / "stats.json").exists()

    _check(gristmill_run(job, out, resume=True, fault="dedup:rewrite"), expect_killed=True)
    assert len(list((out / ".work" / "done").iterdir())) == 4 and not (out / ".work" / "steps" / "dedup.json").exists()

    _check(gristmill_run(job, out, resume=True, fault="tokenize:shard@1"), expect_killed=True)
    assert (out / ".work" / "steps" / "dedup.json").exists() and not (out / ".work" / "steps" / "tokenize.json").exists()

    _check(gristmill_run(job, out, resume=True), expect_killed=False)
    _assert_complete_and_equal(out, clean)
    assert _stats(out)["run"] == {**_stats(out)["run"], "resumed": True, "inputs": 4, "inputs_skipped": 4,
                                  "records_skipped": 276}


def test_worker_killed_mid_write_then_driver_killed_then_resumed(corpus, clean, tmp_path):
    """A worker dies with its split's part files open (Ray retries the split), then the driver dies after
    its first completion record. What a resume finds is made worse on purpose: a stray part file no record
    lists (a worker killed mid-write on a store without atomic renames) and a listed part file cut short.
    The resume redoes what is not proven done, and the bytes are a clean run's."""
    _, _, job = corpus
    out, markers = tmp_path / "run", tmp_path / "markers"
    _check(gristmill_run(job, out, fault="write:batch@1,driver:split@1", marker=markers), expect_killed=True)
    assert sorted(p.name for p in markers.iterdir()) == ["driver_split@1", "write_batch@1"]
    records = sorted((out / ".work" / "done").glob("*.json"))
    assert records
    listed = json.loads(records[0].read_text())["parts"]
    torn = out / ".work" / "parts" / listed[0]["file"]
    torn.write_bytes(torn.read_bytes()[: listed[0]["bytes"] // 2])
    stray = out / ".work" / "parts" / "curated" / "part-0000003-00000-007.parquet"
    stray.write_bytes(b"PAR1 half a file")
    _check(gristmill_run(job, out, resume=True), expect_killed=False)
    _assert_complete_and_equal(out, clean)
    assert _stats(out)["run"]["inputs_skipped"] == len(records) - 1  # the torn split was redone
    assert _stats(out)["run"]["splits_skipped"] == len(records) - 1  # one split per input here


def test_driver_killed_mid_exchange_and_a_shard_unit_worker_killed_then_resumed(corpus, tmp_path):
    """Tokenization in pieces (an encode task per curated row group, several shard units): the driver dies
    after the 2nd encode record; resumed, a unit task's worker dies after writing a shard (Ray retries the
    unit) and the driver dies after receiving its 3rd shard; resumed again, only what was not recorded is
    redone, and the bytes are a clean run's."""
    folder, inputs, _ = corpus
    job = small_job(tmp_path, inputs, tokenize={"shard_tokens": 1024, "encode_task_bytes": 4096})
    clean = run(load_job(job), output=tmp_path / "clean", log=lambda m: None, max_workers=1)
    exchange = _stats(clean.output)["run"]["tokenize"]
    assert exchange["encode_tasks"] >= 3 and exchange["units"] >= 2, exchange
    out, markers, work = tmp_path / "run", tmp_path / "markers", tmp_path / "run" / ".work" / "tokenize"
    _check(gristmill_run(job, out, fault="tokenize:encoded@2"), expect_killed=True)
    assert len(list((work / "encoded").glob("*.json"))) >= 2 and not (out / ".work" / "steps" / "tokenize.json").exists()

    _check(gristmill_run(job, out, resume=True, fault="tokenize:write@2,tokenize:shard@3", marker=markers),
           expect_killed=True)
    assert sorted(p.name for p in markers.iterdir()) == ["tokenize_shard@3", "tokenize_write@2"]
    assert list((work / "units").glob("*.json")) and not (out / ".work" / "steps" / "tokenize.json").exists()

    _check(gristmill_run(job, out, resume=True), expect_killed=False)
    _assert_complete_and_equal(out, clean.output)
    resumed = _stats(out)["run"]["tokenize"]
    assert resumed["encode_tasks_run"] == 0 and 0 < resumed["units_run"] < resumed["units"]


def test_resume_of_a_complete_run_does_nothing_and_another_job_is_refused(corpus, clean, tmp_path):
    _, inputs, job = corpus
    result = gristmill_run(job, clean, resume=True)  # a complete run: nothing to do, nothing touched
    _check(result, expect_killed=False)
    assert "nothing to resume" in result.stdout
    out = tmp_path / "run"
    (out / ".work").mkdir(parents=True)
    (out / ".work" / "run.json").write_text('{"job": "another", "inputs": []}')
    with pytest.raises(JobError, match="another job or other inputs"):
        run(load_job(job), output=out, resume=True, log=lambda m: None)
    with pytest.raises(JobError, match="no interrupted run"):
        run(load_job(job), output=tmp_path / "empty", resume=True, log=lambda m: None)


def test_ten_worker_kills_on_four_workers_give_clean_bytes(corpus, clean, tmp_path):
    """Stage actors SIGKILLed once each while reading, in five stages and writing (a marker file makes the
    retry live), and a tokenize encode task and shard-unit task killed; Ray restarts the actors and retries
    their splits and tasks; four workers against the clean run's one."""
    folder, inputs, _ = corpus
    job = small_job(tmp_path, inputs, num_cpus=4)
    markers = tmp_path / "markers"
    result = gristmill_run(job, tmp_path / "run", fault=",".join(WORKER_POINTS), marker=markers)
    _check(result, expect_killed=False)
    fired = sorted(p.name for p in markers.iterdir())
    assert fired == sorted(p.replace(":", "_") for p in WORKER_POINTS)  # every fault really happened
    _assert_complete_and_equal(tmp_path / "run", clean)
    assert _stats(tmp_path / "run")["stages"][0]["counts"]["records_read"] == 276  # retries not double counted


# --- the full matrix (GRISTMILL_FULL_FAULTS=1) -------------------------------------------------------

DRIVER_POINTS = ["driver:split@1", "driver:split@3", "driver:split@4", "dedup:bands", "dedup:components",
                 "dedup:members", "dedup:keepers", "dedup:rewrite", "tokenize:tokenizer", "tokenize:encoded@1",
                 "tokenize:spill", "tokenize:shard@1", "tokenize:shard@6", "finish"]


@full
@pytest.mark.parametrize("point", DRIVER_POINTS)
def test_driver_killed_at_point_then_resumed(corpus, clean, tmp_path, point):
    _, _, job = corpus
    out = tmp_path / "run"
    _check(gristmill_run(job, out, fault=point), expect_killed=True)
    _check(gristmill_run(job, out, resume=True), expect_killed=False)
    _assert_complete_and_equal(out, clean)


@full
@pytest.mark.parametrize("point", [*WORKER_POINTS, "read@2", "stage:extract@1", "stage:quality@1", "stage:decide@1"])
def test_worker_killed_at_point(corpus, clean, tmp_path, point):
    _, inputs, _ = corpus
    job = small_job(tmp_path, inputs, num_cpus=2)
    markers = tmp_path / "markers"
    _check(gristmill_run(job, tmp_path / "run", fault=point, marker=markers), expect_killed=False)
    assert len(list(markers.iterdir())) == 1
    _assert_complete_and_equal(tmp_path / "run", clean)


@full
@pytest.mark.parametrize("workers", [1, 2, 4])
def test_same_bytes_for_1_2_4_workers_and_reruns(corpus, clean, tmp_path, workers):
    _, inputs, _ = corpus
    job = small_job(tmp_path, inputs, num_cpus=workers)
    _check(gristmill_run(job, tmp_path / "run"), expect_killed=False)
    _assert_complete_and_equal(tmp_path / "run", clean)


@full
def test_split_inputs_same_bytes_for_1_2_4_workers(corpus, tmp_path):
    """Every input cut into 8 KiB splits: byte-identical outputs whatever the worker count."""
    _, inputs, _ = corpus
    outputs = []
    for workers in (1, 2, 4):
        (tmp_path / f"w{workers}").mkdir()
        job = small_job(tmp_path / f"w{workers}", inputs, num_cpus=workers, split_bytes=8192)
        _check(gristmill_run(job, tmp_path / f"run{workers}"), expect_killed=False)
        outputs.append(tmp_path / f"run{workers}")
        assert _stats(outputs[-1])["run"]["splits"] > 20
    assert_same_outputs(outputs[0], outputs[1])
    assert_same_outputs(outputs[0], outputs[2])



def test_a_part_of_the_recorded_size_whose_tail_was_never_written_is_not_done(tmp_path):
    """read_done checks each listed part's size and its Parquet frame (12 bytes read), not its sha256
    (see read_done): a file of the right size whose last bytes are zeros, as a crash can leave one, is
    not taken as done."""
    import hashlib

    import pyarrow as pa

    from gristmill.pipeline.engine.writers import DONE, PARTS, read_done, split_name
    from gristmill.schemas.stats import Ledger

    part = tmp_path / PARTS / "curated" / f"part-{split_name(0, 0)}-000.parquet"
    part.parent.mkdir(parents=True)
    pq.write_table(pa.table({"text": ["a document"] * 10}), part)
    data = part.read_bytes()
    record = {"input": "in.warc.gz", "index": 0, "split": 0, "node": None, "ledger": Ledger(input=10, kept=10).to_dict(),
              "parts": [{"file": "curated/" + part.name, "rows": 10, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}],
              "sources": {}, "scores": {}, "stages": []}
    (tmp_path / DONE).mkdir()
    (tmp_path / DONE / f"{split_name(0, 0)}.json").write_text(json.dumps(record))
    assert read_done(tmp_path, 0, 0) is not None
    for broken in (data[:-8] + bytes(8), bytes(4) + data[4:], data[:-1]):
        part.write_bytes(broken)
        assert read_done(tmp_path, 0, 0) is None
    part.unlink()
    assert read_done(tmp_path, 0, 0) is None
