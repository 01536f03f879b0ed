"""The runner: a Pipeline (or a YAML job) in, a run folder out.

    sources ─► extract ─► language ─► quality ─► signatures ─► decide ─► writers ─► dedup ─► tokenize
    (Ray Data map_batches, order preserved)                         (driver)    (global steps)

Per-batch stages run on Ray (a local Ray started here, or the cluster RAY_ADDRESS names). Rows come
back in input order, and the writers name their part files after the input they came from
(writers.py), so a rerun gives the same bytes whatever the worker count. At the end the ledger must
sum, and must equal the number of records the sources read; otherwise the run fails.

Restartable, step by step, all under RUN/.work until the run completes:
  run.json          the job and inputs the run was started with (a resume must match them)
  parts/, done/     each input's part files, then its completion record (writers.py)
  dedup.json        written after curated/, rejected/, quarantine/ were published from parts/ (hard
                    links) and deduplicated; until then a resume publishes and dedups again
  tokens.json       written after shards/ is complete; until then a resume tokenizes again
stats.json is written last (temp + rename), then .work is removed. `--resume` skips what is recorded;
every step rewrites its outputs from recorded inputs, so a resumed run's bytes are a clean run's.
Dying workers are replaced by Ray (read tasks retried, actors restarted and their batch retried).
Fault points for tests: pipeline/faults.py.
An output URI (s3://bucket/prefix): the run works in a local staging folder and is published to the URI
when complete, `_SUCCESS` last (pipeline/storage.py).
"""

from __future__ import annotations

import dataclasses
import glob
import json
import logging
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from gristmill.pipeline.api import Pipeline
from gristmill.pipeline.cluster import check_shared_paths
from gristmill.pipeline.decide import Decide
from gristmill.pipeline.sources.warc import WarcSource
from gristmill.pipeline.stages.base import Stage
from gristmill.pipeline.stages.pii import pii_stats
from gristmill.pipeline.storage import is_uri, worker_env
from gristmill.pipeline.tokenize import tokenize_run
from gristmill.pipeline.faults import fault_point
from gristmill.pipeline.writers import DONE, OUTPUTS, PARTS, RunWriter, merge_records, read_done, write_atomic
from gristmill.schemas import columns as C
from gristmill.schemas.job import Job, JobError, RayConfig
from gristmill.schemas.stats import Ledger, RunStats, StageStats, funnel

WORK_DIR = ".work"
SOURCE_STAGE = "source"
BATCHES = "batches"  # in the stats folder: one folder of stage stats per batch
IDENTITY = "run.json"  # in the work folder: the job and inputs the run was started with
NODE_FILE = "node.json"  # in a batch's stats folder: the Ray node it ran on and its row count


@dataclass
class RunResult:
    output: Path
    ledger: Ledger
    stats: RunStats
    uri: str | None = None  # the URI the run was published to (storage.py); `output` was its staging folder


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
        try:
            matches = _matches(pattern)
        except (OSError, ValueError, ImportError) as err:  # unknown scheme, s3fs missing, store refused
            raise JobError(f"input {pattern!r}: {err}") from None
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
    _batch_key: str | None = None

    def process(self, table: pa.Table, counts) -> pa.Table:
        fault_point("read")
        parts = [self.config[index].read(path) for path, index in zip(table["path"].to_pylist(), table["source"].to_pylist())]
        counts[f"node:{_node_id()}"] += table.num_rows
        out = pa.concat_tables(parts) if parts else C.SOURCE_SCHEMA.empty_table()
        counts["files"] += table.num_rows
        counts["records_read"] += out.num_rows
        return out

    def write_stats(self, stats: StageStats) -> None:
        """One file per input file, named after it: a retried read (its worker died) overwrites the
        first attempt's counts instead of adding to them, so records_read stays exact."""
        if not self.stats_dir or self._batch_key is None:
            return
        folder = os.path.join(self.stats_dir, self.name)
        os.makedirs(folder, exist_ok=True)
        write_atomic(Path(folder) / f"{self._batch_key}.json", json.dumps(stats.to_dict()))

    def __call__(self, table: pa.Table) -> pa.Table:
        self._batch_key = _key(table["path"].to_pylist())
        return super().__call__(table)


def _key(values: list) -> str:
    import xxhash

    return xxhash.xxh3_128_hexdigest("\0".join(map(str, values)).encode("utf-8", "surrogatepass"))


