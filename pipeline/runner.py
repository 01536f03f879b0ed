"""The runner: a Pipeline (or a YAML job) in, a run folder out.

    sources ─► extract ─► language ─► quality ─► signatures ─► decide ─► writers ─► dedup ─► tokenize
    (Ray Data map_batches, order preserved)                         (driver)    (global steps)

Per-batch stages run on Ray (a local Ray started here, or the cluster RAY_ADDRESS names). Rows come
back in input order, so the writers name their part files deterministically and a rerun gives the
same bytes whatever the worker count. At the end the ledger must sum, and must equal the number of
records the sources read; otherwise the run fails.
"""

from __future__ import annotations

import dataclasses
import glob
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from gristmill.pipeline.api import Pipeline
from gristmill.pipeline.decide import Decide
from gristmill.pipeline.stages.base import Stage
from gristmill.pipeline.stages.pii import pii_stats
from gristmill.pipeline.tokenize import tokenize_run
from gristmill.pipeline.writers import RunWriter
from gristmill.schemas import columns as C
from gristmill.schemas.job import Job, JobError, RayConfig
from gristmill.schemas.stats import Ledger, RunStats, StageStats, funnel

WORK_DIR = ".work"
SOURCE_STAGE = "source"


@dataclass
class RunResult:
    output: Path
    ledger: Ledger
    stats: RunStats


def _matches(pattern: str) -> list[str]:
    if "://" in pattern and not pattern.startswith("file://"):
        import fsspec

        fs, path = fsspec.core.url_to_fs(pattern)
        found = fs.glob(path) if glob.has_magic(path) else [path] * fs.exists(path)
        return [fs.unstrip_protocol(p) for p in found if not fs.isdir(p)]
    pattern = pattern.removeprefix("file://")
    found = glob.glob(pattern, recursive=True) if glob.has_magic(pattern) else [pattern] * os.path.exists(pattern)
    return [str(Path(p).resolve()) for p in found if not Path(p).is_dir()]


def expand_inputs(patterns: list[str]) -> list[str]:
    """Sorted, de-duplicated input files matching paths, globs or URIs; a pattern matching nothing is an error."""
    files: set[str] = set()
    for pattern in patterns:
        matches = _matches(pattern)
        if not matches:
            raise JobError(f"input {pattern!r} matches no file")
        files.update(matches)
    if not files:
        raise JobError(f"inputs {patterns} match no file")
    return sorted(files)


class ReadSource(Stage):
    """Rows of (path, source index) → one row per record (`columns.SOURCE_SCHEMA`). Config: the sources."""

    name = SOURCE_STAGE
    writes = C.SOURCE_COLUMNS

    def process(self, table: pa.Table, counts) -> pa.Table:
        parts = [self.config[index].read(path) for path, index in zip(table["path"].to_pylist(), table["source"].to_pylist())]
        out = pa.concat_tables(parts) if parts else C.SOURCE_SCHEMA.empty_table()
        counts["files"] += table.num_rows
        counts["records_read"] += out.num_rows
        return out


class StageChain:
    """The per-batch stages run one after the other on each batch, inside one Ray actor."""

    def __init__(self, stages: list[Stage]):
        self.stages = stages

    def __call__(self, table: pa.Table) -> pa.Table:
        for stage in self.stages:
            table = stage(table)
        return table


def check_columns(stages: list[Stage]) -> None:
    """Fail before launching if a stage reads a column nothing upstream writes, or writes an unknown type."""
    available = set(ReadSource.writes)
    for stage in stages:
        missing = set(stage.reads) - available
        if missing:
            raise JobError(f"stage {stage.name!r} reads {sorted(missing)}, which no earlier stage writes")
        untyped = [c for c in stage.writes if c not in C.TYPES]
        if untyped:
            raise JobError(f"stage {stage.name!r} writes {untyped} without an Arrow type: register them "
                           "with gristmill.schemas.columns.register_score (or add them to columns.TYPES)")
        available = (available | set(stage.writes)) - set(stage.drops)


def init_ray(ray_config: RayConfig, address: str | None = None) -> None:
    import ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    if ray.is_initialized():
        return
    quiet = {"log_to_driver": False, "logging_level": logging.WARNING}
    address = address or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, **quiet)  # the cluster decides CPUs and memory
    else:
        memory = ray_config.object_store_memory_mb * 1024 * 1024 if ray_config.object_store_memory_mb else None
        ray.init(num_cpus=ray_config.num_cpus, object_store_memory=memory, include_dashboard=False, **quiet)


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
    """Run a YAML job: the same as `Pipeline.from_job(job).run(...)`."""
    return execute(Pipeline.from_job(job), output=output, inputs=inputs, log=log, max_workers=max_workers)


