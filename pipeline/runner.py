"""The runner: a Pipeline (or a YAML job) in, a run folder out.

    sources ─► extract ─► language ─► quality ─► signatures ─► decide ─► writers ─► dedup ─► tokenize
    (one SplitWorker actor task per input split, on the workers: input_task.py)  (global steps)

The driver plans and counts; it never carries document data. It lists the inputs, cuts the big ones into
splits (splits.py; a file whose splits do not chain up is read again whole), keeps a fixed pool of
`SplitWorker` actors (one per worker CPU, spread over a cluster's nodes) busy with one split each, and
receives each split's completion record: counts, summaries, the parts written, the node. The workers
read their split as a stream of bounded batches, run the stages and the decide step, and write the part
files themselves, named after the split (writers.py), so a rerun gives the same bytes whatever the worker
count or the order splits finish in. At the end the ledger must sum, and must equal the number of records
the sources read; otherwise the run fails.

Restartable, step by step, all under RUN/.work until the run completes:
  run.json          the job and inputs the run was started with (a resume must match them)
  parts/, done/     each split's part files, then its completion record listing them (writers.py)
  dedup.json        written after curated/, rejected/, quarantine/ were published from parts/ (hard
                    links) and deduplicated; until then a resume publishes and dedups again
  tokens.json       written after shards/ is complete; until then a resume tokenizes again
stats.json is written last (temp + rename), then .work is removed. `--resume` skips what is recorded;
every step rewrites its outputs from recorded inputs, so a resumed run's bytes are a clean run's.
Dying workers are replaced by Ray (the actor is restarted and its split redone from the start).
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
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from gristmill.pipeline.api import Pipeline
from gristmill.pipeline.cluster import check_shared_paths
from gristmill.pipeline.decide import Decide
from gristmill.pipeline.faults import fault_point
from gristmill.pipeline.input_task import SOURCE_STAGE, SplitTask, SplitWorker
from gristmill.pipeline.sources.base import WHOLE
from gristmill.pipeline.sources.warc import WarcSource
from gristmill.pipeline.splits import check_chain, plan_splits
from gristmill.pipeline.stages.base import Stage
from gristmill.pipeline.stages.pii import pii_stats
from gristmill.pipeline.storage import is_uri, worker_env
from gristmill.pipeline.tokenize import tokenize_run
from gristmill.pipeline.writers import (DONE, OUTPUTS, PARTS, RecordSums, SplitRecord, discard_input, read_done,
                                        split_name, write_atomic)
from gristmill.schemas import columns as C
from gristmill.schemas.job import Job, JobError, RayConfig
from gristmill.schemas.stats import Ledger, RunStats, StageStats, funnel

WORK_DIR = ".work"
IDENTITY = "run.json"  # in the work folder: the job and inputs the run was started with


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


def check_columns(stages: list[Stage]) -> None:
    """Fail before launching if a stage reads a column nothing upstream writes, or writes an unknown type."""
    available = set(C.SOURCE_COLUMNS)
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


def _peak_rss_mib() -> float | None:
    """This process's peak resident memory so far (VmHWM), in MiB; None where /proc is not there."""
    try:
        with open("/proc/self/status") as handle:
            return round(next(int(line.split()[1]) for line in handle if line.startswith("VmHWM:")) / 1024, 1)
    except (OSError, StopIteration):
        return None


PLAN_CHUNK = 64  # inputs planned per Ray task


def _plan_chunk(inputs: list[tuple[str, str]], split_bytes: int) -> list[list]:
    """The splits of each (path, source type): a Ray task, so the inputs' bytes (gzip members peeked at,
    plain WARC headers followed, JSONL newlines counted) are read on a worker, never on the driver. A file
    that cannot be planned (unreadable, corrupt footer) is one split: its reader quarantines what it can't read."""
    out = []
    for path, source_type in inputs:
        try:
            out.append(plan_splits(path, source_type, split_bytes))
        except Exception:  # noqa: BLE001 - the reader reports the problem, with the reason, as quarantine rows
            out.append([WHOLE])
    return out


