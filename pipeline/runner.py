"""The runner: a job in, a run folder out.

    sources ─► extract ─► language ─► quality ─► decide ─► writers ─► tokenize
    (Ray Data map_batches, order preserved)            (driver)    (global step)

Per-batch stages run on Ray (a local Ray started here, or the cluster RAY_ADDRESS names). Rows come
back in input order, so the writers name their part files deterministically and a rerun gives the
same bytes whatever the worker count. At the end the ledger must sum, and must equal the number of
records the sources read; otherwise the run fails.
"""

from __future__ import annotations

import glob
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from gristmill.pipeline.decide import Decide
from gristmill.pipeline.sources.warc import read_warc_table
from gristmill.pipeline.stages.base import Stage
from gristmill.pipeline.stages.extract import ExtractText
from gristmill.pipeline.stages.language import ScoreLanguage
from gristmill.pipeline.stages.quality import ScoreQuality
from gristmill.pipeline.tokenize import tokenize_run
from gristmill.pipeline.writers import RunWriter
from gristmill.schemas import columns as C
from gristmill.schemas.job import Job, JobError
from gristmill.schemas.stats import Ledger, RunStats, StageStats, funnel

WORK_DIR = ".work"
SOURCE_STAGE = "source"


@dataclass
class RunResult:
    output: Path
    ledger: Ledger
    stats: RunStats


def expand_inputs(job: Job, inputs: list[str] | None = None) -> list[str]:
    """Sorted, de-duplicated input files from the job's sources (or from `inputs` when given)."""
    patterns = inputs if inputs else [p for source in job.sources for p in source.paths]
    files: set[str] = set()
    for pattern in patterns:
        matches = glob.glob(pattern, recursive=True) if glob.has_magic(pattern) else [pattern] * os.path.exists(pattern)
        if not matches:
            raise JobError(f"input {pattern!r} matches no file")
        files.update(str(Path(m).resolve()) for m in matches if not Path(m).is_dir())
    if not files:
        raise JobError(f"inputs {patterns} match no file")
    return sorted(files)


class ReadSource(Stage):
    """Input file paths → one row per WARC/ARC record (`columns.SOURCE_SCHEMA`)."""

    name = SOURCE_STAGE
    writes = C.SOURCE_COLUMNS

    def process(self, table: pa.Table, counts) -> pa.Table:
        parts = [read_warc_table(path, self.config.max_page_bytes) for path in table["path"].to_pylist()]
        out = pa.concat_tables(parts) if parts else C.SOURCE_SCHEMA.empty_table()
        counts["files"] += table.num_rows
        counts["records_read"] += out.num_rows
        return out


class StageChain:
    """The per-batch stages run one after the other on each batch, inside one Ray actor."""

    def __init__(self, stages: list[tuple[type[Stage], object]], stats_dir: str):
        self.stages = [stage_cls(config, stats_dir) for stage_cls, config in stages]

    def __call__(self, table: pa.Table) -> pa.Table:
        for stage in self.stages:
            table = stage(table)
        return table


def pipeline_stages(job: Job) -> list[tuple[type[Stage], object]]:
    """The per-batch stages in order, each with the config it is constructed with."""
    return [
        (ExtractText, job.extract),
        (ScoreLanguage, job.language),
        (ScoreQuality, job.quality),
        (Decide, job),
    ]


def check_columns(stages: list[tuple[type[Stage], object]]) -> None:
    """Fail before launching if a stage reads a column nothing upstream writes."""
    available = set(ReadSource.writes)
    for stage_cls, config in stages:
        missing = set(stage_cls.reads_for(config)) - available
        if missing:
            raise JobError(f"stage {stage_cls.name!r} reads {sorted(missing)}, which no earlier stage writes")
        available = (available | set(stage_cls.writes)) - set(stage_cls.drops)


def init_ray(job: Job) -> None:
    import ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    if ray.is_initialized():
        return
    quiet = {"log_to_driver": False, "logging_level": logging.WARNING}
    if os.environ.get("RAY_ADDRESS"):
        ray.init(**quiet)  # the cluster decides CPUs and memory
    else:
        memory = job.ray.object_store_memory_mb * 1024 * 1024 if job.ray.object_store_memory_mb else None
        ray.init(num_cpus=job.ray.num_cpus, object_store_memory=memory, include_dashboard=False, **quiet)