def execute(pipeline: Pipeline, output: str | Path | None = None, inputs: list[str] | None = None,
            ray_address: str | None = None, max_workers: int | None = None, log=print) -> RunResult:
    """Run `pipeline` into `output`; `max_workers` caps the actor pool (default: the cluster's CPUs)."""
    import ray
    from ray.data import ActorPoolStrategy, DataContext

    started = time.perf_counter()
    output = Path(output or pipeline.output or Path("runs") / pipeline.name)
    sources = pipeline.sources
    if inputs:  # --input: the first source's kind, reading these paths instead
        sources = [dataclasses.replace(sources[0], paths=list(inputs))]
    files = sorted({(path, index) for index, source in enumerate(sources) for path in expand_inputs(source.paths)})
    rules = [rule for stage in pipeline.stages for rule in stage.rules()]
    stages = [*pipeline.stages, Decide(rules, annotate=pipeline.decide_mode == "annotate")]
    check_columns(stages)
    prepare_output(output)
    (output / "job.resolved.yaml").write_text(pipeline.describe())
    stats_dir = (output / WORK_DIR / "stats").resolve()
    reader = ReadSource(sources)
    for stage in (reader, *stages):
        stage.stats_dir = str(stats_dir)

    init_ray(pipeline.ray, ray_address)
    context = DataContext.get_current()
    context.execution_options.preserve_order = True
    context.enable_progress_bars = False
    workers = min(_worker_count(), max_workers or 1 << 30)
    log(f"gristmill: {len(files)} input file(s), {workers} worker CPU(s), output {output}")

    dataset = ray.data.from_items([{"path": f, "source": i} for f, i in files], override_num_blocks=len(files))
    # Reading is a plain task per file; the per-batch stages run chained inside one actor per worker:
    # one model load per stage per worker, no object-store hop between stages, and one pool whose size
    # fits the CPUs (a pool per stage can deadlock a small machine).
    dataset = dataset.map_batches(reader, batch_size=1, batch_format="pyarrow")
    dataset = dataset.map_batches(
        StageChain, fn_constructor_kwargs={"stages": stages}, batch_size=pipeline.batch_size,
        batch_format="pyarrow", num_cpus=1, compute=ActorPoolStrategy(min_size=1, max_size=workers),
    )

    writer = RunWriter(output)
    for batch in dataset.iter_batches(batch_size=None, batch_format="pyarrow"):
        writer.write(batch)
    ledger = writer.close()
    pipeline_seconds = time.perf_counter() - started

    stage_stats = merge_stage_stats(stats_dir, [reader.name] + [stage.name for stage in stages])
    records_read = stage_stats[0].counts["records_read"]
    ledger.check(records_read=records_read)

    dedup = None
    sources_counts = writer.source_counts()
    if pipeline.dedup is not None and any(C.MINHASH in stage.writes for stage in stages):
        from gristmill.pipeline.dedup import deduplicate_run

        dedup = deduplicate_run(output, pipeline.dedup, log=log, workers=workers)
        ledger.kept -= dedup.removed
        ledger.dropped += dedup.dropped
        for source, removed in dedup.removed_by_source.items():
            sources_counts[source]["kept"] -= removed
        ledger.check(records_read=records_read)

    tokenize_started = time.perf_counter()
    manifest = tokenize_run(output / "curated", output / "shards", pipeline.tokenize)
    tokens = {
        "vocab_size": manifest.vocab_size,
        "train_tokens": sum(s.tokens for s in manifest.shards if s.split == "train"),
        "val_tokens": sum(s.tokens for s in manifest.shards if s.split == "val"),
        "train_docs": sum(s.docs for s in manifest.shards if s.split == "train"),
        "val_docs": sum(s.docs for s in manifest.shards if s.split == "val"),
        "shards": len(manifest.shards),
    }
    stats = RunStats(
        ledger=ledger, stages=stage_stats, scores=writer.scores, sources=sources_counts, tokens=tokens,
        dedup=dedup.to_dict() if dedup else None,
        funnel=funnel(ledger, [s.stage for s in stage_stats]),
        pii=pii_stats(pipeline.stages, stage_stats),
        seconds={"pipeline": round(pipeline_seconds, 3), "tokenize": round(time.perf_counter() - tokenize_started, 3),
                 "total": round(time.perf_counter() - started, 3)},
    )
    (output / "stats.json").write_text(stats.to_json())
    shutil.rmtree(output / WORK_DIR, ignore_errors=True)
    return RunResult(output, ledger, stats)
