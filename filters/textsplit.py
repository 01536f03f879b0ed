"""One split of a document's text, shared by every rule.

Rules never re-split: a stage builds one `SplitText` per document and hands the same object to every
scorer (datatrove re-tokenizes in each filter, which is most of its filter time). Parts are computed
lazily and cached (but the two only Gopher repetition reads), so a rule set that needs no words never
pays for them. Word and chunk ids are int32 arrays (4 bytes a word: ~4 MB for a page near
max_page_bytes); the words' lengths and flags are looked up from the ids when read, not kept, and a long
text keeps its chunk ids only once C4 reads them (`chunk_ids`, `release_words`). Each part is split the
way the rule that reads it defines it (datatrove's definitions, for parity):

- `lines`: `str.splitlines()` (Gopher quality, C4);
- `newline_lines`: the text split on runs of "\\n" (Gopher repetition's lines);
- `paragraphs`: the stripped text split on runs of two or more "\\n" (Gopher repetition);
- `chunks`: whitespace-separated chunks (`str.split()`), the unit the word tokenizer memoizes (the words
  never need this list: the tokenizer splits in bounded pieces, `filters.english.chunk_pieces`);
- `word_ids` / `words`: English words as datatrove's spaCy tokenizer finds them
  (`filters.english.EnglishTokenizer`), as ids into the tokenizer's vocabulary;
- `sentence_ends`: where each sentence ends: a run of ".", "!", "?" (closing quotes and brackets
  included) before whitespace, or a line break; the representation tagger counts mentions per sentence;
- `derived(key, make)`: a cache for views built from the parts (e.g. the lines C4 keeps), so two
  rules that need the same view share it.
"""

from __future__ import annotations

import re
from functools import cached_property
from typing import Callable, TypeVar

import numpy as np

from gristmill.filters import english
from gristmill.filters.english import EnglishTokenizer

_PARAGRAPH_BREAK = re.compile(r"\n{2,}")
_SENTENCE_END = re.compile(r"[.!?\u2026]+[\"'\u201d\u2019)\]]*(?=\s)|\n")
T = TypeVar("T")


class SplitText:
    """Lazily computed lines, paragraphs and words of one text."""

    __slots__ = ("text", "tokenizer", "__dict__")

    def __init__(self, text: str | None, tokenizer: EnglishTokenizer | None = None, chunks: list[str] | None = None):
        self.text = text or ""
        self.tokenizer = tokenizer or EnglishTokenizer.shared()
        if chunks is not None:  # the caller split it already (`text.split()`)
            self.__dict__["chunks"] = chunks

    @cached_property
    def lines(self) -> list[str]:
        return self.text.splitlines()

    @property
    def newline_lines(self) -> list[str]:
        """Not cached: one rule reads it, and a long text's copy should not stay for the rules after."""
        # = re.split("\n+", text): empty parts between newlines go, the first and last stay
        parts = self.text.split("\n")
        if len(parts) < 3:
            return parts
        return [parts[0], *filter(None, parts[1:-1]), parts[-1]]

    @property
    def paragraphs(self) -> list[str]:
        """Not cached, as `newline_lines`."""
        text = self.text.strip()
        return _PARAGRAPH_BREAK.split(text) if "\n\n" in text else [text]

    @cached_property
    def chunks(self) -> list[str]:
        return self.text.split()

    @cached_property
    def sentence_ends(self) -> list[int]:
        """Sorted end offsets of the sentences (the last is `len(text)`); sentence i is
        `text[ends[i-1]:ends[i]]`, so `bisect_right(ends, offset)` is the sentence of an offset."""
        ends = [m.end() for m in _SENTENCE_END.finditer(self.text)]
        if not ends or ends[-1] != len(self.text):
            ends.append(len(self.text))
        return ends

    @cached_property
    def _word_facts(self) -> np.ndarray:
        tokenizer = self.tokenizer
        tokenizer.start_document()
        # Without `chunks` given, the tokenizer splits the text in bounded pieces: a long text's list of
        # chunks would be ~10 bytes per byte of text. int32 ids (they stay below the memo's limit plus one
        # batch's words), made as int32 rather than cast: no int64 copy of a word's size.
        ids, chunk_ids, self._needs_context = tokenizer.document_words(self.text, self.__dict__.get("chunks"),
                                                                       dtype=np.int32)
        # A long text's chunk ids are not kept beside its words: only C4 reads them, after the rules that
        # read the words, and looks them up again then (a page near max_page_bytes: ~0.07 s, 3.2 MB not held
        # under the n-gram step's peak).
        self._chunk_ids = chunk_ids.astype(np.int32, copy=False) if not self._long else None
        self._chunk_count = len(chunk_ids)
        del chunk_ids
        self._generation = tokenizer.generation
        return ids.astype(np.int32, copy=False)

    @property
    def _long(self) -> bool:
        return len(self.text) > english.PIECE_CHARS

    @property
    def word_ids(self) -> np.ndarray:
        return self._word_facts

    def release_words(self) -> None:
        """Drop a long text's word ids once the last rule that reads them is done (read again, they are
        found again); a short text keeps them."""
        if self._long:
            self.__dict__.pop("_word_facts", None)

    @property
    def chunk_ids(self) -> np.ndarray:
        """The tokenizer's ids of `chunks`."""
        if "_needs_context" not in self.__dict__:
            self._word_facts
        if self._chunk_ids is None:  # filled piece by piece: no second array of its size
            self._chunk_ids, filled = np.empty(self._chunk_count, np.int32), 0
            for piece in english.chunk_pieces(self.text):
                self._chunk_ids[filled:filled + len(piece)] = self.tokenizer.chunk_ids(piece)
                filled += len(piece)
            assert filled == self._chunk_count
        return self._chunk_ids

    @property
    def needs_context(self) -> bool:
        """Whether some neighbouring chunks tokenize differently together (see `filters.english`)."""
        if "_needs_context" not in self.__dict__:
            self._word_facts
        return self._needs_context

    # Per-word facts are looked up when read, not kept (a document near max_page_bytes has ~950,000 words):
    # the rules that read them sum them in blocks from the tokenizer's per-token arrays instead.
    def _token_facts(self, facts: np.ndarray) -> np.ndarray:
        ids = self._word_facts
        assert self._generation == self.tokenizer.generation, "the tokenizer started over since the words were found"
        return facts[ids]

    @property
    def word_lengths(self) -> np.ndarray:
        """Characters per word (int32)."""
        return self._token_facts(self.tokenizer.length).astype(np.int32)

    @property
    def word_is_content(self) -> np.ndarray:
        """True for words with a character outside datatrove's punctuation set (Gopher's words)."""
        return self._token_facts(self.tokenizer.content)

    @property
    def word_has_alpha(self) -> np.ndarray:
        return self._token_facts(self.tokenizer.alpha)

    @cached_property
    def words(self) -> list[str]:
        tokens = self.tokenizer.tokens
        return [tokens[i] for i in self.word_ids.tolist()]

    def derived(self, key, make: Callable[[SplitText], T]) -> T:
        """`make(self)`, computed once per split and `key`."""
        cache = self.__dict__.setdefault("_derived", {})
        if key not in cache:
            cache[key] = make(self)
        return cache[key]


def split_batch(texts) -> list[SplitText]:
    return [SplitText(t) for t in texts]