def plan_tasks(input_paths: list[str], source_of: dict[str, int], sources: list, split_bytes: int,
               resume_work: Path | None = None, remote_env: dict | None = None) -> list[SplitTask]:
    """Every input's splits (splits.py), in input and split order, planned by Ray tasks of PLAN_CHUNK inputs
    each (all submitted at once). Resuming, an input that an earlier invocation had to read whole (its split
    0 record says one split) stays whole."""
    import ray

    planner = ray.remote(num_cpus=1)(_plan_chunk).options(**(remote_env or {}))
    chunks = [[(path, sources[source_of[path]].type) for path in input_paths[i:i + PLAN_CHUNK]]
              for i in range(0, len(input_paths), PLAN_CHUNK)]
    planned = [ranges for result in ray.get([planner.remote(chunk, split_bytes) for chunk in chunks]) for ranges in result]
    tasks = []
    for index, (path, ranges) in enumerate(zip(input_paths, planned)):
        if len(ranges) > 1 and resume_work is not None:
            first = read_done(resume_work, index, 0)
            if first is not None and first.count == 1:
                ranges = [WHOLE]
        tasks += [SplitTask(index, k, path, source_of[path], r, len(ranges)) for k, r in enumerate(ranges)]
    return tasks


def receive(ref):
    """`ray.get` of a completion record: the one place the driver takes data from the workers."""
    import ray

    return ray.get(ref)


class RunTotals:
    """The completion records folded into the run's totals as they arrive (`sums`: ledger, score summaries,
    per-source counts, stage counters), so the driver holds counts, not one record per split. A split file's
    records wait until all its splits are in and chain up (splits.check_chain); per split, a slim record stays
    (its part files, node, worker, ledger) for the publish step and stats.json["run"]."""

    def __init__(self, stage_names: list[str]):
        self.sums = RecordSums(stage_names)
        self.slim: dict[tuple[int, int], SplitRecord] = {}
        self.pending: dict[int, dict[int, SplitRecord]] = {}
        self.received_bytes = 0

    def add(self, record: SplitRecord) -> str | None:
        """Fold `record` in; for the last split of a split file, the reason its splits do not chain up
        (None when they do). Records of a file that does not chain up are not folded in: it is read again."""
        if record.count == 1:
            self._fold(record)
            return None
        group = self.pending.setdefault(record.index, {})
        group[record.split] = record
        if len(group) < record.count:
            return None
        del self.pending[record.index]
        problem = check_chain([group[k].split_report for k in range(record.count)])
        if problem is None:
            for k in range(record.count):
                self._fold(group[k])
        return problem

    def _fold(self, record: SplitRecord) -> None:
        self.sums.add(record)
        self.slim[(record.index, record.split)] = dataclasses.replace(record, scores={}, stages=[], sources={})


def _run_splits(todo: list[SplitTask], sources: list, stages: list[Stage], pipeline: Pipeline, work: Path,
                workers: int, remote_env: dict, log, on_record) -> None:
    """Process `todo` on a fixed pool of SplitWorker actors, one split in flight per actor (an idle actor
    takes the next split); `on_record(record, bytes received)` takes each completion record as it arrives.

    Ray spreads the actors over the nodes (SPREAD). An actor that dies is restarted (its models loaded
    again) and its split retried from the start (max_restarts / max_task_retries unbounded): the split's
    outputs are rewritten under the same names, so retries change nothing. Outputs do not depend on the
    order splits finish in, nor on which actor ran them."""
    import ray

    if not todo:
        return
    actor = ray.remote(num_cpus=1, max_restarts=-1, max_task_retries=-1)(SplitWorker)
    pool = [actor.options(scheduling_strategy="SPREAD", **remote_env).remote(
                sources, stages, str(work.resolve()), pipeline.batch_size, pipeline.batch_bytes)
            for _ in range(min(workers, len(todo)))]
    progress = None
    if sys.stderr.isatty() or os.environ.get("GRISTMILL_PROGRESS") == "1":  # quiet in logs and CI
        from gristmill.pipeline.progress import Progress, input_sizes

        progress = Progress(log, input_sizes([t.path for t in todo], [sources[t.source].type for t in todo]))
    queue, idle, running = list(reversed(todo)), list(pool), {}
    try:
        while queue or running:
            while idle and queue:
                worker, task = idle.pop(), queue.pop()
                running[worker.process.remote(task)] = (worker, task)
            ready, _ = ray.wait(list(running), num_returns=1)
            worker, task = running.pop(ready[0])
            text = receive(ready[0])
            idle.append(worker)
            record = SplitRecord.from_json(text)
            on_record(record, len(text.encode()))
            fault_point("driver:split")
            if progress is not None:
                progress.update(record, task.path)
    finally:
        for worker in pool:
            ray.kill(worker)
    if progress is not None:
        progress.finish()


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


