"""ScoreToxicity: a fastText toxicity score per document, optional toxic-span removal, a word-list count,
and the identity-attack signal (identity term and toxic content in one sentence).

Span mode (`toxicity.span_unit`) is the one place this stage rewrites text: sentences or lines scoring
above `span_threshold` are cut out (as Dolma does at 0.4), each cut recorded in `text_edits`
(kind `toxic_span`, offsets in the text before the cut) and counted in `toxic_span_count`; the document
score is then taken on what remains. Every threshold is a decide rule, so none of this drops a row here.

Without span mode a long text (over `filters.toxicity.PIECE_CHARS` bytes) is scored from its UTF-8 bytes in the
Arrow buffer, a piece at a time, and never becomes one Python str (issue 21: a page near max_page_bytes is
9.5 MB as a str, 14 MiB while it is decoded).
"""

from __future__ import annotations

from collections import Counter

import pyarrow as pa

from gristmill.pipeline.stages.base import Stage, active_mask, set_column
from gristmill.schemas import columns as C
from gristmill.schemas.job import ToxicityConfig

EDIT_KIND = "toxic_span"


def _document_texts(texts: pa.ChunkedArray):
    """Each row's text as the scorers read it (None where null): a long one as its UTF-8 bytes in the Arrow buffer."""
    from gristmill.filters.pieces import Utf8Text
    from gristmill.filters.toxicity import PIECE_CHARS

    for text in Utf8Text.of_values(texts):
        yield text if text is None or len(text) > PIECE_CHARS else str(text)


class ScoreToxicity(Stage):
    name = "toxicity"
    reads = (C.TEXT,)  # and text_edits when an upstream stage wrote it

    config: ToxicityConfig

    def __init__(self, config: ToxicityConfig | None = None):
        super().__init__(config or ToxicityConfig())
        writes = [C.TOXICITY_SCORE, C.TOXIC_SPAN_COUNT, C.IDENTITY_ATTACK_SCORE]
        if self.config.word_list_file:
            writes.append(C.TOXIC_WORD_COUNT)
        if self.config.span_unit:
            writes += [C.TEXT, C.TEXT_EDITS]
        self.writes = tuple(writes)

    def rules(self) -> list:
        from gristmill.pipeline.stages.decide import toxicity_rules

        return toxicity_rules(self.config)

    def setup(self) -> None:
        from gristmill.filters.identity import IdentityLexicon
        from gristmill.filters.toxicity import ToxicityModel, WordListScorer

        self.model = ToxicityModel(self.config.model_file, self.config.label)
        self.words = WordListScorer.from_file(self.config.word_list_file) if self.config.word_list_file else None
        path = self.config.identity_lexicon_file
        self.lexicon = IdentityLexicon.from_path(path) if path else IdentityLexicon.default()

    def process(self, table: pa.Table, counts: Counter) -> pa.Table:
        from gristmill.filters.toxicity import remove_spans

        n = table.num_rows
        unit = self.config.span_unit
        texts = table[C.TEXT].to_pylist() if unit else None
        edits = table[C.TEXT_EDITS].to_pylist() if C.TEXT_EDITS in table.column_names else [None] * n
        scores, spans, attacks, words = [None] * n, [None] * n, [None] * n, [None] * n
        # span mode rewrites the texts; else a long one is read from the column's buffer
        values = iter(texts) if unit else _document_texts(table[C.TEXT])
        for i, (is_doc, value) in enumerate(zip(active_mask(table).to_pylist(), values)):
            if not is_doc:
                continue
            text = value or ""
            if unit:
                kept, removed = remove_spans(text, self.model.score_spans(text, unit), self.config.span_threshold)
                if removed:
                    edits[i] = list(edits[i] or []) + [
                        {"stage": self.name, "kind": EDIT_KIND, "start": s.start, "end": s.end} for s in removed]
                    texts[i] = text = kept
                    counts["documents_with_toxic_spans"] += 1
                    counts["toxic_spans_removed"] += len(removed)
                spans[i] = len(removed)
            scores[i] = self.model.score(text)
            attacks[i] = self.lexicon.identity_attack(text, self.model.score_many)
            if self.words is not None:
                words[i] = self.words.count(text)
            counts["scored"] += 1
        table = set_column(table, C.TOXICITY_SCORE, scores)
        table = set_column(table, C.TOXIC_SPAN_COUNT, spans)
        table = set_column(table, C.IDENTITY_ATTACK_SCORE, attacks)
        if self.words is not None:
            table = set_column(table, C.TOXIC_WORD_COUNT, words)
        if unit:
            table = set_column(table, C.TEXT, texts)
            table = set_column(table, C.TEXT_EDITS, edits)
        return table
