"""Inputs and outputs at s3:// URIs, against a STAND-IN for S3: moto's S3-compatible server (`moto[server]`
from PyPI) on 127.0.0.1, started and stopped here. Real S3 cannot exist in a test; everything else is real:
s3fs over HTTP to that server, a local Ray, the demo-archive job.

The job reads its WARC from s3:// and runs twice on the same session Ray: once into a local folder, once
into s3://…; the run downloaded from the stand-in must equal the local run byte for byte."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys

import pytest

from gristmill.pipeline.engine.api import run
from gristmill.pipeline.engine.runner import expand_inputs
from gristmill.pipeline.engine.storage import SUCCESS, StorageError, staging_folder
from gristmill.schemas.job import JobError, load_job

from support.repo import REPO
from support.reliability import DEMO, assert_same_outputs, files

pytest.importorskip("s3fs", reason="the s3 tests need s3fs (pip install 'gristmill[s3,dev]')", exc_type=ModuleNotFoundError)
moto_server = pytest.importorskip("moto.server", reason="the S3 stand-in needs moto[server] (the dev extra)",
                                  exc_type=ModuleNotFoundError)

BUCKET = "gristmill-test"
JOB = REPO / "jobs" / "demo-archive.yaml"
# stats.json parts that are the same for the same input and job (seconds and the run section are not)
DETERMINISTIC_STATS = ("ledger", "sources", "funnel", "tokens", "dedup", "breakdown", "pii", "representation", "scores")


@pytest.fixture(scope="module")
def s3_standin(ray_local):
    """moto's S3 server on a free 127.0.0.1 port: the STAND-IN for S3. The endpoint reaches s3fs the way a
    user sets it (AWS_ENDPOINT_URL), with fake credentials; both are restored and the server stopped after.
    Ray is started first, so its workers can only read s3:// with what the runner forwards (storage.worker_env)."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one log line per request otherwise
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_ENDPOINT_URL": f"http://{host}:{port}"}
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()
    fs = s3fs.S3FileSystem()
    fs.mkdir(BUCKET)
    fs.put(str(DEMO), f"{BUCKET}/input/{DEMO.name}")
    try:
        yield fs, env
    finally:
        s3fs.S3FileSystem.clear_instance_cache()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        server.stop()


@pytest.fixture(scope="module")
def runs(s3_standin, ray_local, tmp_path_factory):
    """The demo job with its WARC read from s3://: into a local folder, and into s3:// (then downloaded)."""
    fs, _ = s3_standin
    folder = tmp_path_factory.mktemp("s3")
    inputs = [f"s3://{BUCKET}/input/*.warc.gz"]
    job = load_job(JOB)
    local = run(job, output=folder / "local", inputs=inputs, log=lambda m: None)
    logs = []
    remote = run(job, output=f"s3://{BUCKET}/runs/demo", inputs=inputs, staging=folder / "staging", log=logs.append)
    fs.invalidate_cache()
    fs.get(f"{BUCKET}/runs/demo/", str(folder / "downloaded"), recursive=True)
    return local, remote, folder, logs


def _timeless(value):
    """`value` without its "seconds" entries, at any depth (timings differ between any two runs)."""
    if isinstance(value, dict):
        return {k: _timeless(v) for k, v in value.items() if k != "seconds"}
    return [_timeless(v) for v in value] if isinstance(value, list) else value


def test_run_published_to_the_s3_standin_equals_a_local_run_byte_for_byte(runs):
    local, remote, folder, logs = runs
    downloaded = folder / "downloaded"
    assert remote.uri == f"s3://{BUCKET}/runs/demo" and remote.ledger == local.ledger
    assert local.ledger.input == 276 and local.ledger.accounted == 276  # every record of the demo WARC
    assert_same_outputs(downloaded, local.output)  # curated, rejected, quarantine Parquet and shards
    assert (downloaded / "job.resolved.yaml").read_bytes() == (local.output / "job.resolved.yaml").read_bytes()
    published, here = (json.loads((f / "stats.json").read_text()) for f in (downloaded, local.output))
    for key in DETERMINISTIC_STATS:
        assert _timeless(published.get(key)) == _timeless(here.get(key)), key
    assert list(published["sources"]) == [f"s3://{BUCKET}/input/{DEMO.name}"]  # the input was read from s3://
    # _SUCCESS came last and lists every published file with its size and sha256; nothing of .work/ went up
    manifest = json.loads((downloaded / SUCCESS).read_text())["files"]
    on_disk = {k: v for k, v in files(downloaded).items() if k != SUCCESS}
    assert sorted(manifest) == sorted(on_disk) and len(manifest) > 10
    assert all(manifest[name]["bytes"] == len(data) for name, data in on_disk.items())
    assert not any(name.startswith(".work") for name in manifest)
    assert not (folder / "staging").exists()  # removed once published
    assert any("published" in line and SUCCESS in line for line in logs)


