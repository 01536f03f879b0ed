"""Decide: score columns + thresholds from the job → `keep` and `drop_reason`.

The only place that turns scores into decisions, so thresholds can change without re-running any
model. Rules run in a fixed order and the first failing one names the drop; a row the source or
extraction already marked (`skip_reason`) keeps that reason; a quarantined row is neither kept nor
dropped (it goes to quarantine/).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from gristmill.pipeline.stages.base import Stage, set_column
from gristmill.schemas import columns as C
from gristmill.schemas import reasons as R
from gristmill.schemas.job import LanguageConfig, QualityConfig, ToxicityConfig

_OPS = {"<": pc.less, ">": pc.greater, "==": pc.equal, "not_in": None}


@dataclass(frozen=True)
class PerKey:
    """A threshold that depends on another column's value (e.g. the language): `values` maps a key to
    its threshold; other keys get `default` (None: no rule for them)."""

    key_column: str
    values: tuple  # ((key, threshold), ...), sorted
    default: Any = None

    def array(self, table: pa.Table) -> pa.Array:
        lookup = dict(self.values)
        return pa.array([lookup.get(k, self.default) for k in table[self.key_column].to_pylist()], pa.float64())


@dataclass(frozen=True)
class Rule:
    """Drop with `reason` when `column <op> threshold` holds."""

    reason: str
    column: str
    op: str  # "<", ">", "==" or "not_in"
    threshold: Any

    def fails(self, table: pa.Table) -> pa.ChunkedArray:
        values = table[self.column]
        if self.op == "not_in":
            hit = pc.invert(pc.is_in(values, value_set=pa.array(self.threshold, C.TYPES[self.column])))
        else:
            threshold = self.threshold.array(table) if isinstance(self.threshold, PerKey) else self.threshold
            hit = _OPS[self.op](values, threshold)
        return pc.fill_null(hit, False)


def language_rules(lang: LanguageConfig) -> list[Rule]:
    return _rules([
        (R.LANGUAGE_NOT_KEPT, C.LANGUAGE, "not_in", list(lang.keep) or None),
        (R.LANGUAGE_SCORE_TOO_LOW, C.LANGUAGE_SCORE, "<",
         PerKey(C.LANGUAGE, tuple(sorted(lang.min_score_per_language.items())), lang.min_score)
         if lang.min_score_per_language else lang.min_score),
    ])


def quality_rules(q: QualityConfig) -> list[Rule]:
    """Heuristic quality thresholds in datatrove's FineWeb order (GopherRepetitionFilter,
    GopherQualityFilter, C4QualityFilter, FineWebQualityFilter, each in its own order), so the first
    failing rule names the same failure datatrove reports first. A None threshold is no rule."""
    return _rules([
        # Gopher repetition
        (R.TOO_MANY_DUPLICATE_PARAGRAPHS, C.DUPLICATE_PARAGRAPHS_RATIO, ">", q.max_duplicate_paragraphs_ratio),
        (R.TOO_MANY_DUPLICATE_PARAGRAPH_CHARS, C.DUPLICATE_PARAGRAPH_CHARS_RATIO, ">", q.max_duplicate_paragraph_chars_ratio),
        (R.TOO_MANY_DUPLICATE_LINES, C.DUPLICATE_LINES_RATIO, ">", q.max_duplicate_lines_ratio),
        (R.TOO_MANY_DUPLICATE_LINE_CHARS, C.DUPLICATE_LINE_CHARS_RATIO, ">", q.max_duplicate_line_chars_ratio),
        *[(R.TOP_NGRAM_TOO_FREQUENT[n], C.TOP_NGRAM_CHARS_RATIO[n], ">", getattr(q, f"max_top_{n}gram_chars_ratio"))
          for n in C.TOP_NGRAM_CHARS_RATIO],
        *[(R.TOO_MANY_DUPLICATE_NGRAMS[n], C.DUPLICATE_NGRAM_CHARS_RATIO[n], ">", getattr(q, f"max_duplicate_{n}gram_chars_ratio"))
          for n in C.DUPLICATE_NGRAM_CHARS_RATIO],
        # Gopher quality
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
        # C4 (datatrove stops at the first lorem-ipsum or curly-bracket line; we name lorem ipsum first)
        (R.CONTAINS_LOREM_IPSUM, C.C4_LOREM_IPSUM_LINE_COUNT, ">", 0 if q.c4_drop_lorem_ipsum else None),
        (R.CONTAINS_CURLY_BRACKET, C.C4_CURLY_BRACKET_LINE_COUNT, ">", 0 if q.c4_drop_curly_bracket else None),
        (R.TOO_FEW_SENTENCES, C.C4_SENTENCE_COUNT, "<", q.c4_min_sentences),
        (R.CONTAINS_BAD_WORDS, C.C4_BAD_WORD_COUNT, ">", q.c4_max_bad_words if q.c4_bad_words_file else None),
        # FineWeb, on the lines C4 keeps
        (R.TOO_FEW_PUNCTUATED_LINES, C.FINEWEB_LINE_PUNCT_RATIO, "<", q.fineweb_min_line_punct_ratio),
        (R.TOO_MANY_SHORT_LINES, C.FINEWEB_SHORT_LINE_RATIO, ">", q.fineweb_max_short_line_ratio),
        (R.TOO_MUCH_DUPLICATE_LINE_TEXT, C.FINEWEB_CHAR_DUP_RATIO, ">", q.fineweb_max_char_dup_ratio),
        (R.TOO_MANY_LINE_BREAKS, C.FINEWEB_NEWLINE_WORD_RATIO, ">", q.fineweb_max_newline_word_ratio),
    ])


def toxicity_rules(t: ToxicityConfig) -> list[Rule]:
    """Identity attack first (the more specific failure), then the document score, then the word list."""
    return _rules([
        (R.IDENTITY_ATTACK, C.IDENTITY_ATTACK_SCORE, ">", t.max_identity_attack),
        (R.TOXIC, C.TOXICITY_SCORE, ">", t.max_score),
        (R.TOXIC_WORDS, C.TOXIC_WORD_COUNT, ">", t.max_toxic_words if t.word_list_file else None),
    ])


def classifier_rules(config) -> list[Rule]:
    """The classifier's score threshold (its top-fraction cut is a global step after the writers)."""
    return _rules([(R.QUALITY_SCORE_TOO_LOW, C.QUALITY_MODEL_SCORE, "<", config.min_score)])


def _rules(candidates) -> list[Rule]:
    """A None threshold is no rule."""
    return [Rule(reason, column, op, threshold) for reason, column, op, threshold in candidates if threshold is not None]


def rules_of(pipeline) -> list[Rule]:
    """The rules a pipeline's stages declare, in stage order (the order the decide step checks them): from
    each stage's config (`Stage.rules`), so a Python pipeline (`ScoreFunction` and other custom stages)
    gets its own. `pipeline`: a `Pipeline` or a list of stages. Builds nothing and loads nothing."""
    stages = pipeline.stages if hasattr(pipeline, "stages") else pipeline
    return [rule for stage in stages for rule in stage.rules()]


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
        self.reads = (C.SKIP_REASON, C.QUARANTINE_REASON, *dict.fromkeys(rule.column for rule in self.config),
                      *dict.fromkeys(r.threshold.key_column for r in self.config if isinstance(r.threshold, PerKey)))

    def process(self, table: pa.Table, counts: Counter) -> pa.Table:
        table = decide(table, [] if self.annotate else self.config)
        counts.update(r for r in table[C.DROP_REASON].to_pylist() if r)
        counts["kept"] += int(pc.sum(table[C.KEEP]).as_py() or 0)
        return table
