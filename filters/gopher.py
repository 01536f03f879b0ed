"""Gopher quality and repetition scores (Rae et al. 2021, "Scaling Language Models", appendix A and
table A1), as datatrove's GopherQualityFilter and GopherRepetitionFilter define them.

`gopher_quality_scores` and `gopher_repetition_scores` return the numbers; thresholds live in the job
and are applied by the decide step. An empty document scores 0 words and 0.0 ratios (no division by
zero). Words are datatrove's English words (`SplitText.word_ids`); lines and paragraphs are split as
each datatrove filter splits them (see `filters.textsplit`).

Repetition, as datatrove computes it (all fractions are of the document's characters):
- duplicate paragraphs / lines: a paragraph (line) that already appeared earlier is a duplicate; the
  count ratio is duplicates per paragraph (line), the character ratio their characters per character;
- top n-gram (n = 2..4): characters of the most frequent word n-gram (words joined by one space)
  times its count; ties go to the n-gram seen first. A document of exactly distinct n-grams scores
  its first n-gram's length. Overlapping occurrences all count, so this can exceed 1;
- duplicate n-gram (n = 5..10): scanning left to right, an n-gram seen before adds its characters
  (words joined without spaces) and the scan jumps past it; never above 1.

One deliberate difference: datatrove compares duplicate n-grams as the words glued together without
a separator, so "the end of the world" and "then do fthe world" could collide ("theendof..."); we
compare the word sequences. On natural text the two agree.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gristmill.filters.textsplit import SplitText

STOP_WORDS = frozenset(["the", "be", "to", "of", "and", "that", "have", "with"])
BULLETS = ("•", "-")
ELLIPSES = ("...", "…")
TOP_NGRAM_SIZES = (2, 3, 4)
DUPLICATE_NGRAM_SIZES = (5, 6, 7, 8, 9, 10)


@dataclass(frozen=True)
class GopherQuality:
    word_count: int  # non-symbol words
    mean_word_length: float  # characters per non-symbol word; 0.0 when there is none
    hash_word_ratio: float  # '#' per word (all words); may exceed 1
    ellipsis_word_ratio: float  # '...' or '…' per word; may exceed 1
    bullet_lines_ratio: float  # [0, 1]
    ellipsis_lines_ratio: float  # [0, 1]
    alpha_words_ratio: float  # [0, 1] share of words with an alphabetic character
    stop_word_count: int  # distinct STOP_WORDS present


@dataclass(frozen=True)
class GopherRepetition:
    duplicate_paragraphs_ratio: float  # [0, 1]
    duplicate_paragraph_chars_ratio: float  # [0, 1]
    duplicate_lines_ratio: float  # [0, 1]
    duplicate_line_chars_ratio: float  # [0, 1]
    top_2gram_chars_ratio: float  # [0, inf)
    top_3gram_chars_ratio: float
    top_4gram_chars_ratio: float
    duplicate_5gram_chars_ratio: float  # [0, 1]
    duplicate_6gram_chars_ratio: float
    duplicate_7gram_chars_ratio: float
    duplicate_8gram_chars_ratio: float
    duplicate_9gram_chars_ratio: float
    duplicate_10gram_chars_ratio: float


def gopher_quality_scores(split: SplitText) -> GopherQuality:
    text, lines = split.text, split.lines
    ids, lengths, content = split.word_ids, split.word_lengths, split.word_is_content
    n_words, n_content = len(ids), int(content.sum())
    vocab = split.tokenizer.vocab
    stop_ids = [vocab[w] for w in STOP_WORDS if w in vocab]
    return GopherQuality(
        word_count=n_content,
        mean_word_length=float(lengths.sum(where=content)) / n_content if n_content else 0.0,
        hash_word_ratio=text.count("#") / n_words if n_words else 0.0,
        ellipsis_word_ratio=(text.count("...") + text.count("…")) / n_words if n_words else 0.0,
        bullet_lines_ratio=_share(lines, lambda line: line.lstrip().startswith(BULLETS))
        if any(b in text for b in BULLETS) else 0.0,
        ellipsis_lines_ratio=_share(lines, lambda line: line.rstrip().endswith(ELLIPSES))
        if any(e in text for e in ELLIPSES) else 0.0,
        alpha_words_ratio=int(split.word_has_alpha.sum()) / n_words if n_words else 0.0,
        stop_word_count=_distinct_present(stop_ids, ids),
    )


def _distinct_present(wanted: list[int], ids: np.ndarray, block: int = 1 << 16) -> int:
    """How many of the distinct `wanted` ids occur in `ids` (a block of ids at a time as Python ints, so
    a long document never has a list of all its words)."""
    wanted, found = set(wanted), set()
    for a in range(0, len(ids), block):
        found |= wanted.intersection(ids[a:a + block].tolist())
    return len(found)


def _share(lines: list[str], test) -> float:
    return sum(map(test, lines)) / len(lines) if lines else 0.0


def find_duplicates(parts: list[str]) -> tuple[int, int]:
    """(parts equal to an earlier part, their characters)."""
    seen: set[str] = set()
    count = chars = 0
    for part in parts:
        if part in seen:
            count += 1
            chars += len(part)
        else:
            seen.add(part)
    return count, chars


def ngram_repetition(ids: np.ndarray, lengths: np.ndarray, top_sizes=TOP_NGRAM_SIZES,
                     duplicate_sizes=DUPLICATE_NGRAM_SIZES) -> tuple[dict[int, int], dict[int, int]]:
    """Characters of the top n-gram times its count (per n in `top_sizes`) and characters of duplicate
    n-grams (per n in `duplicate_sizes`), for the word sequence `ids` with character `lengths`.

    Level by level: an n-gram can repeat only where its (n-1)-gram prefix repeats, so each level
    relabels only the positions whose prefix repeated (exact dense ids, no hashing) and the work
    shrinks fast on natural text. Memory is a few arrays of one entry per word (positions, prefix sums
    and dense ids are int32 where they fit; no Python list of every position): ~30 bytes per word at the
    peak, the keys and their sort order.
    """
    n_words = len(ids)
    top = {n: 0 for n in top_sizes}
    duplicate = {n: 0 for n in duplicate_sizes}
    if n_words < 2:
        return top, duplicate
    ids = np.asarray(ids)  # int32 or int64
    total = int(np.sum(lengths, dtype=np.int64))
    prefix = np.zeros(n_words + 1, dtype=np.int32 if total < 1 << 31 else np.int64)
    np.cumsum(lengths, out=prefix[1:], dtype=prefix.dtype)

    def chars(start: int, n: int) -> int:  # the n-gram at `start`, words joined by one space
        return int(prefix[start + n] - prefix[start]) + n - 1

    index = np.int32 if n_words < 1 << 31 else np.int64
    base = int(ids.max()) + 1  # keys (prefix id, next word) -> prefix id * base + word id, exact in int64
    positions = np.arange(n_words, dtype=index)  # where the (n-1)-gram occurs more than once
    grams = ids  # the (n-1)-gram's dense id at each of `positions`
    for n in range(2, min(max((*top_sizes, *duplicate_sizes)), n_words) + 1):
        if positions.size and positions[-1] > n_words - n:
            inside = positions <= n_words - n
            positions, grams = positions[inside], grams[inside]
        if not positions.size:  # no n-gram repeats: each top n-gram is the first one, once
            top.update({m: chars(0, m) for m in top if n <= m <= n_words})
            break
        # The keys go to _group as a temporary, which drops them once sorted, and the (n-1)-gram ids are
        # dropped before it sorts: neither is an array of a word's size more under the sort's peak.
        keys = [_append_word(grams, base, ids[positions + (n - 1)])]
        grams = None
        inverse, counts, first = _group(keys.pop(), index)
        best = int(counts.max())
        if n in top:
            start = int(positions[first[counts == best].min()]) if best > 1 else 0
            top[n] = chars(start, n) * best
        if best == 1:
            positions = positions[:0]
            continue
        repeated = counts[inverse] > 1
        positions, grams = positions[repeated], inverse[repeated]
        del inverse, repeated
        if n in duplicate and positions.size:
            duplicate[n] = _greedy_duplicate_chars(positions, grams, prefix, n, len(counts))
    return top, duplicate


def _append_word(grams: np.ndarray, base: int, words: np.ndarray) -> np.ndarray:
    """Keys of (n-1)-gram id, next word: gram * base + word, exact in int64."""
    keys = grams * np.int64(base)
    keys += words
    return keys


_BLOCK = 1 << 16  # elements per step of the scans below, so their temporaries stay small


def _group(keys: np.ndarray, index=np.int64) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dense id of each key, count per id, index of each id's first occurrence): `np.unique`'s
    inverse, counts and index, with less overhead for the many small arrays here (and an unstable
    sort, three times faster; the first occurrence is the smallest index of its group). `index`: the
    integer type of the results. Pass `keys` as a temporary: they are dropped once sorted, and the
    scans go in blocks, so the peak is the keys and their sort order, ~16 bytes per key."""
    size = len(keys)
    order = np.argsort(keys, kind="quicksort")
    new = np.empty(size, dtype=bool)
    new[0] = True
    if size <= _BLOCK:
        ordered = keys[order]
        np.not_equal(ordered[1:], ordered[:-1], out=new[1:])
        del keys, ordered
        starts = np.flatnonzero(new)
    else:
        for a in range(1, size, _BLOCK):  # where the sorted keys change, without a sorted copy of them
            b = min(size, a + _BLOCK)
            np.not_equal(keys[order[a:b]], keys[order[a - 1:b - 1]], out=new[a:b])
        del keys
        order = order.astype(index)
        starts = np.concatenate([np.flatnonzero(new[a:a + _BLOCK]).astype(index) + a for a in range(0, size, _BLOCK)])
    counts = np.empty(len(starts), dtype=index)
    counts[:-1] = starts[1:] - starts[:-1]
    counts[-1] = size - starts[-1]
    labels = np.cumsum(new, dtype=index)
    del new
    labels -= 1
    inverse = np.empty(size, dtype=index)
    inverse[order] = labels
    del labels
    return inverse, counts, np.minimum.reduceat(order, starts)


