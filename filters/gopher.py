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
from typing import Iterator

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
    ids = split.word_ids
    n_words = len(ids)
    n_content, content_chars, n_alpha = _word_fact_sums(ids, split.tokenizer)
    vocab = split.tokenizer.vocab
    stop_ids = [vocab[w] for w in STOP_WORDS if w in vocab]
    return GopherQuality(
        word_count=n_content,
        mean_word_length=float(content_chars) / n_content if n_content else 0.0,
        hash_word_ratio=text.count("#") / n_words if n_words else 0.0,
        ellipsis_word_ratio=(text.count("...") + text.count("…")) / n_words if n_words else 0.0,
        bullet_lines_ratio=_share(lines, lambda line: line.lstrip().startswith(BULLETS))
        if any(b in text for b in BULLETS) else 0.0,
        ellipsis_lines_ratio=_share(lines, lambda line: line.rstrip().endswith(ELLIPSES))
        if any(e in text for e in ELLIPSES) else 0.0,
        alpha_words_ratio=n_alpha / n_words if n_words else 0.0,
        stop_word_count=_distinct_present(stop_ids, ids),
    )


def _word_fact_sums(ids: np.ndarray, tokenizer, block: int = 1 << 16) -> tuple[int, int, int]:
    """(content words, their characters, words with a letter), from the tokenizer's per-token facts a
    block of words at a time (the split keeps no per-word copy of the facts)."""
    length, content, alpha = tokenizer.length, tokenizer.content, tokenizer.alpha
    n_content = chars = n_alpha = 0
    for a in range(0, len(ids), block):
        words = ids[a:a + block]
        is_content = content[words]
        n_content += int(is_content.sum())
        chars += int(length[words].sum(where=is_content))
        n_alpha += int(alpha[words].sum())
    return n_content, chars, n_alpha


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


def ngram_repetition(ids: np.ndarray, lengths: np.ndarray | None, top_sizes=TOP_NGRAM_SIZES,
                     duplicate_sizes=DUPLICATE_NGRAM_SIZES, token_lengths: np.ndarray | None = None,
                     ) -> tuple[dict[int, int], dict[int, int]]:
    """Characters of the top n-gram times its count (per n in `top_sizes`) and characters of duplicate
    n-grams (per n in `duplicate_sizes`), for the word sequence `ids` with character `lengths` (one per
    word; or None and `token_lengths`, one per id: word i has `token_lengths[ids[i]]` characters).

    Level by level: an n-gram can repeat only where its (n-1)-gram prefix repeats, so each level
    relabels only the positions whose prefix repeated (exact ids, no hashing) and the work shrinks fast
    on natural text. Memory is a few arrays of one entry per word (int32 where they fit; no Python list
    of every position). A level of more than `_PARTITION_SIZE` positions (a document near
    max_page_bytes: ~950,000 words) keeps one id per word rather than a list of positions and their ids,
    and is grouped a partition at a time (`_group_full`); its word lengths are looked up where needed
    rather than summed into an array of prefix sums: its peak is ~7 bytes per word instead of ~30.
    """
    n_words = len(ids)
    top = {n: 0 for n in top_sizes}
    duplicate = {n: 0 for n in duplicate_sizes}
    if n_words < 2:
        return top, duplicate
    ids = np.asarray(ids)  # int32 or int64
    if n_words > _PARTITION_SIZE:
        spans = _LookedUpSpans(ids, lengths, token_lengths)
    else:
        spans = _PrefixSpans(lengths if lengths is not None else token_lengths[ids])

    def chars(start: int, n: int) -> int:  # the n-gram at `start`, words joined by one space
        return spans.one(start, n) + n - 1

    index = np.int32 if n_words < 1 << 31 else np.int64
    base = int(ids.max()) + 1  # keys (prefix id, next word) -> prefix id * base + word id, exact in int64
    # Where the (n-1)-gram occurs more than once, ascending, and its id there. While more than
    # _PARTITION_SIZE positions are left (a long text), in full form instead: `full[p]` is the id at every
    # position p, -1 where the (n-1)-gram occurs once (no positions listed: 4 bytes a word, not 8).
    if n_words <= _PARTITION_SIZE:
        positions, full, left = np.arange(n_words, dtype=index), None, 0
    else:
        positions, full, left = None, ids, n_words
    grams, owned = ids, False  # the (n-1)-gram's id at each of `positions`; whether `grams` is ours to overwrite
    for n in range(2, min(max((*top_sizes, *duplicate_sizes)), n_words) + 1):
        if full is not None:
            best, start, full, left = _group_full(full[:n_words - n + 1], ids, n, base, index, left, owned)
            if n in top:
                top[n] = chars(start if best > 1 else 0, n) * best
            owned = True
            if left <= _PARTITION_SIZE:  # few enough: listed from here on
                positions = _flatnonzero(full >= 0, index)
                grams, full = full[positions], None
            if best > 1 and n in duplicate and left:
                duplicate[n] = _greedy_duplicate_chars(
                    _listed(positions, grams) if full is None else _full_blocks(full), spans, n, n_words)
            continue
        if positions.size and positions[-1] > n_words - n:  # ascending: the ones inside are a prefix
            inside = int(np.searchsorted(positions, n_words - n, side="right"))
            positions, grams = positions[:inside], grams[:inside]
        if not positions.size:  # no n-gram repeats: each top n-gram is the first one, once
            top.update({m: chars(0, m) for m in top if n <= m <= n_words})
            break
        # The keys go to _group as a temporary, which drops them once sorted, and the (n-1)-gram ids
        # are dropped before it sorts: neither is an array of a word's size more under the sort's peak.
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
            duplicate[n] = _greedy_duplicate_chars(_listed(positions, grams), spans, n, len(counts))
    return top, duplicate


