"""The Python API: a YAML job and its Python form give identical outputs; datatrove blocks run as
stages with their own reasons; a user's scorer is thresholded and counted like a built-in; the
README's Python example runs."""

from __future__ import annotations

import json
import re

import pyarrow.parquet as pq
import pytest

from gristmill import DatatroveStep, Pipeline, ScoreFunction, WarcSource, default_stages
from gristmill.pipeline.engine.api import default_stages as _default_stages
from gristmill.pipeline.engine.api import run
from gristmill.pipeline.stages.extract import ExtractText
from gristmill.pipeline.stages.extract_sandbox import decode_html
from gristmill.pipeline.sources.warc import read_warc_table
from gristmill.schemas import columns as C
from gristmill.schemas.job import ExtractConfig, TokenizeConfig, load_job

from support.repo import REPO

DEMO_WARC = str(REPO / "jobs" / "data" / "demo-web.warc.gz")
QUIET = {"log": lambda m: None}


def _files(folder):
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_yaml_job_and_its_python_form_give_identical_outputs(ray_local, tmp_path):
    job = load_job(REPO / "jobs" / "demo-archive.yaml")
    run(job, output=tmp_path / "yaml", **QUIET)
    Pipeline(sources=WarcSource([DEMO_WARC], job.extract.max_page_bytes), stages=_default_stages(job),
             tokenize=job.tokenize, batch_size=job.batch_size, dedup=job.dedup).run(tmp_path / "python", **QUIET)
    for folder in ("curated", "rejected", "quarantine", "shards"):
        assert _files(tmp_path / "yaml" / folder) == _files(tmp_path / "python" / folder), folder


def _spacy_words():
    from datatrove.utils.word_tokenizers import SpaCyTokenizer

    # datatrove's English default is NLTK, whose punkt model downloads at run time; spaCy's blank
    # English tokenizer ships in the spacy wheel.
    return SpaCyTokenizer("en")


def test_datatrove_blocks_as_stages_drop_what_datatrove_drops(ray_local, tmp_path):
    from datatrove.data import Document
    from datatrove.pipeline.filters import GopherQualityFilter
    from datatrove.pipeline.formatters import FTFYFormatter

    extract = ExtractConfig()
    pipeline = Pipeline(
        sources=WarcSource([DEMO_WARC]),
        stages=[ExtractText(extract), DatatroveStep(FTFYFormatter()), DatatroveStep(GopherQualityFilter(language=_spacy_words()))],
        tokenize=TokenizeConfig(vocab_size=512),
    )
    result = pipeline.run(tmp_path / "mixed", **QUIET)

    # datatrove alone on the same documents: the same extraction, then FTFY, then Gopher quality.
    import trafilatura

    from gristmill.pipeline.stages.extract import trafilatura_options

    docs = []
    for row in read_warc_table(DEMO_WARC, extract.max_page_bytes).to_pylist():
        if row[C.CONTENT] is None or row[C.SKIP_REASON] or row[C.QUARANTINE_REASON]:
            continue
        html, _ = decode_html(row[C.CONTENT], row[C.CONTENT_TYPE])
        text = trafilatura.extract(html, output_format="txt", with_metadata=False, deduplicate=False, **trafilatura_options(extract))
        if text and text.strip():
            docs.append(Document(text=text, id=row[C.ID]))
    gopher = GopherQualityFilter(language=_spacy_words())
    expected = {}
    for doc in FTFYFormatter().run(iter(docs)):
        verdict = gopher.filter(doc)
        expected[doc.id] = None if verdict is True else f"GopherQualityFilter:{verdict[1]}"

    rejected = pq.read_table(tmp_path / "mixed" / "rejected").to_pylist()
    curated = pq.read_table(tmp_path / "mixed" / "curated").to_pylist()
    got = {r[C.ID]: r[C.DROP_REASON] for r in rejected if r[C.ID] in expected} | {r[C.ID]: None for r in curated}
    assert got == expected
    assert sum(v is not None for v in expected.values()) >= 5 and sum(v is None for v in expected.values()) >= 40
    assert result.ledger.accounted == result.ledger.input
    stats = json.loads((tmp_path / "mixed" / "stats.json").read_text())
    gopher_stats = next(s for s in stats["stages"] if s["stage"] == "GopherQualityFilter")
    assert gopher_stats["counts"]["datatrove:dropped"] == sum(v is not None for v in expected.values())
    assert any(row["stage"] == "GopherQualityFilter" and row["dropped"] for row in stats["funnel"])


