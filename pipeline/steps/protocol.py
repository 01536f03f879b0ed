"""The global steps after the writers, behind one protocol, run in order by `run_steps`:

    publish ─► classifier_cut ─► dedup ─► breakdown ─► representation ─► tokenize

A step reads the run's part files (through the run folder, run_folder.py) and returns a `StepResult`:
the documents it moved from curated/ to rejected/, by drop reason and by source, and what it reports in
stats.json. `apply_removals` is the one way the ledger changes after the writers (run_steps and
takedown call it), and `run_steps` the one place step records are kept: each step's result is written to
.work/steps/NAME.json when it is done, so a resumed run skips it. The steps that rewrite curated/ in
place (publish, classifier_cut, dedup) are redone together from publish when any of them has no record:
publish re-links the workers' parts, so the others start again from the written documents. The steps
that move documents to rejected/ do it with move_to_rejected.py, as takedown does.
"""

from __future__ import annotations

import os
import shutil
from collections import Counter
from dataclasses import dataclass, field
from typing import Protocol

from gristmill.pipeline.engine.faults import fault_point
from gristmill.pipeline.engine.run_folder import OUTPUTS, RunFolder
from gristmill.schemas import columns as C


@dataclass
class StepResult:
    removed_by_reason: dict[str, int] = field(default_factory=dict)  # curated/ → rejected/, by drop reason
    removed_by_source: dict[str, int] = field(default_factory=dict)  # the same documents, by source index
    stats: dict = field(default_factory=dict)  # stats.json keys this step sets (e.g. {"dedup": {...}})
    run: dict = field(default_factory=dict)  # stats.json["run"] keys (this invocation's work, e.g. task counts)

    @property
    def removed(self) -> int:
        return sum(self.removed_by_reason.values())


@dataclass
class StepContext:
    folder: RunFolder
    pipeline: object  # api.Pipeline
    stages: list  # the per-batch stages, decide last
    records: list  # the splits' slim completion records (writers.SplitRecord), in task order
    stage_stats: list  # schemas.stats.StageStats of the per-batch stages, whole run
    workers: int
    log: object = print


class GlobalStep(Protocol):
    name: str  # its record .work/steps/NAME.json, and its fault point NAME (after it is recorded)
    rewrites_curated: bool

    def applies(self, context: StepContext) -> bool: ...

    def run(self, context: StepContext) -> StepResult: ...


class Publish:
    """curated/, rejected/, quarantine/ := the part files the completion records list, as hard links (a
    copy where links fail). The later steps rewrite a curated part by writing a new file and renaming it
    over the link, so the workers' originals under .work stay intact and a resume can publish again."""

    name, rewrites_curated = "publish", True

    def applies(self, context: StepContext) -> bool:
        return True

    def run(self, context: StepContext) -> StepResult:
        folder = context.folder
        for name in OUTPUTS:
            if folder.output(name).exists():
                shutil.rmtree(folder.output(name))
            folder.output(name).mkdir(parents=True)
        for file in sorted(part["file"] for record in context.records for part in record.parts):
            try:
                os.link(folder.work_parts / file, folder.root / file)
            except OSError:
                shutil.copyfile(folder.work_parts / file, folder.root / file)
        return StepResult()


class ClassifierCut:
    """A quality classifier's global top-fraction cut (quality_cut.py)."""

    name, rewrites_curated = "classifier_cut", True

    def applies(self, context: StepContext) -> bool:
        return context.pipeline.classifier_top_fraction() is not None and context.pipeline.decide_mode == "filter"

    def run(self, context: StepContext) -> StepResult:
        from gristmill.pipeline.steps.quality_cut import cut_run

        cut = cut_run(context.folder, context.pipeline.classifier_top_fraction(), log=context.log, workers=context.workers)
        return StepResult(dict(cut.dropped), dict(cut.removed_by_source), {"classifier_cut": cut.to_dict()})


class Dedup:
    """Exact and MinHash near dedup over curated/ (dedup/run.py)."""

    name, rewrites_curated = "dedup", True

    def applies(self, context: StepContext) -> bool:
        return context.pipeline.dedup is not None and any(C.MINHASH in stage.writes for stage in context.stages)

    def run(self, context: StepContext) -> StepResult:
        from gristmill.pipeline.steps.dedup import deduplicate_run

        dedup = deduplicate_run(context.folder, context.pipeline.dedup, log=context.log, workers=context.workers)
        return StepResult(dict(dedup.dropped), dict(dedup.removed_by_source), {"dedup": dedup.to_dict()})


