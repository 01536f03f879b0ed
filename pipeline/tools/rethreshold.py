"""What-if thresholds: new decisions from a run's stored score columns, without running any model.

    gristmill rethreshold RUN --set quality.min_words=200 [--set ...] [--write DIR]

Every document a run wrote (curated/ and rejected/, dedup duplicates included) carries every score
column, its `skip_reason`, its exact hash and MinHash signature. So a changed threshold is recomputed by

  1. restore   reading those rows back in input order (source file, record offset: the order the
               runner writes them in), with the dedup cluster columns cleared
  2. decide    applying the new job's rules (`Stage.rules()` of the stages the new job builds, the same
               code the run used) to every document at once
  3. write     routing the rows through the run's own `RunWriter` (same part files, same summaries)
  4. global    replaying the global steps after the writers (a classifier's top-fraction cut), then
  5. dedup     re-clustering the new survivors with the run's dedup step on the stored signatures: a
               document dropped as a duplicate whose kept copy is now dropped by a rule (or one that
               newly survives) is handled exactly as a rerun handles it

which is what a full rerun with the new threshold produces (tests/integration/test_rethreshold.py checks the kept
ids against a rerun). Nothing is tokenized.

A key is accepted only when it changes decide rules, and nothing else, on scores the run stored:
  * a stage key must change that stage's `rules()`; a key that does not (it shapes the scores, e.g.
    `quality.c4_min_words_per_line`) is refused, as is one a stage lists in `score_fields` (config that
    shapes scores or rewrites text even though a rule reads it too), and a rule on a column the run did
    not store (e.g. `quality.c4_bad_words_file` on a run without a bad-words list);
  * a key that changes the classifier's global top-fraction cut (`classifier.top_fraction`, when the
    pipeline has `classifier_top_fraction()`) is accepted: the cut is replayed on the stored scores, in
    the runner's order (cut, then dedup);
  * `decide.mode` (filter/annotate) is accepted;
  * `dedup.*` keys that only re-cluster stored signatures (exact, near, threshold, bands, rows,
    verify_jaccard, keep, max_edges_per_bucket) are accepted, and `dedup` set to null; keys that change
    the signatures (n, num_perm, seed) are refused;
  * `sources`, `extract`, `tokenize`, `ray` and the top-level settings are refused with the reason.
Memory: the documents are held at once (text included) to write the new set; fine for runs that fit
one machine, which is where a what-if is usually tried first.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import yaml
from pydantic import ValidationError

from gristmill.pipeline.stages.decide import Rule, decide, rules_of
from gristmill.pipeline.engine.run_folder import RunFolder
from gristmill.pipeline.stages.base import set_column
from gristmill.schemas import columns as C
from gristmill.schemas.job import Job
from gristmill.schemas.stats import Ledger, RunStats, Summary, funnel

DEDUP_RECLUSTER_KEYS = {"exact", "near", "threshold", "bands", "rows", "verify_jaccard", "keep", "max_edges_per_bucket", "gpu"}
_REFUSED_SECTIONS = {
    "sources": "it changes which records are read: rerun the job",
    "extract": "extraction options change the text every score was computed from: rerun the job",
    "tokenize": "tokenizer settings do not change which documents are kept (rethreshold does not tokenize)",
    "ray": "Ray settings do not change which documents are kept",
    "batch_size": "the batch size does not change which documents are kept",
    "name": "the name does not change which documents are kept",
    "output": "use --write DIR to choose where the new set goes",
}


class RethresholdError(ValueError):
    """A setting that cannot be recomputed from the stored data, or a run that cannot be read."""


@dataclass
class RethresholdResult:
    before: dict  # the run's stats.json
    ledger: Ledger
    funnel: list[dict]
    dedup: dict | None
    changes: dict[str, object]  # key → new value
    kept_ids: list[str] = field(default_factory=list)
    newly_kept: int = 0
    newly_dropped: int = 0
    written: Path | None = None


def load_run_job(run_dir: Path) -> Job:
    path = RunFolder.of(run_dir).job
    if not path.exists():
        raise RethresholdError(f"{path} not found: is {run_dir} a finished gristmill run?")
    try:
        return Job.model_validate(yaml.safe_load(path.read_text()))
    except Exception as err:  # noqa: BLE001 - a Python-API run describes stages, not a job
        raise RethresholdError(f"{path} is not a job (a run built with the Python API cannot be rethresholded "
                               f"from it): {str(err).splitlines()[0]}") from None


def parse_settings(settings: list[str]) -> dict[str, object]:
    """["quality.min_words=200", "language.keep=[en, fr]"] → {key: YAML-parsed value}."""
    out = {}
    for item in settings:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise RethresholdError(f"--set {item!r}: expected KEY=VALUE, e.g. quality.min_words=200")
        out[key.strip()] = yaml.safe_load(value) if value.strip() else None
    return out


def with_settings(job: Job, changes: dict[str, object]) -> Job:
    data = job.model_dump(mode="json")
    for key, value in changes.items():
        node, parts = data, key.split(".")
        for part in parts[:-1]:
            if not isinstance(node.get(part), dict):
                raise RethresholdError(f"--set {key}: {part!r} is not a section of the job")
            node = node[part]
        if parts[-1] not in node and not (len(parts) == 1 or parts[0] == "dedup"):
            raise RethresholdError(f"--set {key}: unknown key")
        node[parts[-1]] = value
    try:
        return Job.model_validate(data)
    except ValidationError as err:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors())
        raise RethresholdError(f"--set {', '.join(changes)}: {problems}") from None


def decide_rules(job: Job) -> list[Rule]:
    """The rules a run of `job` applies at its decide step, in order (`decide.rules_of` over its stages,
    which are built, not prepared or set up: no model, list or index is loaded); none in annotate mode."""
    from gristmill.pipeline.engine.api import Pipeline

    pipeline = Pipeline.from_job(job)
    return [] if pipeline.decide_mode == "annotate" else rules_of(pipeline)


def top_fraction(job: Job) -> float | None:
    """The share of the run a classifier's global top-fraction cut keeps (None: no cut), if the pipeline has one."""
    from gristmill.pipeline.engine.api import Pipeline

    pipeline = Pipeline.from_job(job)
    fraction = getattr(pipeline, "classifier_top_fraction", None)
    return fraction() if fraction is not None and pipeline.decide_mode == "filter" else None


