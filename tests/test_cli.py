"""The `gristmill` command line as the README writes it: arguments reach the run as a user means them."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from gristmill.pipeline import runner
from gristmill.pipeline.cli import app

from conftest import REPO

JOB = str(REPO / "jobs" / "demo-archive.yaml")


@pytest.fixture
def started(monkeypatch):
    """The inputs `gristmill run` hands to the runner; the run itself stops there."""
    calls = []

    def fake_run(job, output=None, inputs=None, **_):
        calls.append({"name": job.name, "output": output, "inputs": inputs})
        raise typer.Exit(0)

    monkeypatch.setattr(runner, "run", fake_run)
    return calls


@pytest.mark.parametrize("args, inputs", [
    ([], None),                                                     # the job's own sources
    (["--input", "a.warc.gz"], ["a.warc.gz"]),
    (["--input", "a.warc.gz", "b.warc.gz", "c/*.warc.gz"], ["a.warc.gz", "b.warc.gz", "c/*.warc.gz"]),  # README
    (["--input", "a.warc.gz", "--input", "b.warc.gz"], ["a.warc.gz", "b.warc.gz"]),
    (["-i", "a.warc.gz", "b.warc.gz", "--output", "out"], ["a.warc.gz", "b.warc.gz"]),
])
def test_run_takes_several_inputs_after_one_input_option(started, args, inputs):
    result = CliRunner().invoke(app, ["run", JOB, *args])
    assert result.exit_code == 0, result.output
    assert started == [{"name": "demo-archive", "output": "out" if "--output" in args else None, "inputs": inputs}]


def test_run_refuses_a_stray_argument_without_input(started):
    result = CliRunner().invoke(app, ["run", JOB, "a.warc.gz"], terminal_width=200)
    assert result.exit_code == 2 and started == []
    assert "unexpected argument 'a.warc.gz'" in result.output and "--input" in result.output