class Breakdown:
    """Kept and dropped by language and registered domain (breakdown.py)."""

    name, rewrites_curated = "breakdown", False

    def applies(self, context: StepContext) -> bool:
        return True

    def run(self, context: StepContext) -> StepResult:
        from gristmill.pipeline.steps.breakdown import breakdown_of

        return StepResult(stats={"breakdown": breakdown_of(context.folder, workers=context.workers)})


class Representation:
    """Representation tags before filtering (the tagger's counters) and after (curated/, deduped)."""

    name, rewrites_curated = "representation", False

    def _tagger(self, context: StepContext):
        return next((stage for stage in context.stages if C.IDENTITY_DESCRIPTORS in stage.writes), None)

    def applies(self, context: StepContext) -> bool:
        return self._tagger(context) is not None

    def run(self, context: StepContext) -> StepResult:
        from gristmill.pipeline.steps.representation import before_after, counts_of_curated

        before = next(s.counts for s in context.stage_stats if s.stage == self._tagger(context).name)
        return StepResult(stats={"representation": before_after(before, counts_of_curated(context.folder.curated))})


class Tokenize:
    """Shards of curated/ (tokenize.py)."""

    name, rewrites_curated = "tokenize", False

    def applies(self, context: StepContext) -> bool:
        return True

    def run(self, context: StepContext) -> StepResult:
        from gristmill.pipeline.steps.tokenize import tokenize_run

        folder, exchange = context.folder, {}
        manifest = tokenize_run(folder.curated, folder.shards, context.pipeline.tokenize,
                                work=folder.step_work("tokenize"), workers=context.workers, report=exchange)
        splits = manifest.split_totals()
        tokens = {"vocab_size": manifest.vocab_size,
                  "train_tokens": splits["train"]["tokens"], "val_tokens": splits["val"]["tokens"],
                  "train_docs": splits["train"]["docs"], "val_docs": splits["val"]["docs"], "shards": len(manifest.shards)}
        # the step's tasks: sample, encode tasks, spill, shard units, task peak RSS, seconds
        return StepResult(stats={"tokens": tokens}, run={"tokenize": exchange})


GLOBAL_STEPS: tuple[GlobalStep, ...] = (Publish(), ClassifierCut(), Dedup(), Breakdown(), Representation(), Tokenize())


def apply_removals(result: StepResult, ledger, sources: dict, records_read: int | None = None) -> None:
    """The documents `result` moved from curated/ to rejected/ leave `kept` and join `dropped` under their
    reasons, in the ledger and in the per-source counts (stats.json["sources"]); then the ledger must still
    sum. The one way the ledger changes after the writers: run_steps and takedown call it."""
    for source, removed in result.removed_by_source.items():
        sources[source]["kept"] -= removed
    ledger.kept -= result.removed
    ledger.dropped += Counter(result.removed_by_reason)
    ledger.check(records_read=records_read)


def run_steps(context: StepContext, ledger, sources: dict, records_read: int, steps=GLOBAL_STEPS,
              on_step=None) -> tuple[dict, dict, dict]:
    """Run (or, resuming, take the recorded result of) each applicable step in order; apply what each
    removed to the ledger and the per-source counts (the one place they change after the writers).
    Returns (stats.json keys set by the steps, stats.json["run"] keys, seconds per step run here).
    `on_step(name)` after each."""
    import time

    folder = context.folder
    chain = [step.name for step in steps if step.rewrites_curated and step.applies(context)]
    if any(folder.read_step(name) is None for name in chain):
        folder.forget_steps(chain)  # an in-place rewrite was interrupted: publish and redo them all
    stats, run, seconds = {}, {}, {}
    for step in steps:
        if not step.applies(context):
            continue
        saved = folder.read_step(step.name)
        if saved is not None:
            result = StepResult(**saved)
            if step.rewrites_curated and step.name != "publish":
                context.log(f"gristmill: {step.name} was done before the interruption; kept")
        else:
            started = time.perf_counter()
            result = step.run(context)
            folder.write_step(step.name, result.__dict__)
            seconds[step.name] = round(time.perf_counter() - started, 3)
        apply_removals(result, ledger, sources, records_read=records_read)
        stats.update(result.stats)
        run.update(result.run)
        if on_step is not None:
            on_step(step.name)
        fault_point(f"step:{step.name}")  # test-only fault injection (pipeline/engine/faults.py)
    return stats, run, seconds
