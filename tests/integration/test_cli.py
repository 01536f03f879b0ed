"""What a new user meets: `pip install -e .` without deprecation notices, and the `gristmill` command line
as the README writes it (arguments reach the run as a user means them, `job show` prints the whole job)."""

from __future__ import annotations

import itertools
import typing
import warnings

import pytest
import typer
import yaml
from setuptools import Distribution
from setuptools.config.pyprojecttoml import apply_configuration
from setuptools.warnings import SetuptoolsDeprecationWarning
from typer.testing import CliRunner

from gristmill.pipeline.engine import api
from gristmill.pipeline.cli.app import app
from gristmill.schemas.job import Job, load_job

from support.repo import REPO

JOB = str(REPO / "jobs" / "demo-archive.yaml")



def test_pyproject_reads_without_a_setuptools_deprecation():
    """`project.license` as a table printed a deprecation block on every install: an SPDX string does not."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", SetuptoolsDeprecationWarning)
        dist = apply_configuration(Distribution(), REPO / "pyproject.toml")
    assert dist.metadata.license_expression == "Apache-2.0"

@pytest.fixture
def started(monkeypatch):
    """The inputs `gristmill run` hands to `api.run`; the run itself stops there."""
    calls = []

    def fake_run(job, output=None, inputs=None, **_):
        calls.append({"name": job.name, "output": output, "inputs": inputs})
        raise typer.Exit(0)

    monkeypatch.setattr(api, "run", fake_run)
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


def test_job_show_prints_the_resolved_job_with_every_option():
    """`gristmill job show` on the archive twin (which `extends:` the quickstart and states three keys):
    the YAML it prints is the job the run gets, and lists every option, those of the sections off included."""
    result = CliRunner().invoke(app, ["job", "show", JOB])
    assert result.exit_code == 0, result.output
    printed = yaml.safe_load(result.output)
    job = load_job(JOB)
    assert Job.model_validate(printed) == job and list(printed) == list(Job.model_fields)
    assert printed["tokenize"]["shard_tokens"] == 50000 and printed["batch_bytes"] == 32 * 1024 * 1024  # file, default
    for section in ("url_filter", "classifier", "optout", "decontaminate"):
        assert printed[section] is None
        after = result.output.split(f"\n{section}: null\n", 1)[1].splitlines()
        comments = list(itertools.takewhile(lambda line: line.startswith("#"), after))
        for option in typing.get_args(Job.model_fields[section].annotation)[0].model_fields:  # X | None
            assert any(line.startswith(f"#     {option}:") for line in comments), (section, option)


def test_job_show_names_a_bad_job_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nsources: [{paths: [a.warc]}]\nquality: {min_wrods: 3}\n")
    result = CliRunner().invoke(app, ["job", "show", str(bad)], terminal_width=200)
    assert result.exit_code == 2 and f"{bad}: quality.min_wrods: unknown key" in result.output
