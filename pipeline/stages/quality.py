"""ScoreQuality: heuristic quality scores from one shared split of each document.

The split (`filters.textsplit.SplitText`) is built once per document here and handed to every rule
(Gopher quality and repetition, C4, FineWeb), so adding a rule never re-tokenizes the text. FineWeb's
rules score the lines C4 keeps, as in FineWeb's pipeline; the text itself is not rewritten here.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from contextlib import nullcontext

import pyarrow as pa

from gristmill.filters.c4 import BadWords, C4LineRules, c4_clean_text, c4_lines
from gristmill.filters.english import PIECE_CHARS, EnglishTokenizer, paused_gc
from gristmill.filters.fineweb import FineWebQuality, fineweb_scores
from gristmill.filters.gopher import GopherQuality, GopherRepetition, gopher_quality_scores, gopher_repetition_scores
from gristmill.filters.textsplit import SplitText
from gristmill.pipeline.stages.base import Stage, active_mask, set_column
from gristmill.schemas import columns as C
from gristmill.schemas.job import QualityConfig

_GOPHER_FIELDS = [f.name for f in dataclasses.fields(GopherQuality)]
# Field names of the score dataclasses are the column names, except where the columns carry the rule
# family's prefix.
_REPETITION_FIELDS = [f.name for f in dataclasses.fields(GopherRepetition)]
_FINEWEB_COLUMNS = {
    "line_punct_ratio": C.FINEWEB_LINE_PUNCT_RATIO,
    "short_line_ratio": C.FINEWEB_SHORT_LINE_RATIO,
    "char_dup_ratio": C.FINEWEB_CHAR_DUP_RATIO,
    "newline_word_ratio": C.FINEWEB_NEWLINE_WORD_RATIO,
}
assert set(_FINEWEB_COLUMNS) == {f.name for f in dataclasses.fields(FineWebQuality)}
assert set(_REPETITION_FIELDS) == {
    C.DUPLICATE_PARAGRAPHS_RATIO, C.DUPLICATE_PARAGRAPH_CHARS_RATIO, C.DUPLICATE_LINES_RATIO,
    C.DUPLICATE_LINE_CHARS_RATIO, *C.TOP_NGRAM_CHARS_RATIO.values(), *C.DUPLICATE_NGRAM_CHARS_RATIO.values()}
_C4_COLUMNS = (C.C4_LOREM_IPSUM_LINE_COUNT, C.C4_CURLY_BRACKET_LINE_COUNT, C.C4_SENTENCE_COUNT, C.C4_BAD_WORD_COUNT)


def c4_line_rules(config: QualityConfig) -> C4LineRules:
    return C4LineRules(
        min_words_per_line=config.c4_min_words_per_line,
        max_word_length=config.c4_max_word_length,
        remove_citations=config.c4_remove_citations,
        drop_javascript_lines=config.c4_drop_javascript_lines,
        drop_policy_lines=config.c4_drop_policy_lines,
    )


def quality_scores(split: SplitText, config: QualityConfig, bad_words: BadWords | None = None) -> dict:
    """Every heuristic score column of one document."""
    out = vars(gopher_repetition_scores(split)).copy()  # flat dataclasses: vars() is asdict without the deep copy
    out.update(vars(gopher_quality_scores(split)))
    c4 = c4_lines(split, c4_line_rules(config))
    out[C.C4_LOREM_IPSUM_LINE_COUNT] = c4.lorem_ipsum_line_count
    out[C.C4_CURLY_BRACKET_LINE_COUNT] = c4.curly_bracket_line_count
    out[C.C4_SENTENCE_COUNT] = c4.sentence_count
    out[C.C4_BAD_WORD_COUNT] = bad_words.count(split.text) if bad_words is not None else None
    fineweb = fineweb_scores(c4, config.fineweb_short_line_chars)
    out.update({_FINEWEB_COLUMNS[field]: value for field, value in vars(fineweb).items()})
    return out


class ScoreQuality(Stage):
    name = "quality"
    reads = (C.TEXT,)
    writes = (*_REPETITION_FIELDS, *_GOPHER_FIELDS, *_C4_COLUMNS, *_FINEWEB_COLUMNS.values())

    config: QualityConfig

    def rules(self) -> list:
        from gristmill.pipeline.stages.decide import quality_rules

        return quality_rules(self.config)

    def setup(self) -> None:
        path = self.config.c4_bad_words_file
        self.bad_words = BadWords.from_file(path) if path else None

    def __init__(self, config: QualityConfig | None = None):
        super().__init__(config if config is not None else QualityConfig())
        if self.config.c4_clean_text:  # the text is rewritten to the lines C4 keeps
            self.writes = (*type(self).writes, C.TEXT)

    def process(self, table: pa.Table, counts: Counter) -> pa.Table:
        values = {name: [None] * table.num_rows for name in self.writes}
        clean = self.config.c4_clean_text
        texts = table[C.TEXT].to_pylist() if clean else None
        # A text's chunks are split once and shared with its split; a long text's (over PIECE_CHARS) are not
        # listed at all: they are split in bounded pieces, here and again for its words, so a document near
        # max_page_bytes costs its distinct chunks, not a list of all of them (~10 bytes per byte of text).
        docs = [(i, text or "", (text or "").split() if len(text or "") <= PIECE_CHARS else None)
                for i, (is_doc, text) in enumerate(zip(active_mask(table).to_pylist(), table[C.TEXT].to_pylist())) if is_doc]
        # The batch's new words in one pass (one spaCy call for the hard ones), before any document needs them.
        # A long text's are not: it learns them piece by piece and the memo forgets them after it (below).
        tokenizer = EnglishTokenizer.shared()
        tokenizer.start_document()
        with paused_gc():
            tokenizer.learn(chunk for _, _, chunks in docs if chunks is not None for chunk in chunks)
            for i, text, chunks in docs:
                with tokenizer.forgetting() if chunks is None else nullcontext():
                    split = SplitText(text, tokenizer, chunks)
                    for name, value in quality_scores(split, self.config, self.bad_words).items():
                        values[name][i] = value
                    counts["scored"] += 1
                    if clean:  # scores above are of the original text; only the stored text changes
                        lines = c4_lines(split, c4_line_rules(self.config))
                        texts[i] = c4_clean_text(lines)
                        counts["c4_cleaned_documents"] += texts[i] != text
                        for reason, n in lines.removed:
                            counts[f"c4_lines_removed:{reason}" if reason != "citations_cut" else "c4_lines_citations_cut"] += n
                    del split
        for name in self.writes:
            table = set_column(table, name, texts if name == C.TEXT else values[name])
        return table