class _PrefixSpans:
    """Characters of word runs (words glued) from prefix sums of the word lengths."""

    def __init__(self, lengths: np.ndarray):
        total = int(np.sum(lengths, dtype=np.int64))
        self.prefix = np.zeros(len(lengths) + 1, dtype=np.int32 if total < 1 << 31 else np.int64)
        np.cumsum(lengths, out=self.prefix[1:], dtype=self.prefix.dtype)

    def one(self, start: int, n: int) -> int:
        return int(self.prefix[start + n] - self.prefix[start])

    def many(self, starts: np.ndarray, n: int) -> np.ndarray:
        return self.prefix[starts + n] - self.prefix[starts]


class _LookedUpSpans:
    """Characters of word runs (words glued), each word's length looked up: no array of a word's size."""

    def __init__(self, ids: np.ndarray, lengths: np.ndarray | None, token_lengths: np.ndarray | None):
        self.ids, self.lengths, self.token_lengths = ids, lengths, token_lengths

    def _lengths(self, where: np.ndarray) -> np.ndarray:
        if self.lengths is not None:
            return self.lengths[where].astype(np.int64)
        return self.token_lengths[self.ids[where]].astype(np.int64)

    def one(self, start: int, n: int) -> int:
        return int(self._lengths(np.arange(start, start + n)).sum())

    def many(self, starts: np.ndarray, n: int) -> np.ndarray:
        out = self._lengths(starts)
        for k in range(1, n):
            out += self._lengths(starts + k)
        return out


