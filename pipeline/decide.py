"""Decide: score columns + thresholds from the job → `keep` and `drop_reason`.

The only place that turns scores into decisions, so thresholds can change without re-running any
model. Rules run in a fixed order and the first failing one names the drop; a row the source or
extraction already marked (`skip_reason`) keeps that reason; a quarantined row is neither kept nor
dropped (it goes to quarantine/).
"""

from __future__ import annotations

import operator
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from gristmill.pipeline.stages.base import Stage, set_column
from gristmill.schemas import columns as C
from gristmill.schemas import reasons as R
from gristmill.schemas.job import Job, LanguageConfig, QualityConfig

_OPS = {"<": pc.less, ">": pc.greater, "not_in": None}


@dataclass(frozen=True)
class Rule:
    """Drop with `reason` when `column <op> threshold` holds."""

    reason: str
    column: str
    op: str  # "<", ">" or "not_in"
    threshold: Any

    def fails(self, table: pa.Table) -> pa.ChunkedArray:
        values = table[self.column]
        if self.op == "not_in":
            hit = pc.invert(pc.is_in(values, value_set=pa.array(self.threshold, C.TYPES[self.column])))
        else:
            hit = _OPS[self.op](values, self.threshold)
        return pc.fill_null(hit, False)


def language_rules(lang: LanguageConfig) -> list[Rule]:
    return _rules([
        (R.LANGUAGE_NOT_KEPT, C.LANGUAGE, "not_in", list(lang.keep) or None),
        (R.LANGUAGE_SCORE_TOO_LOW, C.LANGUAGE_SCORE, "<", lang.min_score),
    ])


def quality_rules(q: QualityConfig) -> list[Rule]:
    """Heuristic quality thresholds, in the order datatrove checks them (so the first failing reason matches)."""
    return _rules([
        (R.TOO_FEW_WORDS, C.WORD_COUNT, "<", q.min_words),
        (R.TOO_MANY_WORDS, C.WORD_COUNT, ">", q.max_words),
        (R.WORDS_TOO_SHORT, C.MEAN_WORD_LENGTH, "<", q.min_mean_word_length),
        (R.WORDS_TOO_LONG, C.MEAN_WORD_LENGTH, ">", q.max_mean_word_length),
        (R.TOO_MANY_HASHES, C.HASH_WORD_RATIO, ">", q.max_symbol_word_ratio),
        (R.TOO_MANY_ELLIPSES, C.ELLIPSIS_WORD_RATIO, ">", q.max_symbol_word_ratio),
        (R.TOO_MANY_BULLET_LINES, C.BULLET_LINES_RATIO, ">", q.max_bullet_lines_ratio),
        (R.TOO_MANY_ELLIPSIS_LINES, C.ELLIPSIS_LINES_RATIO, ">", q.max_ellipsis_lines_ratio),
        (R.TOO_FEW_ALPHA_WORDS, C.ALPHA_WORDS_RATIO, "<", q.min_alpha_words_ratio),
        (R.TOO_FEW_STOP_WORDS, C.STOP_WORD_COUNT, "<", q.min_stop_words),
    ])


def _rules(candidates) -> list[Rule]:
    """A None threshold is no rule."""
    return [Rule(reason, column, op, threshold) for reason, column, op, threshold in candidates if threshold is not None]


def rules_for(job: Job) -> list[Rule]:
    """The job's thresholds as rules, in the order they are checked."""
    return language_rules(job.language) + quality_rules(job.quality)


def decide(table: pa.Table, rules: list[Rule]) -> pa.Table:
    reason = pa.nulls(table.num_rows, pa.string())
    for rule in reversed(rules):  # reversed so the first failing rule is the one that stays
        reason = pc.if_else(rule.fails(table), pa.scalar(rule.reason), reason)
    reason = pc.coalesce(table[C.SKIP_REASON], reason)
    quarantined = pc.is_valid(table[C.QUARANTINE_REASON])
    reason = pc.if_else(quarantined, pa.scalar(None, pa.string()), reason)
    keep = pc.and_(pc.invert(quarantined), pc.is_null(reason))
    table = set_column(table, C.DROP_REASON, reason)
    return set_column(table, C.KEEP, keep)


class Decide(Stage):
    """Applies `rules` (collected from the stages, in stage order) to every batch. With `annotate`, no
    rule drops anything: only rows that are not documents (a skip reason) are dropped."""

    name = "decide"
    writes = (C.KEEP, C.DROP_REASON)

    def __init__(self, rules: list[Rule], annotate: bool = False):
        super().__init__(list(rules))
        self.annotate = annotate
        self.reads = (C.SKIP_REASON, C.QUARANTINE_REASON, *dict.fromkeys(rule.column for rule in self.config))

    def process(self, table: pa.Table, counts: Counter) -> pa.Table:
        table = decide(table, [] if self.annotate else self.config)
        counts.update(r for r in table[C.DROP_REASON].to_pylist() if r)
        counts["kept"] += int(pc.sum(table[C.KEEP]).as_py() or 0)
        return table
