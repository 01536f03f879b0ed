"""English words and sentence counts exactly as datatrove finds them, without its cost.

datatrove 0.10 splits English with spaCy's rule-based tokenizer (`load_word_tokenizer("en")` is a
`SpaCyTokenizer`: `spacy.blank("en")` plus the sentencizer; not NLTK) and drops whitespace tokens.
spaCy splits text at whitespace into chunks and tokenizes each chunk by rules (prefixes, suffixes,
infixes, exceptions), so a chunk's tokens almost never depend on its neighbours. This module
tokenizes each distinct chunk once and remembers it: web text repeats its chunks (the Zipf head), so
most chunks are a dictionary hit. A new chunk is tokenized by replaying spaCy's rules with spaCy's own
regexes (`_affix_tokens`, no Doc built, prefix/suffix searches anchored and memoized); only chunks
that involve one of spaCy's exceptions ("don't", "U.S.", emoticons) go to spaCy itself, all of a
batch's in one call.

The one way neighbours matter: spaCy applies the exceptions that contain punctuation ("''", "a.",
emoticons) with a matcher over the whole text, and a match across a space, though it changes
nothing itself, can shadow a match inside a chunk: "]]' ''Account" keeps "'", "'" where "''Account"
alone gives "''". `context_matters` spots the neighbours that could do that (rare outside wiki
markup) and callers then tokenize that line with spaCy itself. (Three chunks or more interacting
through single-token chunks is not checked; no document of the parity set has one.)

Ids: each chunk and each token gets an integer id (process-wide; the memo starts over between
documents once `MAX_CHUNKS` chunks are known). Per-token facts (length, has a non-punctuation
character, has a letter) and per-chunk facts (its tokens, its sentence classes) live in numpy arrays,
so a document's words and its lines' counts are array lookups once its chunks are known.

Sentences: spaCy's sentencizer starts a sentence at a token that is not punctuation when a
sentence-final character (".", "!", "?", ...) was seen since the last start. Per chunk we keep its
tokens' classes with other punctuation removed and runs collapsed: "P" (sentence-final) and "O"
(not punctuation; whitespace tokens are "O"). A line's sentence count is 1 + the number of "PO" in
the concatenation.

tests/unit/test_quality_tokenizer.py checks all of it against spaCy and datatrove.
"""

from __future__ import annotations

import gc
import re
import sys
import unicodedata
from contextlib import contextmanager
from itertools import chain, islice
from typing import Iterator

import numpy as np
from datatrove.utils.text import PUNCTUATION_SET

from gristmill.filters.pieces import text_pieces

# Distinct chunks remembered before the memo starts over. It costs ~600 bytes a chunk (the chunk and its
# new tokens as strings and dict entries, their facts in arrays): 65,536 is ~40 MB per process. It fills
# with the vocabulary a worker meets, so its limit is what a worker's memory grows by with the files it
# reads (1,000,000, the earlier limit, was ~600 MB; bench/RESULTS.md "Memory against file size"). A
# smaller memo costs first sightings: on 4 MB of mixed real text, the quality stage took 1.3 s of CPU
# with the memo never full, 1.7 s at 65,536 (one start-over) and 1.9 s at 16,384.
MAX_CHUNKS = 1 << 16
# Characters of text split at a time (`chunk_pieces`): a piece's chunk strings are ~10x its size in memory.
PIECE_CHARS = 1 << 16
_WHITESPACE_RUNS = re.compile(r"(\s+)")
_WHITESPACE = re.compile(r"\s")  # str.isspace(), the separators of str.split()


def chunk_pieces(text: str, piece_chars: int | None = None) -> Iterator[list[str]]:
    """`text.split()` as consecutive non-empty lists, each from about `piece_chars` (default `PIECE_CHARS`)
    characters of the text, cut at whitespace, so a long text never has a list of all its chunks (~10
    bytes per byte of text)."""
    for piece in text_pieces(text, piece_chars or PIECE_CHARS, _WHITESPACE):
        if chunks := piece.split():
            yield chunks


@contextmanager
def paused_gc():
    """No cyclic garbage collection inside: scoring allocates many small lists (no cycles) and the
    collector kept scanning the memo's large containers, about a tenth of the time."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def is_punct(token: str) -> bool:
    """spaCy's `is_punct` lexical attribute (spacy/lang/lex_attrs.py): every character is punctuation."""
    return all(unicodedata.category(ch).startswith("P") for ch in token)


_CLASS_CODE = {"": 0, "O": 1, "P": 2}


def _collapse(classes: str) -> str:
    """Drop repeats: "OOPPO" -> "OPO" (the count of "PO" is unchanged)."""
    if len(classes) < 2:
        return classes
    out = classes[0]
    for cls in classes[1:]:
        if cls != out[-1]:
            out += cls
    return out


