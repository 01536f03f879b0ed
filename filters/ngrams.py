r"""Hashed word n-grams for benchmark decontamination, vectorized over a batch of texts.

Pure: text in, hashes and spans out; no Ray, no config objects, no I/O.

- **Normalization**, as the GPT-3 and Llama reports describe it: lowercase, punctuation stripped. A word is
  a maximal run of letters and digits (Python's `[^\W_]`: `str.isalnum()` characters), lowercased with
  `str.lower()`; everything else (punctuation, symbols, whitespace, underscores) separates words. So
  "The answer is (B)." and "the answer is b" are the same four words.
- **Hashes**: a word is hashed once per distinct word (xxh3-64 of its UTF-8, cached); an n-gram's hash
  folds its n word hashes in order (`h = h·FOLD + w`, mod 2^64), so it is order-sensitive and the same
  in every process (no Python `hash()` salt).
- `ngram_hashes_batch` is the fast path: ASCII punctuation becomes space and ASCII letters lowercase in
  one `bytes.translate`, the text splits on whitespace, and only the few tokens holding non-ASCII bytes go
  through the regular expression; one numpy fold covers the whole batch. `word_spans` / `ngram_hashes`
  give the same words with their character offsets, for the few documents whose overlapping spans are
  cut out. A text with fewer than n words has no n-gram.
"""

from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
import xxhash

FOLD = np.uint64(0x9E3779B97F4A7C15)  # odd (the 64-bit golden ratio): order-sensitive, wraps mod 2^64
_WORD = re.compile(r"[^\W_]+")  # letters and digits
# ASCII letters lowercased, digits kept, every other ASCII byte a space; bytes >= 128 (UTF-8) kept.
_ASCII = bytes((c | 0x20 if 65 <= c <= 90 else c) if (c >= 128 or chr(c).isalnum()) else 32 for c in range(256))
_CACHE_LIMIT = 1 << 20


class WordHasher:
    """xxh3-64 of a word's UTF-8 bytes (already lowercased), cached (bounded) across batches."""

    def __init__(self):
        self.cache: dict[bytes, int] = {}

    def hashes(self, words: list[bytes]) -> np.ndarray:
        """One hash per word; the distinct words of the call are found by Arrow's dictionary encoding, so
        Python touches each distinct word once."""
        if len(self.cache) > _CACHE_LIMIT:
            self.cache.clear()
        cache, digest = self.cache, xxhash.xxh3_64_intdigest
        encoded = pa.array(words, pa.binary()).dictionary_encode()
        distinct = encoded.dictionary.to_pylist()
        values = np.fromiter((cache[w] if w in cache else cache.setdefault(w, digest(w)) for w in distinct),
                             dtype=np.uint64, count=len(distinct))
        return values[np.asarray(encoded.indices, dtype=np.int64)]


def words_of(text: str) -> list[bytes]:
    """The normalized words of `text`, as UTF-8 bytes (what `word_spans` gives, encoded)."""
    raw = text.encode("utf-8", "surrogatepass").translate(_ASCII)
    tokens = raw.split()
    if raw.isascii():
        return tokens
    words: list[bytes] = []
    for token in tokens:
        if token.isascii():
            words.append(token)
        else:  # non-ASCII letters, digits and separators: the regular expression decides
            words += [w.lower().encode("utf-8", "surrogatepass") for w in _WORD.findall(token.decode("utf-8", "surrogatepass"))]
    return words


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
    if isinstance(texts, (pa.Array, pa.ChunkedArray)):
        texts = texts.to_pylist()
    words: list[bytes] = []
    counts = np.zeros(len(texts), dtype=np.int64)
    for i, text in enumerate(texts):
        if text:
            found = words_of(text)
            counts[i] = len(found)
            words += found
    if len(words) < n:
        return np.empty(0, np.uint64), np.empty(0, np.int64)
    doc = np.repeat(np.arange(len(texts), dtype=np.int64), counts)
    grams = fold((hasher or WordHasher()).hashes(words), n)
    same_doc = doc[: len(grams)] == doc[n - 1 :]
    return grams[same_doc], doc[: len(grams)][same_doc]


def word_spans(text: str) -> tuple[list[bytes], list[tuple[int, int]]]:
    """The normalized words of `text` (UTF-8 bytes, as `words_of` gives them) and their (start, end)
    character offsets in it."""
    words, spans = [], []
    for match in _WORD.finditer(text):
        words.append(match.group().lower().encode("utf-8", "surrogatepass"))
        spans.append(match.span())
    return words, spans


def ngram_hashes(words: list[bytes], n: int, hasher: WordHasher | None = None) -> np.ndarray:
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