def _what_differs(old: str, new: str) -> str:
    """The job keys (e.g. `split_bytes: 1024 → 4096`) or the inputs that differ between two run identities."""
    import yaml

    try:
        old_d, new_d = json.loads(old), json.loads(new)
        old_job, new_job = yaml.safe_load(old_d["job"]) or {}, yaml.safe_load(new_d["job"]) or {}
    except (ValueError, KeyError, TypeError, yaml.YAMLError):
        return "unreadable run.json"
    if not isinstance(old_job, dict) or not isinstance(new_job, dict):
        return "the job"
    changes = [f"{key}: {old_job.get(key)!r} → {new_job.get(key)!r}" for key in sorted({*old_job, *new_job})
               if old_job.get(key) != new_job.get(key)]
    if old_d.get("inputs") != new_d.get("inputs"):
        changes.append("the input files")
    return "; ".join(changes) or "the job"


def prepare_resume(output: Path, work: Path, identity: str, tasks: list[SplitTask]) -> dict[tuple[int, int], SplitRecord]:
    """Keep the completed splits of an interrupted run; remove everything else it left. Returns the
    completion records of the splits whose record exists and lists part files that are all there."""
    started = work / IDENTITY
    if not started.exists():
        raise JobError(f"{output} holds no interrupted run to resume (no {WORK_DIR}/{IDENTITY}); run without --resume")
    if started.read_text() != identity:
        raise JobError(f"{output} was started with another job or other inputs ({_what_differs(started.read_text(), identity)}); "
                       "run without --resume to start over")
    done = {}
    for task in tasks:
        record = read_done(work, task.index, task.split)
        if record is not None and record.count == task.count:
            done[(task.index, task.split)] = record
    listed = {part["file"] for record in done.values() for part in record.parts}
    for name in OUTPUTS:  # part files no complete record lists (unfinished splits, .tmp files) are redone
        for path in (work / PARTS / name).glob("part-*"):
            if f"{name}/{path.name}" not in listed:
                path.unlink()
    kept_records = {f"{split_name(*key)}.json" for key in done}
    for path in (work / DONE).glob("*"):
        if path.name not in kept_records:
            path.unlink()
    return done