def test_stats_command_reads_a_published_run_and_refuses_an_incomplete_one(runs, s3_standin):
    fs, env = s3_standin
    gristmill = [sys.executable, "-m", "gristmill.pipeline.cli.app"]
    environ = {**os.environ, **env}
    shown = subprocess.run([*gristmill, "stats", f"s3://{BUCKET}/runs/demo", "--json"], capture_output=True, text=True,
                           env=environ, timeout=120)
    assert shown.returncode == 0, shown.stderr[-2000:]
    assert json.loads(shown.stdout)["ledger"] == json.loads((runs[0].output / "stats.json").read_text())["ledger"]
    # a prefix with files but no _SUCCESS (an upload in progress, or one that died) is not a run
    fs.pipe(f"{BUCKET}/half/stats.json", b"{}")
    refused = subprocess.run([*gristmill, "stats", f"s3://{BUCKET}/half"], capture_output=True, text=True,
                             env=environ, timeout=120)
    assert refused.returncode == 2 and "holds no complete gristmill run" in refused.stdout
    assert "Traceback" not in refused.stdout + refused.stderr


def test_missing_bucket_and_bad_uris_are_clear_errors_before_any_work(s3_standin, tmp_path):
    _, env = s3_standin
    command = [sys.executable, "-m", "gristmill.pipeline.cli.app", "run", str(JOB), "--staging", str(tmp_path / "st")]
    result = subprocess.run([*command, "--output", "s3://no-such-bucket/runs/x"], capture_output=True, text=True,
                            env={**os.environ, **env}, timeout=120)
    assert result.returncode == 2, result.stdout + result.stderr[-2000:]
    assert "bucket 'no-such-bucket' does not exist" in result.stdout and "Traceback" not in result.stdout + result.stderr
    with pytest.raises(StorageError, match="Protocol not known: s4"):
        run(load_job(JOB), output="s4://bucket/x", staging=tmp_path / "st", log=lambda m: None)
    assert not (tmp_path / "st").exists()  # both failed before any work
    with pytest.raises(JobError, match="matches no file"):
        expand_inputs(["s3://no-such-bucket/crawl/*.warc.gz"])


def test_resume_uploads_a_finished_staging_folder_and_needs_the_staging_state(runs, s3_standin, tmp_path):
    """A run that finished locally but whose upload failed: --resume publishes it without running again.
    A resume whose staging folder is gone (and no complete run at the URI) says so instead of starting over."""
    local, _, _, _ = runs
    fs, _ = s3_standin
    staging = tmp_path / "staging"
    shutil.copytree(local.output, staging)  # what a run that died during its upload leaves
    uri = f"s3://{BUCKET}/runs/resumed"
    fs.pipe(f"{BUCKET}/runs/resumed/curated/part-99999-000.parquet", b"stale")  # a dead upload's leftovers
    resumed = run(load_job(JOB), output=uri, inputs=[f"s3://{BUCKET}/input/*.warc.gz"], staging=staging, resume=True,
                  log=lambda m: None)
    assert resumed.uri == uri and resumed.ledger == local.ledger
    fs.invalidate_cache()
    got = tmp_path / "got"
    fs.get(f"{BUCKET}/runs/resumed/", str(got), recursive=True)
    assert_same_outputs(got, local.output)  # the stale part is gone
    assert not staging.exists()
    again = run(load_job(JOB), output=uri, inputs=[f"s3://{BUCKET}/input/*.warc.gz"], staging=staging, resume=True,
                log=lambda m: None)
    assert again.ledger == local.ledger  # complete at the URI: nothing to resume
    with pytest.raises(StorageError, match="the resume state lives only there"):
        run(load_job(JOB), output=f"s3://{BUCKET}/runs/never", inputs=[f"s3://{BUCKET}/input/*.warc.gz"],
            staging=tmp_path / "lost", resume=True, log=lambda m: None)


def test_default_staging_folder_is_per_uri_under_the_user_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    a, b = staging_folder("s3://bucket/runs/a"), staging_folder("s3://bucket/other/a")
    assert a.parent == b.parent == tmp_path / "gristmill" / "staging" and a != b and a.name.startswith("a-")
    assert staging_folder("s3://bucket/runs/a", tmp_path / "mine") == tmp_path / "mine"


def test_commands_that_read_local_run_folders_refuse_a_uri_clearly():
    from typer.testing import CliRunner

    from gristmill.pipeline.cli.app import app

    for args in (["report", "s3://bucket/runs/x"], ["inspect", "s3://bucket/runs/x", "--kept"],
                 ["shards", "verify", "s3://bucket/runs/x/shards"]):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 2 and "reads a local run folder" in result.output, args