def _node_id() -> str:
    import ray

    return ray.get_runtime_context().get_node_id() if ray.is_initialized() else "local"


class StageChain:
    """The per-batch stages run one after the other on each batch, inside one Ray actor.

    Called with an input file's records (its read is fused into the same actor task), it runs the
    stages on batches of `batch_size` rows and yields each: a task is one input file, so the files
    spread over the pool's actors (and a cluster's nodes), and a batch never spans two inputs."""

    def __init__(self, stages: list[Stage], stats_dir: str | None = None, batch_size: int | None = None):
        self.stages, self.stats_dir, self.batch_size = stages, stats_dir, batch_size

    def __call__(self, table: pa.Table):
        size = self.batch_size or max(table.num_rows, 1)
        for start in range(0, table.num_rows, size):
            yield self.run_batch(table.slice(start, size))

    def run_batch(self, table: pa.Table) -> pa.Table:
        # The stages' per-batch stats go to a folder named after the batch's rows, emptied first: a batch
        # retried after its actor died replaces the dead attempt's stats instead of adding to them.
        folder, rows = None, table.num_rows
        if self.stats_dir:
            folder = os.path.join(self.stats_dir, BATCHES, _key(table[C.ID].to_pylist()))
            shutil.rmtree(folder, ignore_errors=True)
            for stage in self.stages:
                stage.stats_dir = folder
        for stage in self.stages:
            fault_point(f"stage:{stage.name}")
            table = stage(table)
        if folder:  # the node this batch ran on (stats.json["run"]["rows_by_node"])
            os.makedirs(folder, exist_ok=True)
            write_atomic(Path(folder) / NODE_FILE, json.dumps({"node": _node_id(), "rows": rows}))
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
        paths = sorted((stats_dir / name).glob("*.json")) + sorted((stats_dir / BATCHES).glob(f"*/{name}/*.json"))
        parts = [StageStats.from_dict(json.loads(p.read_text())) for p in paths]
        merged.append(sum(parts, StageStats(name)))
    return merged


def prepare_output(output: Path) -> None:
    """Remove what an earlier run left, so no stale part file survives into this run's outputs."""
    for name in (*OUTPUTS, "shards", WORK_DIR):
        if (output / name).exists():
            shutil.rmtree(output / name)
    for name in ("stats.json", "job.resolved.yaml"):
        (output / name).unlink(missing_ok=True)
    output.mkdir(parents=True, exist_ok=True)


def _identity(pipeline: Pipeline, inputs: list[str]) -> str:
    """What a resumed run must share with the run it resumes: the resolved job and the input list."""
    return json.dumps({"job": pipeline.describe(), "inputs": inputs}, sort_keys=True)


def prepare_resume(output: Path, work: Path, identity: str, inputs: list[str]) -> list[int]:
    """Keep the completed inputs of an interrupted run; remove everything else it left. Returns the
    indexes of the inputs whose completion record exists."""
    started = work / IDENTITY
    if not started.exists():
        raise JobError(f"{output} holds no interrupted run to resume (no {WORK_DIR}/{IDENTITY}); run without --resume")
    if started.read_text() != identity:
        raise JobError(f"{output} was started with another job or other inputs; run without --resume to start over")
    done = [i for i in range(len(inputs)) if (work / DONE / f"{i:05d}.json").exists()]
    keep = {f"part-{i:05d}" for i in done}
    for name in OUTPUTS:  # part files of unfinished inputs (renamed or still .tmp) are redone
        for path in (work / PARTS / name).glob("part-*"):
            if path.name[:10] not in keep or path.name.endswith(".tmp"):
                path.unlink()
    for path in (work / DONE).glob("*.tmp"):
        path.unlink()
    shutil.rmtree(work / "stats", ignore_errors=True)  # stage counters of the interrupted invocation
    return done


def publish(output: Path, work: Path) -> None:
    """curated/, rejected/, quarantine/ := the inputs' part files, as hard links (a copy where links
    fail). Dedup rewrites curated parts by writing a new file and renaming it over the link, so the
    originals under the work folder stay intact and a resumed run can publish and dedup again."""
    for name in OUTPUTS:
        if (output / name).exists():
            shutil.rmtree(output / name)
        (output / name).mkdir(parents=True)
        for path in sorted((work / PARTS / name).glob("part-*.parquet")):
            try:
                os.link(path, output / name / path.name)
            except OSError:
                shutil.copyfile(path, output / name / path.name)


