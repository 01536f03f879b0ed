"""The runner: a Pipeline in, a run folder out (a YAML job: `api.run`).

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
Fault points for tests: pipeline/engine/faults.py.
An output URI (s3://bucket/prefix): the run works in a local staging folder and is published to the URI
when complete, `_SUCCESS` last (pipeline/engine/storage.py).
"""

from __future__ import annotations

import dataclasses
import glob
import json
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from gristmill.pipeline.engine.cluster import check_shared_paths, init_ray, worker_count
from gristmill.pipeline.stages.decide import Decide, rules_of
from gristmill.pipeline.engine.faults import fault_point
from gristmill.pipeline.engine.input_task import SOURCE_STAGE, SplitTask, SplitWorker
from gristmill.pipeline.engine.process import peak_rss_mib
from gristmill.pipeline.engine.run_folder import OUTPUTS, RunFolder, write_atomic
from gristmill.pipeline.sources.base import WHOLE
from gristmill.pipeline.sources.warc import WarcSource
from gristmill.pipeline.engine.splits import check_chain, plan_splits
from gristmill.pipeline.stages.base import Stage
from gristmill.pipeline.stages.pii import pii_stats
from gristmill.pipeline.steps.protocol import StepContext, run_steps
from gristmill.pipeline.engine.storage import is_uri, worker_env
from gristmill.pipeline.engine.writers import RecordSums, SplitRecord, discard_input, read_done, split_name
from gristmill.schemas import columns as C
from gristmill.schemas.job import JobError
from gristmill.schemas.stats import Ledger, RunStats, StageStats, funnel

if TYPE_CHECKING:  # the engine takes a Pipeline; api.py (its maker) calls the engine, not the other way
    from gristmill.pipeline.engine.api import Pipeline


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
        from gristmill.pipeline.engine.progress import Progress, input_sizes

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


def prepare_resume(folder: RunFolder, identity: str, tasks: list[SplitTask]) -> dict[tuple[int, int], SplitRecord]:
    """Keep the completed splits of an interrupted run; remove everything else it left. Returns the
    completion records of the splits whose record exists and lists part files that are all there."""
    if not folder.identity.exists():
        raise JobError(f"{folder.root} holds no interrupted run to resume (no {folder.identity.relative_to(folder.root)}); "
                       "run without --resume")
    if folder.identity.read_text() != identity:
        raise JobError(f"{folder.root} was started with another job or other inputs "
                       f"({_what_differs(folder.identity.read_text(), identity)}); run without --resume to start over")
    done = {}
    for task in tasks:
        record = read_done(folder.work, task.index, task.split)
        if record is not None and record.count == task.count:
            done[(task.index, task.split)] = record
    listed = {part["file"] for record in done.values() for part in record.parts}
    for name in OUTPUTS:  # part files no complete record lists (unfinished splits, .tmp files) are redone
        for path in (folder.work_parts / name).glob("part-*"):
            if f"{name}/{path.name}" not in listed:
                path.unlink()
    kept_records = {f"{split_name(*key)}.json" for key in done}
    for path in folder.done.glob("*"):
        if path.name not in kept_records:
            path.unlink()
    return done


def _sources(pipeline: Pipeline, inputs: list[str] | None) -> list:
    """The pipeline's sources; with --input, the first source's kind reading these paths instead."""
    sources = list(pipeline.sources)
    if inputs:
        first = sources[0]
        sources = [WarcSource(list(inputs), first.max_page_bytes) if first.type == "crawl"
                   else dataclasses.replace(first, paths=list(inputs))]
    return sources


def _input_files(sources: list, folder: RunFolder, log) -> tuple[list[str], dict[str, int], dict]:
    """(input paths, the source index reading each, crawl stats): a multi-node cluster must share the run
    folder and the inputs (cluster.py; only local patterns are globbed there: remote ones are listed once,
    here); crawl sources fetch first (on this Ray) and are read as the WARC files they wrote."""
    local_patterns = [p for s in sources if not hasattr(s, "materialize") for p in s.paths if not is_uri(p)]
    check_shared_paths([folder.root, *(s.folder(folder.root) for s in sources if hasattr(s, "materialize"))],
                       lambda: expand_inputs(local_patterns) if local_patterns else [], log=log)
    crawls = {}
    for index, source in enumerate(sources):
        if hasattr(source, "materialize"):
            folder.root.mkdir(parents=True, exist_ok=True)
            sources[index], crawls[str(index)] = source.materialize(folder.root, log=log)
    files = sorted({(path, index) for index, source in enumerate(sources) for path in expand_inputs(source.paths)})
    source_of = {}
    for path, index in files:  # the first source that names a path reads it
        source_of.setdefault(path, index)
    return sorted(source_of), source_of, crawls