def _group_full(grams: np.ndarray, ids: np.ndarray, n: int, base: int, index, left: int,
                owned: bool) -> tuple[int, int, np.ndarray, int]:
    """One level of `ngram_repetition` in full form, a partition at a time: `grams[p]` is the (n-1)-gram's
    id at position p (-1: it occurs once, and so does the n-gram), `left` of them not -1. Positions are
    grouped within partitions by their n-gram's key modulo P, each of about `_PARTITION_SIZE` positions
    and sorted on its own: equal n-grams have equal keys, so a group never spans two partitions. An
    n-gram's id is the position of its first occurrence: the same in every partition, distinct for
    distinct n-grams, below the number of words, so the greedy scan sees the same groups as with dense
    ids. `owned`: the new ids may overwrite `grams` (each position is read before it is written).

    Returns (the top count, the first position of an n-gram with that count, the n-gram's id at each
    position in full form, how many are not -1)."""
    size = len(grams)
    parts = -(-left // _PARTITION_SIZE)
    part = np.empty(size, np.uint8 if parts < 1 << 8 else np.uint16 if parts < 1 << 16 else np.int64)
    for a in range(0, size, _BLOCK):  # by the n-gram's key modulo P (balanced: a frequent word's bigrams
        block = grams[a:a + _BLOCK]    # spread over all partitions); partition `parts` is "occurs once"
        keys = _append_word(block, base, ids[a + n - 1:a + n - 1 + len(block)])
        part[a:a + _BLOCK] = np.where(block >= 0, keys % parts, parts)
    labels = grams if owned else np.empty(size, index)
    best, start, left = 0, 0, 0
    for p in range(parts):
        where = np.flatnonzero(part == p)
        if not where.size:
            continue
        keys = [_append_word(grams[where], base, ids[where + (n - 1)])]
        inverse, counts, first = _group(keys.pop(), index)
        first = where[first]  # each group's first position (`where` ascends)
        part_best = int(counts.max())
        part_start = int(first[counts == part_best].min())
        if part_best > best or part_best == best and part_start < start:
            best, start = part_best, part_start
        repeated = counts > 1
        left += int(counts[repeated].sum())
        labels[where] = np.where(repeated, first, -1)[inverse]
        del where, inverse, counts, first, repeated
    if not owned:  # positions that were -1 before stay -1 (at level 2 there are none)
        labels[part == parts] = -1
    return best, start, labels, left


def _listed(positions: np.ndarray, grams: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    for a in range(0, len(positions), _GREEDY_BLOCK):
        yield positions[a:a + _GREEDY_BLOCK], grams[a:a + _GREEDY_BLOCK]


def _full_blocks(full: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    for a in range(0, len(full), _GREEDY_BLOCK):
        block = full[a:a + _GREEDY_BLOCK]
        where = np.flatnonzero(block >= 0)
        yield where + a, block[where]


def _flatnonzero(mask: np.ndarray, index) -> np.ndarray:
    """`np.flatnonzero(mask)` as `index` integers, a block at a time (no int64 array of its size)."""
    out = np.empty(int(np.count_nonzero(mask)), index)
    filled = 0
    for a in range(0, len(mask), _BLOCK):
        found = np.flatnonzero(mask[a:a + _BLOCK])
        out[filled:filled + len(found)] = found
        out[filled:filled + len(found)] += a
        filled += len(found)
    return out


def _append_word(grams: np.ndarray, base: int, words: np.ndarray) -> np.ndarray:
    """Keys of (n-1)-gram id, next word: gram * base + word, exact in int64."""
    keys = grams * np.int64(base)
    keys += words
    return keys


_BLOCK = 1 << 16  # elements per step of the scans below, so their temporaries stay small
# Positions of one n-gram level grouped at a time (`_group_full`); a document with more words has its
# word lengths looked up rather than kept as prefix sums (`_LookedUpSpans`).
_PARTITION_SIZE = 1 << 16


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


_GREEDY_BLOCK = 1 << 12  # positions converted to Python ints at a time (~40 bytes each, three lists)


def _greedy_duplicate_chars(blocks, spans, n: int, n_grams: int) -> int:
    """datatrove's `find_all_duplicate`, visiting only positions whose n-gram occurs twice or more
    (at any other position the scan just steps on, and adding a unique n-gram changes nothing).
    `blocks`: (positions, their n-gram ids below `n_grams`) in order, `_GREEDY_BLOCK` at a time;
    `spans.many(p, n)`: the characters of the n-grams at p (words glued). A byte per n-gram id for
    "seen", so its memory does not grow with Python objects per position."""
    seen = bytearray(n_grams)
    chars, resume = 0, 0
    for where, grams in blocks:
        for position, gram, span in zip(where.tolist(), grams.tolist(), spans.many(where, n).tolist()):
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
    top, duplicate = ngram_repetition(split.word_ids, None, token_lengths=split.tokenizer.length)
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
