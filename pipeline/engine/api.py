"""The public Python API: a pipeline built from stage objects, the same ones the YAML jobs use.

    from gristmill import Pipeline, WarcSource
    from gristmill.pipeline.stages.extract import ExtractText
    ...
    Pipeline(source=WarcSource(["crawl/*.warc.gz"]), stages=[ExtractText(), ...], output="runs/x").run()

A YAML job is a thin layer over this: `Pipeline.from_job(job)` builds the same stages with the job's
configs, so a job and its Python form produce identical outputs. The decide step is always last and
applies, in stage order, the thresholds every stage declares in `rules()`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from gristmill.pipeline.sources.crawl import CrawlSource
from gristmill.pipeline.sources.documents import JsonlSource, ParquetSource
from gristmill.pipeline.sources.warc import WarcSource, WetSource
from gristmill.pipeline.stages.base import Stage
from gristmill.schemas.job import DedupConfig, ExtractConfig, Job, RayConfig, SourceConfig, TokenizeConfig


Source = WarcSource | WetSource | JsonlSource | ParquetSource | CrawlSource


def source_from_config(config: SourceConfig, extract: ExtractConfig, max_record_bytes: int | None = None) -> Source:
    if config.type == "crawl":
        web_server = None
        if config.demo_web:
            from gristmill.pipeline.demo.server import start_demo_web as web_server
        return CrawlSource(dict(config.crawl), web_server, config.crawl_dir, extract.max_page_bytes)
    if config.type in ("warc", "wet"):
        cls = WarcSource if config.type == "warc" else WetSource
        return cls(list(config.paths), extract.max_page_bytes)
    cls = JsonlSource if config.type == "jsonl" else ParquetSource
    return cls(list(config.paths), config.text_key, config.id_key, list(config.metadata_keys),
               max_record_bytes or extract.max_page_bytes)


def default_stages(job: Job) -> list[Stage]:
    """The built-in per-batch stages, in order, configured from a job."""
    from gristmill.pipeline.steps.dedup import ComputeDedupSignatures
    from gristmill.pipeline.stages.extract import ExtractText
    from gristmill.pipeline.stages.language import ScoreLanguage
    from gristmill.pipeline.stages.quality import ScoreQuality

    stages = [ExtractText(job.extract), ScoreLanguage(job.language), ScoreQuality(job.quality)]
    if job.url_filter is not None:  # before extraction: a blocked page is never extracted
        from gristmill.pipeline.stages.url_filter import FilterUrls

        stages.insert(0, FilterUrls(job.url_filter))
    if job.classifier is not None:  # after the heuristic quality stage
        from gristmill.pipeline.stages.classifier import ScoreClassifier

        stages.append(ScoreClassifier(job.classifier))
    if job.bias is not None:  # representation tags before anything edits the text (issue 6)
        from gristmill.pipeline.stages.bias import TagRepresentation

        stages.append(TagRepresentation(job.bias))
    if job.toxicity is not None:
        from gristmill.pipeline.stages.toxicity import ScoreToxicity

        stages.append(ScoreToxicity(job.toxicity))
    if job.pii is not None:  # after the scorers that read the text as written (toxicity, bias)
        from gristmill.pipeline.stages.pii import RedactPII

        stages.append(RedactPII(job.pii))
    if job.decontaminate is not None:  # the evaluation-set index is built by its prepare(), once, on the driver
        from gristmill.pipeline.stages.decontaminate import Decontaminate

        stages.append(Decontaminate(job.decontaminate))
    if job.optout is not None:  # URL/id checks before extraction (cheapest), text hashes right after it
        from gristmill.pipeline.lists.optout import OptOutLists
        from gristmill.pipeline.stages.optout import FilterOptedOutContent, FilterOptedOutUrls

        optout = OptOutLists(job.optout.lists, job.optout.entries)  # read by the stages' prepare(), on the driver
        extract = next(i for i, stage in enumerate(stages) if isinstance(stage, ExtractText))
        stages[extract + 1:extract + 1] = [FilterOptedOutContent(optout)]
        stages.insert(0, FilterOptedOutUrls(optout))
    if job.dedup is not None:
        stages.append(ComputeDedupSignatures(job.dedup))
    return stages


@dataclass
class Pipeline:
    # One source or several (each reads its own paths); every record of every file enters the ledger.
    sources: Source | list[Source]
    stages: list[Stage]
    output: str | Path | None = None
    name: str = "pipeline"
    tokenize: TokenizeConfig = field(default_factory=TokenizeConfig)
    ray: RayConfig = field(default_factory=RayConfig)
    batch_size: int = 64
    # Bytes per batch (bodies + texts): a worker reads its input in batches bounded by both.
    batch_bytes: int = 32 * 1024 * 1024
    # Inputs larger than this are cut into splits processed by different workers (pipeline/engine/splits.py).
    split_bytes: int = 128 * 1024 * 1024
    # "filter": thresholds drop documents; "annotate": score only, nothing with text is dropped.
    decide_mode: str = "filter"
    # The global dedup step over the survivors (needs ComputeDedupSignatures among the stages); None: off.
    dedup: DedupConfig | None = None
    # The job this pipeline was built from, written as job.resolved.yaml; None for pure-Python pipelines.
    job: Job | None = None

    def __post_init__(self):
        if not isinstance(self.sources, list):
            self.sources = [self.sources]
        if self.decide_mode not in ("filter", "annotate"):
            raise ValueError(f"decide_mode must be 'filter' or 'annotate', not {self.decide_mode!r}")

    @classmethod
    def from_job(cls, job: Job) -> "Pipeline":
        return cls(
            sources=[source_from_config(s, job.extract, job.max_record_bytes) for s in job.sources],
            stages=default_stages(job), output=job.output, name=job.name, tokenize=job.tokenize,
            ray=job.ray, batch_size=job.batch_size, batch_bytes=job.batch_bytes, split_bytes=job.split_bytes,
            decide_mode=job.decide.mode, dedup=job.dedup, job=job,
        )

    def classifier_top_fraction(self) -> float | None:
        """The top fraction of the run a classifier stage keeps (a global step after the writers), or None."""
        from gristmill.pipeline.stages.classifier import ScoreClassifier

        fractions = [s.config.top_fraction for s in self.stages if isinstance(s, ScoreClassifier)]
        return next((f for f in fractions if f is not None), None)

    def describe(self) -> str:
        """What was run, as YAML: the job when there is one, else every stage with its config."""
        if self.job is not None:
            return self.job.to_yaml()

        def config_of(stage: Stage):
            config = stage.config
            return config.model_dump(mode="json") if hasattr(config, "model_dump") else repr(config)

        return yaml.safe_dump({
            "name": self.name,
            "sources": [{"type": s.type, **{k: v for k, v in vars(s).items() if k != "type"}} for s in self.sources],
            "decide_mode": self.decide_mode,
            "dedup": self.dedup.model_dump(mode="json") if self.dedup else None,
            "stages": [{"stage": s.name, "class": f"{type(s).__module__}.{type(s).__qualname__}", "config": config_of(s)}
                       for s in self.stages],
            "batch_size": self.batch_size,
            "batch_bytes": self.batch_bytes,
            "split_bytes": self.split_bytes,
            "tokenize": self.tokenize.model_dump(mode="json"),
        }, sort_keys=False)

    def run(self, output: str | Path | None = None, *, inputs: list[str] | None = None, ray_address: str | None = None,
            max_workers: int | None = None, log=print):
        """Run on Ray: the cluster at `ray_address` (or RAY_ADDRESS), else a local Ray. Returns a RunResult."""
        from gristmill.pipeline.engine.runner import execute

        return execute(self, output=output, inputs=inputs, ray_address=ray_address, max_workers=max_workers, log=log)


def run(job: Job, output: str | Path | None = None, inputs: list[str] | None = None, log=print,
        max_workers: int | None = None, resume: bool = False, staging: str | Path | None = None):
    """Run a YAML job: the same as `Pipeline.from_job(job).run(...)`, with its resume and staging options."""
    from gristmill.pipeline.engine.runner import execute

    return execute(Pipeline.from_job(job), output=output, inputs=inputs, log=log, max_workers=max_workers,
                   resume=resume, staging=staging or job.staging)