def _batch_stages(pipeline: Pipeline) -> list[Stage]:
    """The per-batch stages, prepared on the driver (shared indexes and lists: a bad config fails here),
    with the decide step last, their columns checked."""
    for stage in pipeline.stages:
        stage.prepare()
    stages = [*pipeline.stages, Decide(rules_of(pipeline), annotate=pipeline.decide_mode == "annotate")]
    check_columns(stages)
    return stages


def _start(folder: RunFolder, identity: str, tasks: list[SplitTask], resume: bool) -> dict:
    """A fresh run clears the folder and records its identity; a resume keeps what is proven done."""
    if resume:
        return prepare_resume(folder, identity, tasks)
    folder.clear()
    folder.work.mkdir(parents=True)
    write_atomic(folder.identity, identity)
    return {}


@dataclass
class SplitsDone:
    totals: RunTotals
    tasks: list[SplitTask]  # every split, after any file was read whole again
    skipped: int  # splits an interrupted run had finished
    inputs_skipped: int  # input files all of whose splits an interrupted run had finished
    records_skipped: int
    read_whole: int  # files read again whole because their splits did not chain up


def _process_splits(tasks: list[SplitTask], done: dict, sources: list, stages: list[Stage], pipeline: Pipeline,
                    folder: RunFolder, workers: int, remote_env: dict, log) -> SplitsDone:
    """Every split not done yet, through the actor pool; each completion record folded into the totals."""
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
            discard_input(folder.work, task.index)
            whole.append(SplitTask(task.index, 0, task.path, task.source))

    for record in done.values():
        accept(record)
    todo = [task for task in tasks if (task.index, task.split) not in done]
    _run_splits(todo, sources, stages, pipeline, folder.work, workers, remote_env, log, accept)
    if whole:
        _run_splits(list(whole), sources, stages, pipeline, folder.work, workers, remote_env, log, accept)
        whole_inputs = {t.index for t in whole}
        tasks = sorted([t for t in tasks if t.index not in whole_inputs] + whole, key=lambda t: (t.index, t.split))
    missing = [t.path for t in tasks if (t.index, t.split) not in totals.slim]
    if missing:
        raise RuntimeError(f"{len(missing)} input(s) have no completion record after the run, e.g. {missing[0]!r}")
    inputs_skipped = len({t.index for t in tasks} - {t.index for t in tasks if (t.index, t.split) not in done})
    return SplitsDone(totals, tasks, len(done), inputs_skipped, sum(r.ledger.input for r in done.values()), len(whole))