def _worker_count() -> int:
    import ray

    return max(1, int(ray.cluster_resources().get("CPU", 1)))


def merge_stage_stats(stats_dir: Path, names: list[str]) -> list[StageStats]:
    merged = []
    for name in names:
        parts = [StageStats.from_dict(json.loads(p.read_text())) for p in sorted((stats_dir / name).glob("*.json"))]
        merged.append(sum(parts, StageStats(name)))
    return merged


def prepare_output(output: Path) -> None:
    """Remove what an earlier run left, so no stale part file survives into this run's outputs."""
    for name in ("curated", "rejected", "quarantine", "shards", WORK_DIR):
        if (output / name).exists():
            shutil.rmtree(output / name)
    for name in ("stats.json", "job.resolved.yaml"):
        (output / name).unlink(missing_ok=True)
    output.mkdir(parents=True, exist_ok=True)


def run(job: Job, output: str | Path | None = None, inputs: list[str] | None = None, log=print,
        max_workers: int | None = None) -> RunResult:
    """Run `job` into `output`; `max_workers` caps each stage's actor pool (default: the cluster's CPUs)."""
    import ray
    from ray.data import ActorPoolStrategy, DataContext

    started = time.perf_counter()
    output = Path(output or job.output or Path("runs") / job.name)
    files = expand_inputs(job, inputs)
    stages = pipeline_stages(job)
    check_columns(stages)
    prepare_output(output)
    (output / "job.resolved.yaml").write_text(job.to_yaml())
    stats_dir = (output / WORK_DIR / "stats").resolve()

    init_ray(job)
    context = DataContext.get_current()
    context.execution_options.preserve_order = True
    context.enable_progress_bars = False
    workers = min(_worker_count(), max_workers or 1 << 30)
    log(f"gristmill: {len(files)} input file(s), {workers} worker CPU(s), output {output}")

    dataset = ray.data.from_items([{"path": f} for f in files], override_num_blocks=len(files))
    # Reading is a plain task per file (its CPU is released when the file is read); the per-batch stages
    # run chained inside one actor per worker: one model load per stage per worker, no object-store hop
    # between stages, and resources that cannot deadlock (one pool, not one pool per stage).
    dataset = dataset.map_batches(
        ReadSource(job.extract, str(stats_dir)).__call__, batch_size=1, batch_format="pyarrow",
    )
    dataset = dataset.map_batches(
        StageChain, fn_constructor_kwargs={"stages": stages, "stats_dir": str(stats_dir)},
        batch_size=job.batch_size, batch_format="pyarrow", num_cpus=1,
        compute=ActorPoolStrategy(min_size=1, max_size=workers),
    )
    writer = RunWriter(output)
    for batch in dataset.iter_batches(batch_size=None, batch_format="pyarrow"):
        writer.write(batch)
    ledger = writer.close()
    pipeline_seconds = time.perf_counter() - started

    stage_stats = merge_stage_stats(stats_dir, [SOURCE_STAGE] + [cls.name for cls, _ in stages])
    records_read = stage_stats[0].counts["records_read"]
    ledger.check(records_read=records_read)

    tokenize_started = time.perf_counter()
    manifest = tokenize_run(output / "curated", output / "shards", job.tokenize)
    tokens = {
        "vocab_size": manifest.vocab_size,
        "train_tokens": sum(s.tokens for s in manifest.shards if s.split == "train"),
        "val_tokens": sum(s.tokens for s in manifest.shards if s.split == "val"),
        "train_docs": sum(s.docs for s in manifest.shards if s.split == "train"),
        "val_docs": sum(s.docs for s in manifest.shards if s.split == "val"),
        "shards": len(manifest.shards),
    }
    stats = RunStats(
        ledger=ledger, stages=stage_stats, scores=writer.scores, sources=writer.source_counts(), tokens=tokens,
        funnel=funnel(ledger, [s.stage for s in stage_stats]),
        seconds={"pipeline": round(pipeline_seconds, 3), "tokenize": round(time.perf_counter() - tokenize_started, 3),
                 "total": round(time.perf_counter() - started, 3)},
    )
    (output / "stats.json").write_text(stats.to_json())
    shutil.rmtree(output / WORK_DIR, ignore_errors=True)
    return RunResult(output, ledger, stats)