def test_user_scorer_is_a_column_a_rule_and_a_stat(ray_local, tmp_path):
    def digit_ratio(text: str) -> float:
        return sum(c.isdigit() for c in text) / max(len(text), 1)

    job = load_job(REPO / "jobs" / "demo-archive.yaml")
    scorer = ScoreFunction("digit_ratio", digit_ratio, drop_above=0.004, low=0.0, high=1.0, meaning="share of digits")
    result = Pipeline(sources=WarcSource([DEMO_WARC]), stages=[*default_stages(job), scorer],
                      tokenize=job.tokenize).run(tmp_path / "user", **QUIET)
    curated = pq.read_table(tmp_path / "user" / "curated")
    rejected = pq.read_table(tmp_path / "user" / "rejected").to_pylist()
    assert max(curated["digit_ratio"].to_pylist()) <= 0.004
    dropped = [r for r in rejected if r[C.DROP_REASON] == "user:digit_ratio"]
    assert dropped and all(r["digit_ratio"] > 0.004 for r in dropped)
    assert result.ledger.dropped["user:digit_ratio"] == len(dropped)
    stats = json.loads((tmp_path / "user" / "stats.json").read_text())
    assert next(s for s in stats["stages"] if s["stage"] == "digit_ratio")["counts"]["scored"] > 0
    assert stats["scores"]["digit_ratio"]["n"] > 0
    assert any(row["stage"] == "digit_ratio" and row["dropped"] == {"user:digit_ratio": len(dropped)} for row in stats["funnel"])


def test_user_reason_must_be_namespaced():
    with pytest.raises(ValueError, match="namespaced"):
        ScoreFunction("x_ratio", len, drop_above=1, reason="too_long")


def test_readme_python_example_runs(ray_local, monkeypatch, tmp_path):
    readme = (REPO / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.S)
    assert blocks, "README has no python example"
    code = blocks[0].replace('"runs/python-example"', repr(str(tmp_path / "example")))
    monkeypatch.chdir(REPO)
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    assert (tmp_path / "example" / "stats.json").exists()
    assert namespace["result"].ledger.kept > 0


def test_rules_come_from_the_stages_configs_and_building_them_reads_nothing(tmp_path):
    """`rules_of` over a Python pipeline gets a custom score's rule; a job whose opt-out list and
    evaluation set do not exist builds its stages and rules (as `gristmill report` and rethreshold do)
    without reading them; the run's prepare step is where they are read, and fails clearly."""
    from gristmill.pipeline.stages.decide import rules_of
    from gristmill.pipeline.lists.optout import OptOutError
    from gristmill.pipeline.tools.rethreshold import decide_rules
    from gristmill.schemas.job import Job

    scorer = ScoreFunction("x_ratio", len, drop_above=1, reason="mine:too_long")
    pipeline = Pipeline(sources=WarcSource([str(tmp_path / "none.warc.gz")]), stages=[scorer])
    assert [(r.reason, r.column, r.op, r.threshold) for r in rules_of(pipeline)] == [("mine:too_long", "x_ratio", ">", 1)]

    job = Job(name="j", sources=[{"paths": ["x.warc.gz"]}],
              optout={"lists": [str(tmp_path / "missing-list.txt")]},
              decontaminate={"eval_sets": [{"name": "gsm", "path": str(tmp_path / "missing-gsm.jsonl")}]})
    rules = decide_rules(job)  # builds every stage: nothing read yet
    assert ("contaminated:gsm", "contaminated_by") in {(r.reason, r.column) for r in rules}
    stages = default_stages(job)
    with pytest.raises(OptOutError, match="missing-list.txt: cannot read opt-out list"):
        for stage in stages:
            stage.prepare()