class _Growing:
    """A numpy array filled by appends: they collect in a list and are copied in when the array is read."""

    def __init__(self, dtype):
        self.data = np.zeros(1024, dtype)
        self.size = 0
        self.pending: list = []

    def __len__(self) -> int:
        return self.size + len(self.pending)

    def append(self, value) -> None:
        self.pending.append(value)

    def extend(self, values) -> int:
        """Append `values`; returns the index of the first."""
        start = len(self)
        self.pending.extend(values)
        return start

    @property
    def view(self) -> np.ndarray:
        if self.pending:
            new_size = self.size + len(self.pending)
            if new_size > len(self.data):
                grown = np.zeros(max(new_size, 2 * len(self.data)), self.data.dtype)
                grown[: self.size] = self.data[: self.size]
                self.data = grown
            self.data[self.size:new_size] = self.pending
            self.size, self.pending = new_size, []
        return self.data[: self.size]

    def truncate(self, size: int) -> None:
        """Forget every value from index `size` on."""
        self.view  # noqa: B018 (reading `view` moves the pending appends into `data`, so `size` counts them)
        self.size = min(self.size, size)


@contextmanager
def _torch_hidden():
    """spaCy without torch: thinc imports torch when it can (`thinc.compat`: try/except ImportError),
    which costs seconds per worker, and the blank English tokenizer never uses it. While spaCy loads
    and builds the blank pipeline, torch is made unimportable (unless spaCy or torch is loaded
    already). Set GRISTMILL_SPACY_TORCH=1 when the same worker later runs a torch-backed spaCy
    pipeline (e.g. a transformer model) and spaCy is first imported here."""
    import os
    import sys

    if "spacy" in sys.modules or "torch" in sys.modules or os.environ.get("GRISTMILL_SPACY_TORCH") == "1":
        yield
        return
    sys.modules["torch"] = None  # `import torch` raises ImportError
    try:
        yield
    finally:
        if "torch" in sys.modules and sys.modules["torch"] is None:
            del sys.modules["torch"]


