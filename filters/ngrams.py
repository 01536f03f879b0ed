"""Hashed word n-grams for benchmark decontamination, vectorized over a batch of texts.

Pure: text in, hashes and spans out; no Ray, no config objects, no I/O.

- **Normalization**, as the GPT-3 and Llama reports describe it: lowercase, punctuation stripped. A word is
  a maximal run of Unicode letters and digits (`[\\p{L}\\p{N}]+`); everything else (punctuation, symbols,
  whitespace, underscores) separates words. So "The answer is (B)." and "the answer is b" are the same
  four words.
- **Hashes**: a word is hashed once per distinct word in the batch (xxh3-64 of its UTF-8); an n-gram's
  hash folds its n word hashes in order (`h = h·FOLD + w`, mod 2^64), so it is order-sensitive and the
  same in every process (no Python `hash()` salt).
- `ngram_hashes_batch` is the fast path (Arrow kernels + numpy, every document of a batch at once);
  `word_spans` / `ngram_hashes` give the same words with their character offsets, for the few documents
  whose overlapping spans are cut out. A text with fewer than n words has no n-gram.
"""

from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import xxhash

FOLD = np.uint64(0x9E3779B97F4A7C15)  # odd (the 64-bit golden ratio): order-sensitive, wraps mod 2^64
_SPLIT = r"[^\p{L}\p{N}]+"  # RE2: what separates words
_WORD = re.compile(r"[^\W_]+")  # Python: the same words (letters and digits), with their offsets
_CACHE_LIMIT = 1 << 20


class WordHasher:
    """xxh3-64 of a lowercased word, cached (bounded) across batches."""

    def __init__(self):
        self.cache: dict[str, int] = {}

    def hashes(self, words: list[str]) -> np.ndarray:
        if len(self.cache) > _CACHE_LIMIT:
            self.cache.clear()
        cache, digest = self.cache, xxhash.xxh3_64_intdigest
        out = np.empty(len(words), dtype=np.uint64)
        for i, word in enumerate(words):
            value = cache.get(word)
            if value is None:
                value = cache[word] = digest(word.encode("utf-8", "surrogatepass"))
            out[i] = value
        return out


def fold(word_hashes: np.ndarray, n: int) -> np.ndarray:
    """Hash of each window of n consecutive word hashes (len - n + 1 of them; none when shorter)."""
    count = len(word_hashes) - n + 1
    if count <= 0:
        return np.empty(0, dtype=np.uint64)
    out = np.zeros(count, dtype=np.uint64)
    for j in range(n):
        out *= FOLD
        out += word_hashes[j : j + count]
    return out


def ngram_hashes_batch(texts: pa.Array | pa.ChunkedArray | list, n: int, hasher: WordHasher | None = None
                       ) -> tuple[np.ndarray, np.ndarray]:
    """(hashes, doc): the n-gram hashes of every text of the batch and, for each, the index of its text.
    Null texts have none. N-grams never cross from one text into the next."""
    if not isinstance(texts, (pa.Array, pa.ChunkedArray)):
        texts = pa.array(texts, pa.large_string())
    if isinstance(texts, pa.ChunkedArray):
        texts = texts.combine_chunks() if texts.num_chunks else pa.array([], pa.large_string())
    if len(texts) == 0:
        return np.empty(0, np.uint64), np.empty(0, np.int64)
    parts = pc.split_pattern_regex(pc.utf8_lower(texts.cast(pa.large_string())), pattern=_SPLIT)
    parts = pc.fill_null(parts, pa.scalar([], parts.type))
    offsets = np.asarray(parts.offsets, dtype=np.int64)
    flat = parts.flatten()
    doc = np.repeat(np.arange(len(texts), dtype=np.int64), np.diff(offsets))
    nonempty = np.asarray(pc.greater(pc.binary_length(flat), 0), dtype=bool)
    flat, doc = flat.filter(pa.array(nonempty)), doc[nonempty]
    if len(flat) < n:
        return np.empty(0, np.uint64), np.empty(0, np.int64)
    encoded = flat.dictionary_encode()
    unique_hashes = (hasher or WordHasher()).hashes(encoded.dictionary.to_pylist())
    word_hashes = unique_hashes[np.asarray(encoded.indices, dtype=np.int64)]
    grams = fold(word_hashes, n)
    same_doc = doc[: len(grams)] == doc[n - 1 :]
    return grams[same_doc], doc[: len(grams)][same_doc]


def word_spans(text: str) -> tuple[list[str], list[tuple[int, int]]]:
    """The normalized words of `text` and their (start, end) character offsets in it."""
    words, spans = [], []
    for match in _WORD.finditer(text):
        words.append(match.group().lower())
        spans.append(match.span())
    return words, spans


def ngram_hashes(words: list[str], n: int, hasher: WordHasher | None = None) -> np.ndarray:
    """The n-gram hashes of one text's words (as `word_spans` gives them), in order."""
    return fold((hasher or WordHasher()).hashes(words), n)


def merge_windows(starts: np.ndarray, n: int) -> list[tuple[int, int]]:
    """Word ranges [first, last] covered by the n-grams starting at `starts`, overlapping ones merged."""
    ranges: list[tuple[int, int]] = []
    for start in np.sort(starts):
        first, last = int(start), int(start) + n - 1
        if ranges and first <= ranges[-1][1] + 1:
            ranges[-1] = (ranges[-1][0], max(ranges[-1][1], last))
        else:
            ranges.append((first, last))
    return ranges