def publish(output: Path, work: Path, records: list[SplitRecord]) -> None:
    """curated/, rejected/, quarantine/ := the part files the completion records list, as hard links (a
    copy where links fail). Dedup rewrites curated parts by writing a new file and renaming it over the
    link, so the originals under the work folder stay intact and a resumed run can publish and dedup again."""
    for name in OUTPUTS:
        if (output / name).exists():
            shutil.rmtree(output / name)
        (output / name).mkdir(parents=True)
    for file in sorted(part["file"] for record in records for part in record.parts):
        try:
            os.link(work / PARTS / file, output / file)
        except OSError:
            shutil.copyfile(work / PARTS / file, output / file)


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
    source_of = {}
    for path, index in files:  # the first source that names a path reads it
        source_of.setdefault(path, index)
    remote_env = worker_env(input_paths)
    tasks = plan_tasks(input_paths, source_of, sources, pipeline.split_bytes, work if resume else None, remote_env)
    if resume:
        done = prepare_resume(output, work, identity, tasks)
    else:
        done = {}
        prepare_output(output)
        work.mkdir(parents=True)
        write_atomic(work / IDENTITY, identity)
    (output / "job.resolved.yaml").write_text(pipeline.describe())
    todo = [task for task in tasks if (task.index, task.split) not in done]
    workers = min(_worker_count(), max_workers or 1 << 30)
    log(f"gristmill: {len(input_paths)} input file(s), {workers} worker CPU(s), output {output}"
        + (f"; resuming: {len(done)} split(s) already done" if resume else ""))

    totals = RunTotals([SOURCE_STAGE] + [stage.name for stage in stages])
    first_split = {task.index: task for task in tasks if task.split == 0}
    whole: list[SplitTask] = []

    def accept(record: SplitRecord, received: int = 0) -> None:
        totals.received_bytes += received
        if (problem := totals.add(record)) is not None:
            # Its splits do not chain up (or one met a break): read it again whole, so its outcome is exactly
            # an unsplit file's (splits.py).
            task = first_split[record.index]
            log(f"gristmill: {task.path} is read whole instead of in {task.count} splits: {problem}")
            discard_input(work, task.index)
            whole.append(SplitTask(task.index, 0, task.path, task.source))

    records_skipped = sum(record.ledger.input for record in done.values())
    for record in done.values():
        accept(record)
    # Splits whose record was kept, and input files all of whose splits were (the same count unsplit).
    splits_skipped = len(done)
    inputs_skipped = len({t.index for t in tasks} - {t.index for t in tasks if (t.index, t.split) not in done})
    done = None  # the records live on folded into `totals`
    _run_splits(todo, sources, stages, pipeline, work, workers, remote_env, log, accept)
    if whole:
        _run_splits(list(whole), sources, stages, pipeline, work, workers, remote_env, log, accept)
        whole_inputs = {t.index for t in whole}
        tasks = sorted([t for t in tasks if t.index not in whole_inputs] + whole, key=lambda t: (t.index, t.split))
    pipeline_seconds = time.perf_counter() - started
    missing = [t.path for t in tasks if (t.index, t.split) not in totals.slim]
    if missing:
        raise RuntimeError(f"{len(missing)} input(s) have no completion record after the run, e.g. {missing[0]!r}")
    records = [totals.slim[(t.index, t.split)] for t in tasks]
    ledger, scores, sources_counts = totals.sums.ledger, totals.sums.scores, totals.sums.source_counts()
    stage_stats = list(totals.sums.stages.values())
    nodes: dict[str, int] = {}  # node id → input files read there
    rows_by_node: dict[str, int] = {}  # node id → records processed there
    parts_by_node: dict[str, int] = {}  # node id → part files written there
    splits_by_worker = Counter(r.split_report.get("worker") for r in records if r.split_report.get("worker"))
    for record in records:
        if record.node is not None:
            nodes[record.node] = nodes.get(record.node, 0) + (record.split == 0)
            rows_by_node[record.node] = rows_by_node.get(record.node, 0) + record.ledger.input
            parts_by_node[record.node] = parts_by_node.get(record.node, 0) + len(record.parts)
    driver_peak = {"splits": _peak_rss_mib()}  # the driver's peak RSS after each step (VmHWM only grows)
    records_read = stage_stats[0].counts["records_read"]
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
        publish(output, work, records)
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

    driver_peak["dedup"] = _peak_rss_mib()
    from gristmill.pipeline.breakdown import breakdown_of

    breakdown = breakdown_of(output)
    representation = None
    tagger = next((stage for stage in stages if C.IDENTITY_DESCRIPTORS in stage.writes), None)
    if tagger is not None:  # representation before filtering (the tagger's counters) and after (curated/, deduped)
        from gristmill.pipeline.representation import before_after, counts_of_curated

        before = next(s.counts for s in stage_stats if s.stage == tagger.name)
        representation = before_after(before, counts_of_curated(output / "curated"))

    driver_peak["breakdown"] = _peak_rss_mib()
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
    driver_peak["tokenize"] = _peak_rss_mib()
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
    # this invocation's work: input files and splits it skipped because an interrupted run had finished them; the Ray nodes
    # the splits ran on (node id → input files read there, → records processed there, → part files written
    # there); and the bytes of completion records the driver received (all it receives from the workers)
    document["run"] = {"resumed": resume, "inputs": len(input_paths), "inputs_skipped": inputs_skipped,
                       "splits_skipped": splits_skipped, "records_skipped": records_skipped, "nodes": dict(sorted(nodes.items())),
                       "rows_by_node": dict(sorted(rows_by_node.items())),
                       "parts_by_node": dict(sorted(parts_by_node.items())),
                       "splits": len(tasks), "split_inputs": len({t.index for t in tasks if t.count > 1}),
                       "read_whole_after_a_break": len(whole),
                       "splits_by_worker": dict(sorted(splits_by_worker.items())), "driver_received_bytes": totals.received_bytes,
                       "driver_peak_rss_mib": driver_peak}
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