class EnglishTokenizer:
    """Memoized spaCy-equivalent English word tokenizer; one per process is enough (`shared()`)."""

    _shared: EnglishTokenizer | None = None

    def __init__(self, max_chunks: int = MAX_CHUNKS):
        with _torch_hidden():
            import spacy
            from spacy.pipeline.sentencizer import Sentencizer

            nlp = spacy.blank("en")
        # Tokenizing never reads lexical attributes; computing them (shape, like_num, ...) for every new
        # string was a third of the cost of a first sighting.
        nlp.vocab.lex_attr_getters = {}
        self._vocab = nlp.vocab
        self._spacy, self._suffix_context = _with_fast_affix_search(nlp)
        assert self._spacy.token_match is None  # `_affix_tokens` replays the rules without it
        self._infix_possible = _infix_possible(nlp)
        self._sentence_final = frozenset(Sentencizer.default_punct_chars)
        self._exceptions = frozenset(self._spacy.rules)
        self._exception_prefixes = frozenset(e[:i] for e in self._exceptions for i in range(1, len(e)))
        self._patterns = _matcher_patterns(nlp)
        self._boundary_pairs = {pair for pattern in self._patterns.values() for pair in zip(pattern, pattern[1:])}
        self._left_words = frozenset(a for a, _ in self._boundary_pairs)
        self._right_words = frozenset(b for _, b in self._boundary_pairs)
        self.max_chunks = max_chunks
        self._reset()

    @classmethod
    def shared(cls) -> EnglishTokenizer:
        if cls._shared is None:
            cls._shared = cls()
        return cls._shared

    def _reset(self) -> None:
        # tokens
        self.vocab: dict[str, int] = {}
        self.tokens: list[str] = []
        self._length, self._content, self._alpha = _Growing(np.int64), _Growing(np.bool_), _Growing(np.bool_)
        self._left, self._right = _Growing(np.bool_), _Growing(np.bool_)
        self._class: list[str] = []  # sentence class per token: "P", "O" or "" (other punctuation)
        # chunks: tokens as a CSR (offset into _chunk_tokens, count), plus first/last token and sentence classes
        self.chunk_index: dict[str, int] = {}
        self._chunk_tokens = _Growing(np.int64)
        self._chunk_offset, self._chunk_count = _Growing(np.int64), _Growing(np.int64)
        self._chunk_first, self._chunk_last = _Growing(np.int64), _Growing(np.int64)
        self._chunk_count_list: list[int] = []
        self._chunk_classes: list[str] = []
        # sentence facts per chunk: "PO" inside it, and its first / last class (0 none, 1 "O", 2 "P")
        self._chunk_po, self._chunk_first_class, self._chunk_last_class = (
            _Growing(np.int64), _Growing(np.int8), _Growing(np.int8))
        self._pair_differs: dict[tuple[str, str], bool] = {}
        self._plain_words: dict[str, bool] = {}
        self._suffix_memo: dict[str, int] = {}
        self._affix_memos_grow = True  # False inside `forgetting()`: what they would learn is dropped after
        self.generation = getattr(self, "generation", -1) + 1

    # --- per-token facts (views valid until new chunks are learned) ---
    @property
    def length(self) -> np.ndarray:
        return self._length.view

    @property
    def content(self) -> np.ndarray:
        """True where the token has a character outside datatrove's PUNCTUATION_SET."""
        return self._content.view

    @property
    def alpha(self) -> np.ndarray:
        return self._alpha.view

    def token_id(self, token: str) -> int:
        found = self.vocab.get(token)
        if found is None:
            self._add_tokens([token])
            found = self.vocab[token]
        return found

    def _add_tokens(self, new: list[str]) -> None:
        """Give ids to tokens not seen before (distinct) and record their facts."""
        start = len(self.tokens)
        self.vocab.update(zip(new, range(start, start + len(new))))
        self.tokens.extend(new)
        self._length.extend(map(len, new))
        self._content.extend([not PUNCTUATION_SET.issuperset(t) for t in new])
        self._alpha.extend([t.isalpha() or any(map(str.isalpha, t)) for t in new])
        left, right, patterns = self._left_words, self._right_words, self._patterns
        self._left.extend([t in left or (t in patterns and patterns[t][-1] in left) for t in new])
        self._right.extend([t in right or (t in patterns and patterns[t][0] in right) for t in new])
        self._class.extend(map(self._token_class, new))

    def _token_class(self, token: str) -> str:
        if token in self._sentence_final:
            return "P"
        return "" if is_punct(token) else "O"

    # A token that is an exception the matcher applied inside its chunk was several tokens while the
    # matcher ran: its first and last tokens then were its pattern's.
    def _starts(self, token: str) -> tuple[str, ...]:
        pattern = self._patterns.get(token)
        return (token, pattern[0]) if pattern else (token,)

    def _ends(self, token: str) -> tuple[str, ...]:
        pattern = self._patterns.get(token)
        return (token, pattern[-1]) if pattern else (token,)

    def sentence_classes(self, tokens) -> str:
        """"P" (sentence-final) / "O" (not punctuation) per token, other punctuation dropped, runs collapsed."""
        return _collapse("".join(map(self._token_class, tokens)))

    # --- chunks ---
    def start_document(self) -> None:
        """Call before tokenizing a document: forget everything once the memo is full."""
        if len(self.chunk_index) > self.max_chunks:
            self._reset()

    # Everything the memo appends to as it learns (`_add_tokens`, `_add_chunks`, the string-keyed caches).
    _APPENDED = ("vocab", "tokens", "_length", "_content", "_alpha", "_left", "_right", "_class", "chunk_index",
                 "_chunk_tokens", "_chunk_offset", "_chunk_count", "_chunk_first", "_chunk_last",
                 "_chunk_count_list", "_chunk_classes", "_chunk_po", "_chunk_first_class", "_chunk_last_class",
                 "_pair_differs", "_plain_words", "_suffix_memo")

    @contextmanager
    def forgetting(self):
        """Learn what a document needs inside, and forget it after: the chunks and tokens learned inside
        (and the affix caches' new entries) are dropped on leaving, the memo keeps what it knew before.
        For a document near max_page_bytes: its one-off chunks (a numbered paragraph's "(7.1234)") were
        ~23,000 at ~480 bytes each (bench/big_page.py), kept until the memo filled, under later batches
        (bench/RESULTS.md, issue 21). Ids learned before stay valid; ids learned inside must not be used
        after. Tokenizing does not depend on what the memo holds, so no word or score changes."""
        self.start_document()  # a start-over happens here, not inside
        generation = self.generation
        sizes = {name: len(getattr(self, name)) for name in self._APPENDED}
        # The affix memos (pure caches of spaCy's searches) are read but not grown inside: a long text's
        # one-off chunks would add ~140 bytes each to them (and grow their tables) only to drop it after.
        self._affix_memos_grow = False
        try:
            yield
        finally:
            if self.generation != generation:  # started over inside after all: keep nothing of it
                self._reset()
            else:
                self._forget_after(sizes)
            self._affix_memos_grow = True

    def _forget_after(self, sizes: dict[str, int]) -> None:
        for name, size in sizes.items():
            kept = getattr(self, name)
            if isinstance(kept, dict):  # insertion order is learning order: the newest entries go
                for key in list(islice(reversed(kept), len(kept) - size)):
                    del kept[key]
            elif isinstance(kept, list):
                del kept[size:]
            else:
                kept.truncate(size)

    def _spacy_tokens(self, text: str) -> list[str]:
        from spacy.attrs import IDX, LENGTH

        with self._vocab.memory_zone():  # spaCy's own vocabulary and cache stay bounded
            spans = self._spacy(text).to_array([IDX, LENGTH]).astype(np.int64)
        starts = spans[:, 0].tolist()  # flat lists: no per-token list objects for the GC to chase
        return [text[a:b] for a, b in zip(starts, (spans[:, 0] + spans[:, 1]).tolist())]

    def _add_chunks(self, chunks: list[str], token_lists: list[list[str]]) -> None:
        vocab = self.vocab
        new = [t for t in dict.fromkeys(chain.from_iterable(token_lists)) if t not in vocab]
        if new:
            self._add_tokens(new)
        ids = [list(map(vocab.__getitem__, tokens)) for tokens in token_lists]
        first = len(self._chunk_count_list)
        self.chunk_index.update(zip(chunks, range(first, first + len(chunks))))
        counts = list(map(len, ids))
        flat = list(chain.from_iterable(ids))
        offset = self._chunk_tokens.extend(flat)
        self._chunk_offset.extend(np.cumsum([offset, *counts[:-1]]).tolist())
        self._chunk_count.extend(counts)
        self._chunk_first.extend([i[0] for i in ids])
        self._chunk_last.extend([i[-1] for i in ids])
        self._chunk_count_list.extend(counts)
        token_class = self._class
        # Collapsed class strings are few ("O", "OPO", ...): interned, not one string per chunk.
        classes = [token_class[i[0]] if len(i) == 1 else sys.intern(_collapse("".join(map(token_class.__getitem__, i))))
                   for i in ids]
        self._chunk_classes.extend(classes)
        self._chunk_po.extend([c.count("PO") for c in classes])
        self._chunk_first_class.extend([_CLASS_CODE[c[:1]] for c in classes])
        self._chunk_last_class.extend([_CLASS_CODE[c[-1:]] for c in classes])

    def _prefix_length(self, string: str) -> int:
        match = self._spacy.prefix_search(string)
        return match.end() - match.start() if match is not None else 0

    def _suffix_length(self, string: str) -> int:
        if not string.endswith(".."):
            key = string[-self._suffix_context:]  # all the suffix search can see (`_with_fast_affix_search`)
            found = self._suffix_memo.get(key)
            if found is None:
                match = self._spacy.suffix_search(key)
                found = match.end() - match.start() if match is not None else 0
                if self._affix_memos_grow:
                    self._suffix_memo[key] = found
            return found
        match = self._spacy.suffix_search(string)
        return match.end() - match.start() if match is not None else 0

    def _plain(self, word: str) -> bool:
        """Is `word` (letters and digits only) one token by spaCy's rules: no exception, prefix or
        suffix (memoized)? No infix to look for: every English infix consumes a character that is
        neither a letter nor a digit (dots, "…", symbols, "+-*^", ",", dashes, ":<>=/";
        tests/unit/test_quality_tokenizer.py checks it)."""
        known = self._plain_words.get(word)
        if known is None:
            known = word not in self._exceptions and not self._prefix_length(word) and not self._suffix_length(word)
            if self._affix_memos_grow:
                self._plain_words[word] = known
        return known

    def _affix_tokens(self, chunk: str) -> list[str] | None:
        """spaCy's tokens of `chunk` on its own, or None where an exception is involved (then spaCy
        tokenizes it).

        Replays spacy/tokenizer.pyx `_split_affixes` and `_attach_tokens` with spaCy's own prefix,
        suffix, infix and URL searches, and gives up wherever an exception would be involved: the
        chunk, what is left after a prefix or before a suffix, the core, or any run of neighbouring
        tokens (the special-case matcher could then act). Cheaper than spaCy itself because a Doc is
        never built, and exact: tests/unit/test_quality_tokenizer.py compares it with spaCy.
        """
        if chunk.isalnum():
            return [chunk] if self._plain(chunk) else None
        spacy, exceptions = self._spacy, self._exceptions
        string, prefixes, suffixes, last_size = chunk, [], [], -1
        while string and len(string) != last_size:
            if string.isalnum() and self._plain(string):  # no exception, prefix or suffix: the loop ends
                break
            if string in exceptions:
                return None
            last_size = len(string)
            pre = self._prefix_length(string)
            if pre and string[pre:] in exceptions:
                return None
            suf = self._suffix_length(string[pre:])
            if suf and string[:-suf] in exceptions:
                return None
            if pre and suf and pre + suf <= len(string):
                prefixes.append(string[:pre])
                suffixes.append(string[-suf:])
                string = string[pre:-suf]
            elif pre:
                prefixes.append(string[:pre])
                string = string[pre:]
            elif suf:
                suffixes.append(string[-suf:])
                string = string[:-suf]
        core = []
        if string:
            if string in exceptions:
                return None
            if string.isalnum() or not self._infix_possible(string) or spacy.url_match(string):  # kept whole
                core = [string]
            else:  # `_attach_tokens`: split at the infixes
                start = 0
                for match in spacy.infix_finditer(string):
                    infix_start, infix_end = match.span()
                    if infix_start == 0:
                        continue
                    if infix_start != start:
                        core.append(string[start:infix_start])
                    if infix_start != infix_end:
                        core.append(string[infix_start:infix_end])
                    start = infix_end
                if string[start:]:
                    core.append(string[start:])
        tokens = prefixes + core + suffixes[::-1]
        if len(tokens) > 1:  # no token or run of tokens may spell an exception (the matcher would act)
            if not exceptions.isdisjoint(tokens):
                return None
            starts = self._exception_prefixes  # only an exception's prefix can grow into one
            for i in range(len(tokens)):
                joined = tokens[i]
                for token in tokens[i + 1:]:
                    if joined not in starts:
                        break
                    joined += token
                    if joined in exceptions:
                        return None
        return tokens

    def learn(self, chunks) -> None:
        """Tokenize the chunks not seen before, each on its own (one spaCy call for all of them)."""
        with paused_gc():
            self._learn(chunks)

    def _learn(self, chunks) -> None:
        index = self.chunk_index
        fresh = [c for c in dict.fromkeys(chunks) if c not in index]
        easy, easy_tokens, hard = [], [], []
        for chunk in fresh:
            tokens = self._affix_tokens(chunk)
            if tokens is None:
                hard.append(chunk)
            else:
                easy.append(chunk)
                easy_tokens.append(tokens)
        if easy:
            self._add_chunks(easy, easy_tokens)
        if not hard:
            return
        # Joined by newlines: a newline is a token of its own, so nothing matches across two chunks.
        tokens = iter(self._spacy_tokens("\n".join(hard)))
        token_lists = []
        for chunk in hard:
            chunk_tokens, size = [], 0
            while size < len(chunk):
                chunk_tokens.append(next(tokens))
                size += len(chunk_tokens[-1])
            next(tokens, None)  # the newline
            token_lists.append(chunk_tokens)
        self._add_chunks(hard, token_lists)

    def chunk_ids(self, chunks: list[str]) -> np.ndarray:
        """Chunk ids of whitespace-free strings, learning the new ones."""
        get = self.chunk_index.__getitem__
        try:
            return np.fromiter(map(get, chunks), dtype=np.int64, count=len(chunks))
        except KeyError:
            self.learn(chunks)
            return np.fromiter(map(get, chunks), dtype=np.int64, count=len(chunks))

    def chunk_words(self, chunk_ids: np.ndarray, block: int = 1 << 16, dtype=np.int64) -> np.ndarray:
        """Token ids of the chunks, each tokenized on its own, concatenated (`block` chunks at a time, so
        the scratch arrays stay bounded however long the text; `dtype`: of the result when in blocks)."""
        if len(chunk_ids) <= block:
            return self._chunk_words(chunk_ids)
        count = self._chunk_count.view
        blocks = range(0, len(chunk_ids), block)
        out = np.empty(sum(int(count[chunk_ids[a:a + block]].sum()) for a in blocks), dtype)
        filled = 0
        for a in blocks:
            words = self._chunk_words(chunk_ids[a:a + block])
            out[filled:filled + len(words)] = words
            filled += len(words)
        return out

    def _chunk_words(self, chunk_ids: np.ndarray) -> np.ndarray:
        counts = self._chunk_count.view[chunk_ids]
        if not counts.size or counts.max() == 1:
            return self._chunk_first.view[chunk_ids]
        ends = np.cumsum(counts)
        steps = np.ones(int(ends[-1]), dtype=np.int64)
        offsets = self._chunk_offset.view[chunk_ids]
        # each chunk's first token jumps to its offset; the others follow it
        steps[0] = offsets[0]
        steps[ends[:-1]] = offsets[1:] - (offsets[:-1] + counts[:-1] - 1)
        return self._chunk_tokens.view[np.cumsum(steps)]

    def context_matters(self, chunk_ids: np.ndarray, chunks: list[str]) -> bool:
        """Could spaCy tokenize these neighbouring chunks differently together than each on its own?

        Only where the last token of one chunk and the first of the next are consecutive in one of the
        matcher's patterns; for those rare neighbours we tokenize the two together once and remember
        whether it differs.
        """
        if len(chunk_ids) < 2:
            return False
        lasts, firsts = self._chunk_last.view[chunk_ids[:-1]], self._chunk_first.view[chunk_ids[1:]]
        suspects = np.flatnonzero(self._left.view[lasts] & self._right.view[firsts])
        if not suspects.size:
            return False
        tokens, memo = self.tokens, self._pair_differs
        for i in suspects.tolist():
            ends, starts = self._ends(tokens[lasts[i]]), self._starts(tokens[firsts[i]])
            if not any((a, b) in self._boundary_pairs for a in ends for b in starts):
                continue
            pair = (chunks[i], chunks[i + 1])
            differs = memo.get(pair)
            if differs is None:
                alone = [tokens[t] for t in self.chunk_words(chunk_ids[i:i + 2]).tolist()]
                differs = memo[pair] = self.exact_tokens(f"{pair[0]} {pair[1]}") != alone
            if differs:
                return True
        return False

    def exact_tokens(self, text: str) -> list[str]:
        """spaCy's tokens of the whole text, whitespace tokens dropped (as datatrove strips them)."""
        return [t for t in self._spacy_tokens(text) if not t.isspace()]

    # --- documents and lines ---
    def word_ids(self, text: str, chunks: list[str] | None = None) -> np.ndarray:
        """Ids of the words datatrove's `split_into_words(text, "en")` returns."""
        return self.document_words(text, chunks)[0]

    def document_words(self, text: str, chunks: list[str] | None = None,
                       dtype=np.int64) -> tuple[np.ndarray, np.ndarray, bool]:
        """(word ids, chunk ids, whether some neighbouring chunks needed spaCy's context) of a text.
        `chunks`: `text.split()` when the caller has it; else the text is split in bounded pieces.
        `dtype`: of the ids of a text split in pieces (int32 halves their arrays; ids fit)."""
        if chunks is not None:
            chunk_ids = self.chunk_ids(chunks)
            context = self.context_matters(chunk_ids, chunks)
        else:
            parts, context, last = [], False, None
            for piece in chunk_pieces(text):
                ids = self.chunk_ids(piece)
                if not context:  # the pairs inside the piece, and the one across from the piece before
                    context = (self.context_matters(ids, piece) if last is None else
                               self.context_matters(np.concatenate([last[1], ids]), [last[0], *piece]))
                parts.append(ids.astype(dtype, copy=False))
                last = piece[-1], ids[-1:]
            chunk_ids = np.concatenate(parts) if len(parts) > 1 else parts[0] if parts else np.zeros(0, dtype)
            del parts
            if not context:
                return self.chunk_words(chunk_ids, dtype=dtype), chunk_ids, False
        if not context:
            return self.chunk_words(chunk_ids), chunk_ids, False
        # Lines never interact (a newline is a token of its own): redo only the lines that need it.
        parts = []
        for line in text.splitlines():
            chunks = line.split()
            ids = self.chunk_ids(chunks)
            if self.context_matters(ids, chunks):
                parts.append(np.array([self.token_id(t) for t in self.exact_tokens(line)], dtype=np.int64))
            else:
                parts.append(self.chunk_words(ids))
        return (np.concatenate(parts) if parts else np.zeros(0, np.int64)), chunk_ids, True

    def line_facts(self, chunk_ids: np.ndarray, chunks_per_line: np.ndarray,
                   block: int = 1 << 14) -> tuple[np.ndarray, np.ndarray]:
        """(words, sentences) per line, for lines whose chunks are `chunk_ids` in order, separated by
        single spaces, each tokenized on its own (see `line_counts` for the general case). Works through
        the chunks `block` at a time, so its scratch arrays stay bounded however long the text."""
        n_lines = len(chunks_per_line)
        words = np.zeros(n_lines, np.int64)
        sentences = np.ones(n_lines, np.int64)
        if not n_lines or not len(chunk_ids):
            return words, sentences
        if len(chunk_ids) <= block:  # all at once (the common case: fewer numpy calls)
            return self._line_facts(chunk_ids, chunks_per_line, words, sentences)
        ends = np.cumsum(chunks_per_line)  # a line's chunks end (exclusive) where the next line's start
        count, first_class, last_class, po = (self._chunk_count.view, self._chunk_first_class.view,
                                              self._chunk_last_class.view, self._chunk_po.view)
        # The last chunk before the block with a sentence class: its line and class (none: line -1).
        carry_line, carry_class = -1, 0
        for offset in range(0, len(chunk_ids), block):
            ids = chunk_ids[offset:offset + block]
            line = np.searchsorted(ends, np.arange(offset, offset + len(ids)), side="right")
            # A sentence starts where a chunk opens with "O" after a "P" earlier in the line, with only
            # punctuation-only chunks between; plus the "PO" inside chunks.
            first, last = first_class[ids], last_class[ids]
            position = np.arange(len(ids))
            last_nonempty = np.maximum.accumulate(np.where(last > 0, position, -1))
            before = np.empty_like(last_nonempty)
            before[0] = -1
            before[1:] = last_nonempty[:-1]
            inside = before >= 0
            before = np.maximum(before, 0)
            before_line = np.where(inside, line[before], carry_line)
            before_class = np.where(inside, last[before], carry_class)
            opens = (first == 1) & (before_line == line) & (before_class == 2)
            events = opens.astype(np.int64) + po[ids]
            # Sums per run of chunks of one line (a line may go on into the next block).
            runs = np.flatnonzero(np.diff(line, prepend=-1))
            words[line[runs]] += np.add.reduceat(count[ids], runs)
            sentences[line[runs]] += np.add.reduceat(events, runs)
            if last_nonempty[-1] >= 0:
                carry_line, carry_class = int(line[last_nonempty[-1]]), int(last[last_nonempty[-1]])
        return words, sentences

    def _line_facts(self, chunk_ids: np.ndarray, chunks_per_line: np.ndarray, words: np.ndarray,
                    sentences: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n_lines = len(chunks_per_line)
        filled = chunks_per_line > 0
        line_of_chunk = np.repeat(np.arange(n_lines), chunks_per_line)
        starts = (np.cumsum(chunks_per_line) - chunks_per_line)[filled]
        words[filled] = np.add.reduceat(self._chunk_count.view[chunk_ids], starts)
        first, last = self._chunk_first_class.view[chunk_ids], self._chunk_last_class.view[chunk_ids]
        position = np.arange(len(chunk_ids))
        last_nonempty = np.maximum.accumulate(np.where(last > 0, position, -1))
        before = np.empty_like(last_nonempty)
        before[0] = -1
        before[1:] = last_nonempty[:-1]
        same_line = (before >= 0) & (line_of_chunk[np.maximum(before, 0)] == line_of_chunk)
        opens = (first == 1) & same_line & (last[np.maximum(before, 0)] == 2)
        events = opens.astype(np.int64) + self._chunk_po.view[chunk_ids]
        sentences[filled] += np.add.reduceat(events, starts)
        return words, sentences

    def words(self, text: str) -> list[str]:
        tokens = self.tokens
        return [tokens[i] for i in self.word_ids(text).tolist()]

    def line_counts(self, line: str, chunks: list[str] | None = None, check_context: bool = True) -> tuple[int, int]:
        """(words, sentences) of a line, as datatrove counts them: the words of
        `split_into_words(line)` and the parts of `split_into_sentences(line)` (at least 1).
        `chunks` is `line.split()` when the caller has it; `check_context=False` when the caller
        knows no neighbouring chunks of the line need spaCy's context (see `document_words`)."""
        chunks = line.split() if chunks is None else chunks
        index = self.chunk_index
        try:
            ids = list(map(index.__getitem__, chunks))
        except KeyError:
            self.learn(chunks)
            ids = list(map(index.__getitem__, chunks))
        if check_context and len(ids) > 1 and self.context_matters(np.array(ids, dtype=np.int64), chunks):
            tokens = self._spacy_tokens(line)
            classes = self.sentence_classes("O" if t.isspace() else t for t in tokens)
            return sum(not t.isspace() for t in tokens), classes.count("PO") + 1
        n_words = sum(map(self._chunk_count_list.__getitem__, ids))
        chunk_classes = self._chunk_classes
        if " ".join(chunks) == line:
            classes = "".join(map(chunk_classes.__getitem__, ids))
        else:
            # spaCy makes a token ("O") of leading whitespace and of every other whitespace run that
            # is not exactly one space (the one space is the previous token's trailing whitespace).
            parts = _WHITESPACE_RUNS.split(line)
            out, next_chunk = [], iter(ids)
            for k, part in enumerate(parts):
                if k % 2 == 0:
                    if part:
                        out.append(chunk_classes[next(next_chunk)])
                elif part != " " or k == 1 and not parts[0]:
                    out.append("O")
            classes = "".join(out)
        return n_words, classes.count("PO") + 1


def _with_fast_affix_search(nlp):
    """spaCy's English tokenizer with equivalent, faster prefix and suffix searches.

    Every piece of the prefix regex starts with "^", so `match` finds what `search` finds without
    trying every later position first.

    spaCy's suffix regex is an alternation of pieces each anchored at the end ("...$"), and
    `re.search` tries it at every position of the string: half the cost of tokenizing a new chunk.
    Every piece but one matches at most a few characters, so the leftmost match of those starts in
    the last few characters; the unbounded piece (runs of dots) is searched on its own. The tokenizer
    only reads the match's length, which is the same.
    """
    from spacy.tokenizer import Tokenizer
    from spacy.util import compile_suffix_regex

    try:
        from re import _parser as sre_parse  # Python >= 3.11
    except ImportError:  # pragma: no cover
        import sre_parse

    tokenizer = nlp.tokenizer
    full = compile_suffix_regex(nlp.Defaults.suffixes)
    if full.pattern != tokenizer.suffix_search.__self__.pattern:  # pragma: no cover - a spaCy we do not know
        return tokenizer, 1 << 30
    prefixes = tokenizer.prefix_search.__self__
    anchored = all(piece.startswith("^") for piece in prefixes.pattern.split("|")) and not prefixes.flags & re.M
    prefix_search = prefixes.match if anchored else tokenizer.prefix_search
    pieces = [piece for piece in nlp.Defaults.suffixes if piece.strip()]
    widths = [sre_parse.parse(piece).getwidth()[1] for piece in pieces]
    window = max(w for w in widths if w <= 64)
    unbounded = [piece for piece, w in zip(pieces, widths) if w > 64]
    far = re.compile("|".join(f"(?:{piece})$" for piece in unbounded)).search if unbounded else None
    search = full.search

    def suffix_search(string: str):
        start = len(string) - window
        if start <= 0:
            return search(string)
        near = search(string, start)
        if far is not None:
            early = far(string)
            if early is not None and (near is None or early.start() < near.start()):
                return early
        return near

    fast = Tokenizer(nlp.vocab, rules=tokenizer.rules, prefix_search=prefix_search,
                     suffix_search=suffix_search, infix_finditer=tokenizer.infix_finditer,
                     token_match=tokenizer.token_match, url_match=tokenizer.url_match)
    # A suffix match of a bounded piece lies in the last `window` characters and looks behind at most
    # `behind` more: the result depends on the string's last window + behind characters only (unless
    # it ends in a run of dots, the unbounded piece).
    behind = max((w for piece in pieces for w in _lookbehind_widths(sre_parse.parse(piece))), default=0)
    return fast, window + behind


def _lookbehind_widths(parsed) -> list[int]:
    """Widths of the lookbehind assertions in a parsed regex (sre_parse)."""
    from re import _constants as sre

    widths = []
    for op, av in parsed:
        if op in (sre.ASSERT, sre.ASSERT_NOT):
            direction, sub = av
            if direction == -1:
                widths.append(sub.getwidth()[1])
            widths += _lookbehind_widths(sub)
        elif op == sre.SUBPATTERN:
            widths += _lookbehind_widths(av[-1])
        elif op == sre.BRANCH:
            for branch in av[1]:
                widths += _lookbehind_widths(branch)
        elif op in (sre.MAX_REPEAT, sre.MIN_REPEAT):
            widths += _lookbehind_widths(av[2])
    return widths


def _infix_possible(nlp):
    """A search that finds something wherever an English infix could match: the infix pieces without
    their context (each is a lookbehind / lookahead on one character class around what it consumes),
    so a string where it finds nothing has no infix, and the slow search with context is skipped."""
    consumed = []
    for piece in nlp.Defaults.infixes:
        bare = re.sub(r"\(\?<=\[.*?\]\)|\(\?=\[.*?\]\)", "", piece)
        if "(?<" in bare or "(?=" in bare or "(?!" in bare:  # pragma: no cover - a spaCy we do not know
            return lambda string: True
        consumed.append(f"(?:{bare})")
    return re.compile("|".join(consumed)).search


def _matcher_patterns(nlp) -> dict[str, tuple[str, ...]]:
    """The exceptions spaCy applies with its matcher, each with its pattern (two tokens or more).

    With `faster_heuristics` (the default), spaCy matches an exception over the whole text when it
    contains a prefix, suffix or infix, or a space (spacy/tokenizer.pyx, `_load_special_cases`); the
    pattern is the exception tokenized without exceptions.
    """
    from spacy.tokenizer import Tokenizer

    tokenizer = nlp.tokenizer
    plain = Tokenizer(nlp.vocab, rules={}, prefix_search=tokenizer.prefix_search,
                      suffix_search=tokenizer.suffix_search, infix_finditer=tokenizer.infix_finditer,
                      token_match=tokenizer.token_match, url_match=tokenizer.url_match)
    patterns = {}
    for special in tokenizer.rules:
        if (tokenizer.find_prefix(special) or tokenizer.find_infix(special) or tokenizer.find_suffix(special)
                or " " in special):
            pattern = tuple(t.text for t in plain(special))
            if len(pattern) > 1:
                patterns[special] = pattern
    return patterns