def _dedup_from_dict(d: dict):
    from gristmill.pipeline.dedup.run import DedupResult

    fields = {f.name for f in dataclasses.fields(DedupResult)}
    result = DedupResult(**{k: v for k, v in d.items() if k in fields})
    result.cluster_sizes = {int(k): v for k, v in result.cluster_sizes.items()}
    return result


def _cut_from_dict(d: dict):
    from gristmill.filters.quality_model import Cutoff
    from gristmill.pipeline.quality_cut import CutResult

    cutoff = Cutoff(**{k: d[k] for k in ("documents", "keep", "top_fraction", "score", "id")})
    return CutResult(cutoff, d["removed"], dict(d["removed_by_source"]))


def run(job: Job, output: str | Path | None = None, inputs: list[str] | None = None, log=print,
        max_workers: int | None = None, resume: bool = False, staging: str | Path | None = None) -> RunResult:
    """Run a YAML job: the same as `Pipeline.from_job(job).run(...)`."""
    return execute(Pipeline.from_job(job), output=output, inputs=inputs, log=log, max_workers=max_workers,
                   resume=resume, staging=staging or job.staging)


def execute(pipeline: Pipeline, output: str | Path | None = None, inputs: list[str] | None = None,
            ray_address: str | None = None, max_workers: int | None = None, log=print,
            resume: bool = False, staging: str | Path | None = None) -> RunResult:
    """Run `pipeline` into `output`; `max_workers` caps the actor pool (default: the cluster's CPUs).
    An `output` URI (s3://bucket/prefix as a str) runs in the local `staging` folder and is published to
    the URI when complete (storage.py).

    `resume`: finish the interrupted run in `output` (same job, same inputs): inputs with a completion
    record are skipped, the rest are processed, and the global steps not recorded as done are redone
    from the inputs' part files. The outputs are the bytes a clean run writes."""
    import ray
    from ray.data import ActorPoolStrategy, DataContext

    started = time.perf_counter()
    if is_uri(output or pipeline.output):
        from gristmill.pipeline.storage import execute_to_uri

        return execute_to_uri(pipeline, str(output or pipeline.output), staging=staging, inputs=inputs,
                              ray_address=ray_address, max_workers=max_workers, log=log, resume=resume)
    output = Path(output or pipeline.output or Path("runs") / pipeline.name)
    sources = list(pipeline.sources)
    if inputs:  # --input: the first source's kind, reading these paths instead
        first = sources[0]
        sources = [WarcSource(list(inputs), first.max_page_bytes) if first.type == "crawl"
                   else dataclasses.replace(first, paths=list(inputs))]
    init_ray(pipeline.ray, ray_address)
    # A multi-node cluster must share the run folder and the inputs (cluster.py); a laptop skips this.
    # Only local patterns are globbed here: remote ones are listed once, below, and read alike on every node.
    local_patterns = [p for s in sources if not hasattr(s, "materialize") for p in s.paths if not is_uri(p)]
    check_shared_paths([output, *(s.folder(output) for s in sources if hasattr(s, "materialize"))],
                       lambda: expand_inputs(local_patterns) if local_patterns else [], log=log)
    # Crawl sources fetch first (on this Ray) and are read as the WARC files they wrote.
    crawls = {}
    for index, source in enumerate(sources):
        if hasattr(source, "materialize"):
            output.mkdir(parents=True, exist_ok=True)
            sources[index], crawls[str(index)] = source.materialize(output, log=log)
    files = sorted({(path, index) for index, source in enumerate(sources) for path in expand_inputs(source.paths)})
    input_paths = sorted({path for path, _ in files})
    rules = [rule for stage in pipeline.stages for rule in stage.rules()]
    stages = [*pipeline.stages, Decide(rules, annotate=pipeline.decide_mode == "annotate")]
    check_columns(stages)
    work = output / WORK_DIR
    identity = _identity(pipeline, input_paths)
    if resume and (output / "stats.json").exists() and not work.exists():
        log(f"gristmill: {output} is a complete run; nothing to resume")
        return load_result(output)
    if resume:
        done = prepare_resume(output, work, identity, input_paths)
    else:
        done = []
        prepare_output(output)
        work.mkdir(parents=True)
        write_atomic(work / IDENTITY, identity)
    (output / "job.resolved.yaml").write_text(pipeline.describe())
    stats_dir = (work / "stats").resolve()
    reader = ReadSource(sources)
    reader.stats_dir = str(stats_dir)
    todo = [i for i in range(len(input_paths)) if i not in set(done)]

    context = DataContext.get_current()
    context.execution_options.preserve_order = True
    context.enable_progress_bars = False
    workers = min(_worker_count(), max_workers or 1 << 30)
    log(f"gristmill: {len(input_paths)} input file(s), {workers} worker CPU(s), output {output}"
        + (f"; resuming: {len(done)} input(s) already done" if resume else ""))

    todo_paths = {input_paths[i] for i in todo}
    remaining = [(f, i) for f, i in files if f in todo_paths]
    if remaining:
        dataset = ray.data.from_items([{"path": f, "source": i} for f, i in remaining], override_num_blocks=len(remaining))
        # Reading a file (Ray Data fuses it into the actor's task) and the per-batch stages run chained
        # inside one actor per worker: one model load per stage per worker, no object-store hop between
        # stages, and one pool whose size fits the CPUs (a pool per stage can deadlock a small machine).
        # A worker that dies is replaced by Ray's defaults, which the fault tests rely on: the actor is
        # restarted and its file retried (Ray Data sets max_restarts=-1 and max_task_retries=-1 for actor
        # pools); reading and the stages are deterministic, so a retry writes the same rows.
        # Remote inputs: the workers get this process's storage settings (endpoint, credentials; storage.py).
        storage_env = worker_env(input_paths)
        dataset = dataset.map_batches(reader, batch_size=1, batch_format="pyarrow", **storage_env)
        # One input file per actor task (batch_size=None: Ray Data would otherwise bundle `batch_size`
        # paths into one task, so a few tasks, and one actor, took every file); a fixed pool of `workers`
        # actors (Ray Data spreads them over the nodes; each loads its models on its first file) and one
        # file in flight per actor, so an idle actor takes the next file. Outputs do not depend on it:
        # rows come back in input order, and a batch never spans two files.
        dataset = dataset.map_batches(
            StageChain, batch_size=None, batch_format="pyarrow", num_cpus=1,
            fn_constructor_kwargs={"stages": stages, "stats_dir": str(stats_dir), "batch_size": pipeline.batch_size},
            compute=ActorPoolStrategy(size=min(workers, len(remaining)), max_tasks_in_flight_per_actor=1), **storage_env,
        )
        writer = RunWriter(work, input_paths, todo)
        progress = None
        if sys.stderr.isatty() or os.environ.get("GRISTMILL_PROGRESS") == "1":  # quiet in logs and CI
            from gristmill.pipeline.progress import Progress, input_sizes

            progress = Progress(log, input_sizes([f for f, _ in remaining], [sources[i].type for _, i in remaining]))
        for batch in dataset.iter_batches(batch_size=None, batch_format="pyarrow"):
            writer.write(batch)
            if progress is not None:
                progress.update(batch)
        if progress is not None:
            progress.finish()
        writer.close()
    pipeline_seconds = time.perf_counter() - started

    records = [read_done(work, i) for i in range(len(input_paths))]
    missing = [input_paths[i] for i, r in enumerate(records) if r is None]
    if missing:
        raise RuntimeError(f"{len(missing)} input(s) have no completion record after the run, e.g. {missing[0]!r}")
    ledger, scores, sources_counts = merge_records(records)
    stage_stats = merge_stage_stats(stats_dir, [reader.name] + [stage.name for stage in stages])
    nodes = {key.removeprefix("node:"): stage_stats[0].counts.pop(key)
             for key in sorted(stage_stats[0].counts) if key.startswith("node:")}
    rows_by_node: dict[str, int] = {}
    for path in sorted((stats_dir / BATCHES).glob(f"*/{NODE_FILE}")):
        batch = json.loads(path.read_text())
        rows_by_node[batch["node"]] = rows_by_node.get(batch["node"], 0) + batch["rows"]
    records_skipped = sum(records[i].ledger.input for i in done)
    records_read = stage_stats[0].counts["records_read"] + records_skipped
    ledger.check(records_read=records_read)

    dedup = None
    classifier_cut = None
    post_record = work / "dedup.json"  # the global steps after the writers, once done (resume keeps them)
    if post_record.exists():
        saved = json.loads(post_record.read_text())
        dedup = _dedup_from_dict(saved["dedup"]) if saved.get("dedup") else None
        classifier_cut = _cut_from_dict(saved["classifier_cut"]) if saved.get("classifier_cut") else None
        log("gristmill: the classifier cut and dedup were done before the interruption; kept")
    else:
        publish(output, work)
        top_fraction = pipeline.classifier_top_fraction()
        if top_fraction is not None and pipeline.decide_mode == "filter":
            from gristmill.pipeline.quality_cut import cut_run

            classifier_cut = cut_run(output, top_fraction, log=log)
        if pipeline.dedup is not None and any(C.MINHASH in stage.writes for stage in stages):
            from gristmill.pipeline.dedup import deduplicate_run

            dedup = deduplicate_run(output, pipeline.dedup, log=log, workers=workers)
        write_atomic(post_record, json.dumps({"dedup": dedup.to_dict() if dedup else None,
                                              "classifier_cut": classifier_cut.to_dict() if classifier_cut else None}))
    for step in (classifier_cut, dedup):  # each global step moved kept documents to rejected/
        if step is not None:
            ledger.kept -= step.removed
            ledger.dropped += step.dropped
            for source, removed in step.removed_by_source.items():
                sources_counts[source]["kept"] -= removed
            ledger.check(records_read=records_read)

    from gristmill.pipeline.breakdown import breakdown_of

    breakdown = breakdown_of(output)
    representation = None
    tagger = next((stage for stage in stages if C.IDENTITY_DESCRIPTORS in stage.writes), None)
    if tagger is not None:  # representation before filtering (the tagger's counters) and after (curated/, deduped)
        from gristmill.pipeline.representation import before_after, counts_of_curated

        before = next(s.counts for s in stage_stats if s.stage == tagger.name)
        representation = before_after(before, counts_of_curated(output / "curated"))

    tokenize_started = time.perf_counter()
    tokens_record = work / "tokens.json"
    if tokens_record.exists():
        tokens = json.loads(tokens_record.read_text())
    else:
        manifest = tokenize_run(output / "curated", output / "shards", pipeline.tokenize)
        tokens = {
            "vocab_size": manifest.vocab_size,
            "train_tokens": sum(s.tokens for s in manifest.shards if s.split == "train"),
            "val_tokens": sum(s.tokens for s in manifest.shards if s.split == "val"),
            "train_docs": sum(s.docs for s in manifest.shards if s.split == "train"),
            "val_docs": sum(s.docs for s in manifest.shards if s.split == "val"),
            "shards": len(manifest.shards),
        }
        write_atomic(tokens_record, json.dumps(tokens))
    fault_point("finish")
    stats = RunStats(
        ledger=ledger, stages=stage_stats, scores=scores, sources=sources_counts, tokens=tokens,
        dedup=dedup.to_dict() if dedup else None, crawl=crawls or None, representation=representation,
        funnel=funnel(ledger, [s.stage for s in stage_stats]), breakdown=breakdown,
        pii=pii_stats(pipeline.stages, stage_stats),
        seconds={"pipeline": round(pipeline_seconds, 3), "tokenize": round(time.perf_counter() - tokenize_started, 3),
                 "total": round(time.perf_counter() - started, 3)},
    )
    if classifier_cut is not None:
        stats.classifier_cut = classifier_cut.to_dict()
    document = json.loads(stats.to_json())
    # this invocation's work: inputs it skipped because an interrupted run had finished them, and the
    # Ray nodes its read tasks ran on (node id → input files read there), and the nodes its per-batch
    # stages ran on (node id → records processed there)
    document["run"] = {"resumed": resume, "inputs": len(input_paths), "inputs_skipped": len(done),
                       "records_skipped": records_skipped, "nodes": nodes,
                       "rows_by_node": dict(sorted(rows_by_node.items()))}
    write_atomic(output / "stats.json", json.dumps(document, indent=2) + "\n")
    shutil.rmtree(work, ignore_errors=True)
    return RunResult(output, ledger, stats)


def load_result(output: Path) -> RunResult:
    """The RunResult of a complete run folder, read back from its stats.json."""
    d = json.loads((output / "stats.json").read_text())
    ledger = Ledger.from_dict(d["ledger"])
    stats = RunStats(ledger=ledger, stages=[StageStats.from_dict(s) for s in d["stages"]], scores={},
                     sources=d["sources"], tokens=d.get("tokens"), dedup=d.get("dedup"), seconds=d.get("seconds", {}),
                     funnel=d.get("funnel", []), crawl=d.get("crawl"), breakdown=d.get("breakdown"),
                     representation=d.get("representation"), classifier_cut=d.get("classifier_cut"), pii=d.get("pii"))
    return RunResult(output, ledger, stats)