def check_recomputable(job: Job, key: str, value, stored: dict[str, bool]) -> None:
    """Raise RethresholdError unless changing `key` alone changes only decisions the stored data can remake.
    `stored`: column → whether any document has a value in it."""
    top, _, rest = key.partition(".")
    if top in _REFUSED_SECTIONS:
        raise RethresholdError(f"cannot recompute {key} from stored scores: {_REFUSED_SECTIONS[top]}")
    if top == "decide":
        return
    if top == "dedup":
        if job.dedup is None or C.MINHASH not in stored:
            raise RethresholdError(f"cannot recompute {key}: this run did not dedup, so it stored no signatures; rerun the job")
        if not rest and value is None:
            return
        if rest not in DEDUP_RECLUSTER_KEYS:
            raise RethresholdError(f"cannot recompute {key} from stored signatures: it changes the MinHash signatures "
                                   f"themselves (only {', '.join(sorted(DEDUP_RECLUSTER_KEYS))} re-cluster them); rerun the job")
        return
    from gristmill.pipeline.engine.api import Pipeline

    changed = with_settings(job, {key: value})
    for stage in Pipeline.from_job(changed).stages:
        if rest.split(".")[0] in getattr(stage, "score_fields", ()) and stage.config is getattr(changed, top, None):
            raise RethresholdError(f"cannot recompute {key} from stored scores: stage {stage.name!r} computes its "
                                   "scores (or rewrites text) with it; rerun the job")
    before, after = decide_rules(job), decide_rules(changed)
    if before == after and top_fraction(job) != top_fraction(changed):
        return  # the classifier's top-fraction cut: a global step over the stored classifier scores
    if before == after:
        raise RethresholdError(f"cannot recompute {key} from stored scores: it sets no decide threshold (it shapes "
                               "how scores are computed, or changes nothing); rerun the job")
    for rule in after:
        if rule not in before and not stored.get(rule.column):
            raise RethresholdError(f"cannot recompute {key}: its rule {rule.reason!r} reads {rule.column!r}, which "
                                   "this run did not compute; rerun the job")


def _read_documents(run_dir: Path) -> pa.Table:
    files = RunFolder.of(run_dir).documents()
    tables = [pq.read_table(f) for f in files]
    tables = [t for t in tables if t.num_rows]
    if not tables:
        return pa.table({})
    table = pa.concat_tables(tables, promote_options="default")
    table = table.sort_by([(C.SOURCE_FILE, "ascending"), (C.RECORD_OFFSET, "ascending")])
    keys = pc.binary_join_element_wise(table[C.SOURCE_FILE], pc.cast(table[C.RECORD_OFFSET], pa.string()), "\0")
    if pc.count_distinct(keys).as_py() != table.num_rows:
        raise RethresholdError("two documents share a source file and offset: their input order cannot be restored")
    return table


def _stored_columns(table: pa.Table) -> dict[str, bool]:
    if not table.num_rows:
        return {}
    docs = table.filter(pc.is_null(table[C.SKIP_REASON]))
    return {name: docs.num_rows > 0 and docs[name].null_count < docs.num_rows for name in table.column_names}


