"""Faults and resume, with real processes: `gristmill run` subprocesses (each its own local Ray) killed
with SIGKILL at named points (pipeline/faults.py), Ray workers killed mid-stage, and `--resume`; every
finished run's curated/rejected/quarantine Parquet and shards must equal a clean run's byte for byte.

CI runs a reduced matrix (one chained driver-kill test, one run with six worker kills at once on four
workers). GRISTMILL_FULL_FAULTS=1 runs every point on its own (`faults_full`, a few minutes each)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from gristmill.pipeline.runner import run
from gristmill.schemas import columns as C
from gristmill.schemas.job import JobError, load_job

from reliability_support import DEMO, assert_same_outputs, gristmill_run, small_job, split_warc

KILLED = -9  # the subprocess's return code after SIGKILL
full = pytest.mark.skipif(not os.environ.get("GRISTMILL_FULL_FAULTS"), reason="full fault matrix: GRISTMILL_FULL_FAULTS=1")
WORKER_POINTS = ["read@2", "stage:extract@2", "stage:language@1", "stage:quality@2", "stage:dedup@1", "stage:decide@2"]


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
    """Killed mid-extraction (2 of 4 inputs done), then resumed and killed after dedup rewrote curated/
    in place, then resumed and killed mid-tokenization (after the first shard), then resumed to the end."""
    _, inputs, job = corpus
    out = tmp_path / "run"
    _check(gristmill_run(job, out, fault="write:input@2"), expect_killed=True)
    assert sorted(p.name for p in (out / ".work" / "done").iterdir()) == ["00000.json", "00001.json"]
    assert not (out / "stats.json").exists()

    _check(gristmill_run(job, out, resume=True, fault="dedup:rewrite"), expect_killed=True)
    assert len(list((out / ".work" / "done").iterdir())) == 4 and not (out / ".work" / "dedup.json").exists()

    _check(gristmill_run(job, out, resume=True, fault="tokenize:shard@1"), expect_killed=True)
    assert (out / ".work" / "dedup.json").exists() and not (out / ".work" / "tokens.json").exists()

    _check(gristmill_run(job, out, resume=True), expect_killed=False)
    _assert_complete_and_equal(out, clean)
    assert _stats(out)["run"] == {**_stats(out)["run"], "resumed": True, "inputs": 4, "inputs_skipped": 4,
                                  "records_skipped": 276}


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


def test_six_worker_kills_on_four_workers_give_clean_bytes(corpus, clean, tmp_path):
    """A read task and actors of five stages SIGKILLed once each (a marker file makes the retry live);
    Ray retries the task and restarts the actors; four workers against the clean run's one."""
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

DRIVER_POINTS = ["write:batch@1", "write:input@1", "write:input@3", "write:input@4", "dedup:bands", "dedup:components",
                 "dedup:members", "dedup:keepers", "dedup:rewrite", "tokenize:spill", "tokenize:shard@1",
                 "tokenize:shard@6", "finish"]


@full
@pytest.mark.parametrize("point", DRIVER_POINTS)
def test_driver_killed_at_point_then_resumed(corpus, clean, tmp_path, point):
    _, _, job = corpus
    out = tmp_path / "run"
    _check(gristmill_run(job, out, fault=point), expect_killed=True)
    _check(gristmill_run(job, out, resume=True), expect_killed=False)
    _assert_complete_and_equal(out, clean)


@full
@pytest.mark.parametrize("point", [*WORKER_POINTS, "read@4", "stage:extract@1", "stage:quality@1", "stage:decide@1"])
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


# --- a real 2-node Ray cluster on this machine (GRISTMILL_FULL_FAULTS=1) ------------------------------

def _free_ports(n: int) -> list[int]:
    import socket

    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _ray_node(args: list[str], ports: list[int], log) -> subprocess.Popen:
    """`ray start --block` in its own process group (stopped by killing that group: `ray stop` would
    stop every Ray on the machine, other people's included)."""
    ray = [sys.executable, "-c", "import sys; from ray.scripts.scripts import main; sys.argv[0] = 'ray'; main()"]
    names = ["--node-manager-port", "--object-manager-port", "--metrics-export-port", "--dashboard-agent-listen-port",
             "--dashboard-agent-grpc-port", "--runtime-env-agent-port"]
    command = [*ray, "start", "--block", "--disable-usage-stats", *args,
               *(f"{name}={port}" for name, port in zip(names, ports)),
               f"--min-worker-port={ports[-2]}", f"--max-worker-port={ports[-2] + 40}"]
    return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                            env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"})


def _stop(node: subprocess.Popen) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(node.pid, sig)
        except ProcessLookupError:
            return
        try:
            node.wait(timeout=20)
            time.sleep(1)
        except subprocess.TimeoutExpired:
            continue


@full
def test_two_node_cluster_runs_on_both_nodes_and_matches_the_local_run(corpus, clean, tmp_path):
    _, inputs, job = corpus
    head_port, *rest = _free_ports(1 + 2 * 8)
    base = 20000 + head_port % 20000  # worker port ranges of the two nodes must not overlap
    head_ports = rest[:6] + [base, 0]
    second_ports = rest[8:14] + [base + 50, 0]
    temp = Path(tempfile.mkdtemp(prefix="gm-ray-", dir="/tmp"))  # short: Ray's socket paths are length-limited
    from ray.util import get_node_ip_address

    ip = get_node_ip_address()  # this machine's own address: Ray resolves 127.0.0.1 to it for the GCS anyway
    address = f"{ip}:{head_port}"
    nodes = []
    log = open(tmp_path / "ray.log", "w")
    try:
        nodes.append(_ray_node(["--head", f"--port={head_port}", "--num-cpus=1", "--include-dashboard=false", f"--temp-dir={temp}",
                                f"--node-ip-address={ip}"], head_ports, log))
        time.sleep(8)
        nodes.append(_ray_node([f"--address={address}", "--num-cpus=1", '--resources={"second_node": 1}',
                                f"--node-ip-address={ip}"], second_ports, log))
        for _ in range(60):
            time.sleep(1)
            probe = subprocess.run([sys.executable, "-c", "import ray; ray.init(address='%s', logging_level='ERROR');"
                                    "print(len([n for n in ray.nodes() if n['Alive']]))" % address],
                                   capture_output=True, text=True, timeout=180)
            if probe.stdout.strip() == "2":
                break
        else:
            pytest.fail(f"the 2-node cluster did not come up: {probe.stdout} {probe.stderr[-2000:]}")
        result = gristmill_run(job, tmp_path / "run", env={"RAY_ADDRESS": address})
        _check(result, expect_killed=False)
        ran_on = set(_stats(tmp_path / "run")["run"]["nodes"])  # node id of each read (in the stage actors)
        alive = subprocess.run([sys.executable, "-c", "import json, ray; ray.init(address='%s', logging_level='ERROR');"
                                "print(json.dumps(sorted(n['NodeID'] for n in ray.nodes() if n['Alive'])))" % address],
                               capture_output=True, text=True, timeout=60)
        cluster = set(json.loads(alive.stdout.strip().splitlines()[-1]))
        print(f"\n2-node cluster {sorted(cluster)}: tasks ran on {sorted(ran_on & cluster)}; "
              f"read tasks per node {_stats(tmp_path / 'run')['run']['nodes']}")
        assert len(cluster) == 2 and cluster <= ran_on
        _assert_complete_and_equal(tmp_path / "run", clean)
    finally:
        for node in reversed(nodes):
            _stop(node)
        log.close()
        shutil.rmtree(temp, ignore_errors=True)
