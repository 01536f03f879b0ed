"""ScoreQuality: heuristic quality scores from one shared split of each document.

The split (`filters.textsplit.SplitText`) is built once per document here and handed to every rule
(Gopher quality and repetition, C4, FineWeb), so adding a rule never re-tokenizes the text. FineWeb's
rules score the lines C4 keeps, as in FineWeb's pipeline; the text itself is not rewritten here.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import Callable

import pyarrow as pa
import pyarrow.compute as pc

from gristmill.filters.c4 import BadWords, C4LineRules, c4_clean_text, c4_lines
from gristmill.filters.english import PIECE_CHARS, EnglishTokenizer, paused_gc
from gristmill.filters.fineweb import FineWebQuality, fineweb_scores
from gristmill.filters.gopher import GopherQuality, GopherRepetition, gopher_quality_scores, gopher_repetition_scores
from gristmill.filters.textsplit import SplitText
from gristmill.pipeline.engine.process import release_memory
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


def quality_scores(split: SplitText, config: QualityConfig, bad_words: BadWords | None = None,
                   between: Callable[[], None] = lambda: None) -> dict:
    """Every heuristic score column of one document. `between`: called after each rule family (to hand a
    long text's freed scratch back to the OS before the next one's peak)."""
    out = vars(gopher_repetition_scores(split)).copy()  # flat dataclasses: vars() is asdict without the deep copy
    between()
    out.update(vars(gopher_quality_scores(split)))
    split.release_words()  # the last rule that reads them
    between()
    c4 = c4_lines(split, c4_line_rules(config))
    between()
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
        column = table[C.TEXT]
        texts = column.to_pylist() if clean else None
        rows = [i for i, is_doc in enumerate(active_mask(table).to_pylist()) if is_doc]
        # A long text (over PIECE_CHARS characters) is fetched alone, scored first and dropped: a document
        # near max_page_bytes (a 9.5 MB string) is not held beside the batch's other texts and their chunk
        # lists, nor they beside it. Its chunks are not listed at all: they are split in bounded pieces,
        # here and again for its words, so it costs its distinct chunks, not a list of all of them (~10
        # bytes per byte of text); it learns them piece by piece and the memo forgets them after it.
        # (The order of the documents changes no score: a chunk's words do not depend on the memo.)
        chars = pc.utf8_length(column).to_pylist()
        long = {i for i in rows if (chars[i] or 0) > PIECE_CHARS}
        tokenizer = EnglishTokenizer.shared()
        with paused_gc():
            for i in sorted(long):
                with tokenizer.forgetting():
                    text = column[i].as_py()
                    release_memory()  # the scratch its decoding freed (measured: ~1 MiB off the stage's rise)
                    self._score(i, text, None, values, texts, counts, between=release_memory)
                    del text
            # A short text's chunks are split once and shared with its split. The batch's new words in one
            # pass (one spaCy call for the hard ones), before any document needs them.
            docs = [(i, text := column[i].as_py() or "", text.split()) for i in rows if i not in long]
            tokenizer.start_document()
            tokenizer.learn(chunk for _, _, chunks in docs for chunk in chunks)
            for k, (i, text, chunks) in enumerate(docs):
                docs[k] = None  # each document's text and chunks go once it is scored
                self._score(i, text, chunks, values, texts, counts)
        for name in self.writes:
            table = set_column(table, name, texts if name == C.TEXT else values[name])
        return table

    def _score(self, i: int, text: str | None, chunks: list[str] | None, values: dict, texts: list | None,
               counts: Counter, **more) -> None:
        split = SplitText(text or "", EnglishTokenizer.shared(), chunks)
        for name, value in quality_scores(split, self.config, self.bad_words, **more).items():
            values[name][i] = value
        counts["scored"] += 1
        if texts is not None:  # scores above are of the original text; only the stored text changes
            lines = c4_lines(split, c4_line_rules(self.config))
            texts[i] = c4_clean_text(lines)
            counts["c4_cleaned_documents"] += texts[i] != split.text
            for reason, n in lines.removed:
                counts[f"c4_lines_removed:{reason}" if reason != "citations_cut" else "c4_lines_citations_cut"] += n