_GREEDY_BLOCK = 1 << 16  # positions converted to Python ints at a time


def _greedy_duplicate_chars(positions: np.ndarray, grams: np.ndarray, prefix: np.ndarray, n: int,
                            n_grams: int) -> int:
    """datatrove's `find_all_duplicate`, visiting only positions whose n-gram occurs twice or more
    (at any other position the scan just steps on, and adding a unique n-gram changes nothing).
    `grams`: dense ids below `n_grams`; `prefix`: cumulative word lengths, so an n-gram's characters
    (words glued) are `prefix[p + n] - prefix[p]`. Walks the positions in blocks, with a byte per
    n-gram for "seen", so its memory does not grow with Python objects per position."""
    seen = bytearray(n_grams)
    chars, resume = 0, 0
    for block in range(0, len(positions), _GREEDY_BLOCK):
        where = positions[block:block + _GREEDY_BLOCK]
        spans = (prefix[where + n] - prefix[where]).tolist()
        for position, gram, span in zip(where.tolist(), grams[block:block + _GREEDY_BLOCK].tolist(), spans):
            if position < resume:
                continue
            if seen[gram]:
                chars += span
                resume = position + n
            else:
                seen[gram] = 1
    return chars


def gopher_repetition_scores(split: SplitText) -> GopherRepetition:
    n_chars = len(split.text)

    def share(chars: int) -> float:
        return chars / n_chars if n_chars else 0.0

    # Counted before the n-grams, and dropped: a long text's paragraph and line copies are not kept under
    # the n-gram step's peak.
    paragraphs = split.paragraphs
    n_paragraphs, (dup_paragraphs, dup_paragraph_chars) = len(paragraphs), find_duplicates(paragraphs)
    del paragraphs
    lines = split.newline_lines
    n_lines, (dup_lines, dup_line_chars) = len(lines), find_duplicates(lines)
    del lines
    top, duplicate = ngram_repetition(split.word_ids, split.word_lengths)
    return GopherRepetition(
        duplicate_paragraphs_ratio=dup_paragraphs / n_paragraphs if n_paragraphs else 0.0,
        duplicate_paragraph_chars_ratio=share(dup_paragraph_chars),
        duplicate_lines_ratio=dup_lines / n_lines if n_lines else 0.0,
        duplicate_line_chars_ratio=share(dup_line_chars),
        top_2gram_chars_ratio=share(top[2]),
        top_3gram_chars_ratio=share(top[3]),
        top_4gram_chars_ratio=share(top[4]),
        duplicate_5gram_chars_ratio=share(duplicate[5]),
        duplicate_6gram_chars_ratio=share(duplicate[6]),
        duplicate_7gram_chars_ratio=share(duplicate[7]),
        duplicate_8gram_chars_ratio=share(duplicate[8]),
        duplicate_9gram_chars_ratio=share(duplicate[9]),
        duplicate_10gram_chars_ratio=share(duplicate[10]),
    )