def rethreshold(run_dir: str | Path, settings: list[str], write: str | Path | None = None, log=print,
                max_workers: int | None = None) -> RethresholdResult:
    """Recompute the run's decisions with `settings` (KEY=VALUE); with `write`, leave the new run folder there."""
    run_dir = Path(run_dir)
    if not RunFolder(run_dir).stats.exists():
        raise RethresholdError(f"{RunFolder(run_dir).stats} not found: is {run_dir} a finished gristmill run?")
    before = RunFolder(run_dir).read_stats()
    job = load_run_job(run_dir)
    changes = parse_settings(settings)
    if not changes:
        raise RethresholdError("nothing to change: give at least one --set KEY=VALUE")
    for key in changes:  # the refusals that need no data first, before the values are validated
        if key.partition(".")[0] in _REFUSED_SECTIONS:
            raise RethresholdError(f"cannot recompute {key} from stored scores: {_REFUSED_SECTIONS[key.partition('.')[0]]}")
    new_job = with_settings(job, changes)
    table = _read_documents(run_dir)
    stored = _stored_columns(table)
    for key, value in changes.items():
        check_recomputable(job, key, value, stored)

    old_reasons = table[C.DROP_REASON].to_pylist() if table.num_rows else []
    if table.num_rows:
        for name in (C.DUP_CLUSTER_ID, C.DUP_CLUSTER_SIZE):
            if name in table.column_names:  # as the signature stage leaves them, before dedup
                table = set_column(table, name, pa.nulls(table.num_rows, C.TYPES[name]))
        table = set_column(table, C.QUARANTINE_REASON, pa.nulls(table.num_rows, pa.string()))
        table = decide(table, decide_rules(new_job))

    out = Path(write) if write else Path(tempfile.mkdtemp(prefix="gristmill-rethreshold-"))
    try:
        result = _write_and_dedup(run_dir, out, table, before, new_job, log, max_workers)
        result.before, result.changes = before, changes
        kept = set(result.kept_ids)
        for doc_id, old in zip(table[C.ID].to_pylist() if table.num_rows else [], old_reasons):
            new = None if doc_id in kept else "dropped"
            result.newly_kept += old is not None and new is None
            result.newly_dropped += old is None and new is not None
        if write:
            result.written = out
    finally:
        if not write:
            shutil.rmtree(out, ignore_errors=True)
    return result


def _write_and_dedup(run_dir: Path, out: Path, table: pa.Table, before: dict, job: Job, log, max_workers) -> RethresholdResult:
    from collections import defaultdict

    from gristmill.pipeline.engine.api import Pipeline
    from gristmill.pipeline.steps.protocol import GLOBAL_STEPS, StepContext, run_steps
    from gristmill.pipeline.engine.writers import merge_records, write_rows

    if out.resolve() == run_dir.resolve():
        raise RethresholdError("--write must name a new folder, not the run itself")
    source, folder = RunFolder.of(run_dir), RunFolder.of(out)
    folder.clear()
    # The workers' writer, input by input, then the runner's global steps (publish, the classifier's
    # top-fraction cut, dedup, the breakdown): the part names and bytes a full rerun writes.
    inputs = sorted({*before.get("sources", {}), *(table[C.SOURCE_FILE].to_pylist() if table.num_rows else [])})
    records = write_rows(folder.work, inputs, table)
    ledger, scores, _ = merge_records(records)
    old = Ledger.from_dict(before["ledger"])
    ledger.input += old.quarantined
    ledger.quarantined = old.quarantined
    pipeline = Pipeline.from_job(job)
    workers = 1
    if pipeline.dedup is not None and C.MINHASH in table.column_names:
        from gristmill.pipeline.engine.cluster import check_shared_paths
        from gristmill.pipeline.engine.cluster import init_ray, worker_count

        init_ray(job.ray)
        check_shared_paths([out], lambda: [], log=log)  # the dedup tasks rewrite out/curated on any node
        workers = min(worker_count(), max_workers or 1 << 30)
    steps = [step for step in GLOBAL_STEPS if step.name in ("publish", "classifier_cut", "dedup", "breakdown")]
    context = StepContext(folder, pipeline, pipeline.stages, records, [], workers, log)
    step_stats, _, _ = run_steps(context, ledger, defaultdict(lambda: {"kept": 0}), old.input, steps=steps)
    folder.quarantine.mkdir(exist_ok=True)
    for part in sorted(source.quarantine.glob("*.parquet")):
        shutil.copy2(part, folder.quarantine / part.name)
    stage_order = [s["stage"] for s in before.get("stages", [])]
    new_funnel = funnel(ledger, stage_order)
    kept_ids = [i for f in folder.parts() for i in pq.read_table(f, columns=[C.ID])[C.ID].to_pylist()]

    sources = {name: dict(counts) for name, counts in before.get("sources", {}).items()}
    kept_by_source = Counter()
    for f in folder.parts():
        kept_by_source.update(pq.read_table(f, columns=[C.SOURCE_FILE])[C.SOURCE_FILE].to_pylist())
    for name, counts in sources.items():
        counts["kept"] = kept_by_source.get(name, 0)
    stats = RunStats(ledger=ledger, stages=[], scores=dict(scores) or {k: Summary() for k in before.get("scores", {})},
                     sources=sources, tokens=None, funnel=new_funnel, **step_stats)
    data = json.loads(stats.to_json())
    data["stages"] = before.get("stages", [])  # the timings are the original run's: no stage ran again
    data["rethreshold"] = {"from": str(run_dir)}
    folder.job.write_text(job.to_yaml())
    folder.finish(data)
    return RethresholdResult(before=before, ledger=ledger, funnel=new_funnel, dedup=stats.dedup, changes={},
                             kept_ids=kept_ids)