def _run_report(splits: SplitsDone, records: list[SplitRecord], inputs: int, resume: bool, driver_peak: dict) -> dict:
    """stats.json["run"]: this invocation's work: input files and splits it skipped because an interrupted
    run had finished them; the Ray nodes the splits ran on (node id → input files read there, → records processed there,
    → part files written there); the bytes of completion records the driver received (all it receives
    from the workers); the driver's peak RSS after each step."""
    nodes: dict[str, int] = {}
    rows_by_node: dict[str, int] = {}
    parts_by_node: dict[str, int] = {}
    for record in records:
        if record.node is not None:
            nodes[record.node] = nodes.get(record.node, 0) + (record.split == 0)
            rows_by_node[record.node] = rows_by_node.get(record.node, 0) + record.ledger.input
            parts_by_node[record.node] = parts_by_node.get(record.node, 0) + len(record.parts)
    by_worker = Counter(r.split_report.get("worker") for r in records if r.split_report.get("worker"))
    return {"resumed": resume, "inputs": inputs, "inputs_skipped": splits.inputs_skipped,
            "splits_skipped": splits.skipped, "records_skipped": splits.records_skipped, "nodes": dict(sorted(nodes.items())),
            "rows_by_node": dict(sorted(rows_by_node.items())), "parts_by_node": dict(sorted(parts_by_node.items())),
            "splits": len(splits.tasks), "split_inputs": len({t.index for t in splits.tasks if t.count > 1}),
            "read_whole_after_a_break": splits.read_whole, "splits_by_worker": dict(sorted(by_worker.items())),
            "driver_received_bytes": splits.totals.received_bytes, "driver_peak_rss_mib": driver_peak}


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
        return _execute_to_uri(pipeline, str(output or pipeline.output), staging, inputs=inputs, ray_address=ray_address,
                               max_workers=max_workers, log=log, resume=resume)
    folder = RunFolder(output or pipeline.output or Path("runs") / pipeline.name)
    sources = _sources(pipeline, inputs)
    init_ray(pipeline.ray, ray_address)
    input_paths, source_of, crawls = _input_files(sources, folder, log)
    stages = _batch_stages(pipeline)
    if resume and folder.is_complete():
        log(f"gristmill: {folder.root} is a complete run; nothing to resume")
        return load_result(folder.root)
    remote_env = worker_env(input_paths)
    tasks = plan_tasks(input_paths, source_of, sources, pipeline.split_bytes, folder.work if resume else None, remote_env)
    done = _start(folder, _identity(pipeline, input_paths), tasks, resume)
    folder.job.write_text(pipeline.describe())
    workers = min(worker_count(), max_workers or 1 << 30)
    log(f"gristmill: {len(input_paths)} input file(s), {workers} worker CPU(s), output {folder.root}"
        + (f"; resuming: {len(done)} split(s) already done" if resume else ""))
    splits = _process_splits(tasks, done, sources, stages, pipeline, folder, workers, remote_env, log)
    pipeline_seconds = time.perf_counter() - started
    records = [splits.totals.slim[(t.index, t.split)] for t in splits.tasks]
    sums = splits.totals.sums
    ledger, sources_counts, stage_stats = sums.ledger, sums.source_counts(), list(sums.stages.values())
    records_read = stage_stats[0].counts["records_read"]
    ledger.check(records_read=records_read)
    driver_peak = {"splits": peak_rss_mib()}  # the driver's peak RSS after each step (VmHWM only grows)
    context = StepContext(folder, pipeline, stages, records, stage_stats, workers, log)
    step_stats, step_run, step_seconds = run_steps(context, ledger, sources_counts, records_read,
                                                   on_step=lambda name: driver_peak.__setitem__(name, peak_rss_mib()))
    fault_point("finish")
    stats = RunStats(ledger=ledger, stages=stage_stats, scores=sums.scores, sources=sources_counts, crawl=crawls or None,
                     funnel=funnel(ledger, [s.stage for s in stage_stats]), pii=pii_stats(pipeline.stages, stage_stats),
                     seconds={"pipeline": round(pipeline_seconds, 3), **step_seconds,
                              "total": round(time.perf_counter() - started, 3)}, **step_stats)
    document = json.loads(stats.to_json())
    document["run"] = _run_report(splits, records, len(input_paths), resume, driver_peak) | step_run
    folder.finish(document)
    return RunResult(folder.root, ledger, stats)


def _execute_to_uri(pipeline: Pipeline, uri: str, staging, resume: bool, log, **kwargs) -> RunResult:
    """`execute` into the staging folder of `uri`, then publish the run there (storage.py's docstring)."""
    from gristmill.pipeline.engine import storage

    uri = uri.rstrip("/")
    storage.check_output(uri)  # before any work: a missing bucket fails now, not after hours
    folder = storage.staging_folder(uri, staging)
    if (complete := storage.check_resumable(uri, folder, resume, load_result, log)) is not None:
        return complete
    log(f"gristmill: output {uri}, staged in {folder}")
    result = execute(pipeline, output=folder, resume=resume, log=log, **kwargs)
    storage.upload_run(folder, uri, log=log)
    storage.remove_staging(folder)
    return dataclasses.replace(result, uri=uri)


def load_result(output: Path) -> RunResult:
    """The RunResult of a complete run folder, read back from its stats.json."""
    d = RunFolder(output).read_stats()
    ledger = Ledger.from_dict(d["ledger"])
    stats = RunStats(ledger=ledger, stages=[StageStats.from_dict(s) for s in d["stages"]], scores={},
                     sources=d["sources"], tokens=d.get("tokens"), dedup=d.get("dedup"), seconds=d.get("seconds", {}),
                     funnel=d.get("funnel", []), crawl=d.get("crawl"), breakdown=d.get("breakdown"),
                     representation=d.get("representation"), classifier_cut=d.get("classifier_cut"), pii=d.get("pii"))
    return RunResult(output, ledger, stats)
