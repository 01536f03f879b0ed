"""C4 rules (Raffel et al. 2020, section 2.2), as datatrove's C4QualityFilter defines them, and C4's
bad-word list check (C4BadWordsFilter) with a word list read from a path the caller gives.

C4 works line by line (`str.splitlines()`, each line stripped). A line is removed when it has a word
(whitespace-separated) over `max_word_length` characters, fewer than `min_words_per_line` words,
mentions "javascript", or a cookie / terms-of-use phrase; Wikipedia-style citations ("[1]", "[edit]",
"[citation needed]") are cut out of the lines kept. A whole document fails on a kept-so-far line
with "lorem ipsum" or a curly bracket, or when the kept lines hold fewer than `min_sentences`
sentences (spaCy's sentencizer, per line, as datatrove counts). Terminal punctuation per line is
not required (FineWeb's setting `filter_no_terminal_punct=False`; FineWeb's own rules look at it).

`c4_lines(split, rules)` returns the scores and the kept lines (the text datatrove hands on to the
next filter), cached on the split so FineWeb's rules read the same view.

One difference by design: datatrove drops a document at the first line with "lorem ipsum" or a
curly bracket, so its reason depends on which comes first; we count both, and the decide step names
lorem ipsum first when a document has both.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gristmill.filters import english
from gristmill.filters.pieces import lower
from gristmill.filters.textsplit import SplitText

CITATION = re.compile(r"\[\d*]|\[edit]|\[citation needed]")
POLICY_PHRASES = ("terms of use", "privacy policy", "cookie policy", "uses cookies", "use of cookies", "use cookies")
_POLICY = re.compile("|".join(map(re.escape, POLICY_PHRASES)))
_IRREGULAR_SPACE = re.compile(r"[^\S ]| {2}")  # whitespace other than one space between chunks


@dataclass(frozen=True)
class C4LineRules:
    """How C4 cleans lines (datatrove's C4QualityFilter defaults). These shape the scores: changing
    them needs a re-score, unlike the decide thresholds."""

    min_words_per_line: int | None = 3
    max_word_length: int | None = 1000
    remove_citations: bool = True
    drop_javascript_lines: bool = True
    drop_policy_lines: bool = True


@dataclass(frozen=True)
class C4Lines:
    lorem_ipsum_line_count: int  # lines (that pass the word rules) containing "lorem ipsum"
    curly_bracket_line_count: int  # lines (not dropped for javascript) containing "{"
    sentence_count: int  # sentences in the kept lines
    kept: tuple[str, ...]  # the kept lines, citations cut out, in order
    kept_word_count: int  # words (datatrove's English words) of the kept lines
    # lines removed, by rule: long_word, too_few_words, javascript, policy (empty lines count as too_few_words);
    # citations_cut: kept lines a citation was cut from
    removed: tuple[tuple[str, int], ...] = ()


def c4_lines(split: SplitText, rules: C4LineRules = C4LineRules()) -> C4Lines:
    return split.derived(("c4", rules), lambda s: _c4_lines(s, rules))


def _line_shape(line: str, max_length: int | None) -> tuple[int, bool, bool]:
    """(chunks, whether one is longer than `max_length`, whether single spaces join them into the line)
    of a stripped line; a long line is split in bounded pieces rather than into one list of all its
    chunks (and for a stripped line, `" ".join(line.split()) == line` is "no whitespace but single
    spaces", which a regex finds without the chunks)."""
    if len(line) <= english.PIECE_CHARS:
        chunks = line.split()
        return (len(chunks), max_length is not None and len(line) > max_length and max(map(len, chunks)) > max_length,
                len(chunks) < 2 or " ".join(chunks) == line)
    count = longest = 0
    for piece in english.chunk_pieces(line):
        count += len(piece)
        longest = max(longest, max(map(len, piece)))
    return count, max_length is not None and longest > max_length, count < 2 or _IRREGULAR_SPACE.search(line) is None


def _c4_lines(split: SplitText, rules: C4LineRules) -> C4Lines:
    tokenizer = split.tokenizer
    max_length = rules.max_word_length
    stripped = [line.strip() for line in split.lines]  # the line itself where nothing is stripped
    # Each line's chunks are counted and dropped: a list of every line's chunks would be ~10 bytes per
    # byte of text, for a document near max_page_bytes some 50 MB.
    shapes = [_line_shape(line, max_length) for line in stripped]
    chunks_per_line = np.fromiter((n for n, _, _ in shapes), dtype=np.int64, count=len(shapes))
    # Words and sentences of every line at once from the document's chunks (the lines' chunks, in
    # order), unless some neighbouring chunks need spaCy's context: then line by line.
    fast = not split.needs_context and int(chunks_per_line.sum()) == len(split.chunk_ids)
    if fast:
        line_words, line_sentences = tokenizer.line_facts(split.chunk_ids, chunks_per_line)
        line_words, line_sentences = line_words.tolist(), line_sentences.tolist()
    min_words = rules.min_words_per_line if rules.min_words_per_line is not None else -1
    lorem = curly = sentences = words = 0
    long_word = too_few = javascript = policy = citations = 0
    kept: list[str] = []
    for i, (line, (n_chunks, has_long_word, single_spaced)) in enumerate(zip(stripped, shapes)):
        if has_long_word:
            long_word += 1
            continue
        cited = False
        if rules.remove_citations and "[" in line:
            cleaned = CITATION.sub("", line)
            if cleaned != line:
                line, cited = cleaned, True
        if n_chunks < min_words:  # datatrove counts the words before the citations are cut
            too_few += 1
            continue
        lower = line.lower()
        if "lorem ipsum" in lower:
            lorem += 1
        if rules.drop_javascript_lines and "javascript" in lower:
            javascript += 1
            continue
        if "{" in line:
            curly += 1
        if rules.drop_policy_lines and _POLICY.search(lower):
            policy += 1
            continue
        citations += cited
        if fast and not cited and single_spaced:
            n_words, n_sentences = line_words[i], line_sentences[i]
        else:
            # Cutting a citation makes new neighbours; other whitespace than one space makes tokens.
            n_words, n_sentences = tokenizer.line_counts(line, check_context=cited or not fast)
        sentences += n_sentences
        words += n_words
        kept.append(line)
    removed = (("long_word", long_word), ("too_few_words", too_few), ("javascript", javascript), ("policy", policy),
               ("citations_cut", citations))
    return C4Lines(lorem, curly, sentences, tuple(kept), words, removed)


def c4_clean_text(lines: C4Lines) -> str:
    """The document as C4 would pass it on: the kept lines, joined by newlines."""
    return "\n".join(lines.kept)


class BadWords:
    """C4's bad-word check: a word from the list, flanked by non-word characters, in the lowercased
    text (as C4BadWordsFilter matches for space-separated languages). The list is one word or phrase
    per line, read from the path given; the project ships none."""

    def __init__(self, words):
        words = sorted({w.strip().lower() for w in words if w.strip()}, key=lambda w: (-len(w), w))
        self._pattern = re.compile(r"(?<!\w)(?:%s)(?!\w)" % "|".join(map(re.escape, words))) if words else None

    @classmethod
    def from_file(cls, path: str | Path) -> BadWords:
        return cls(Path(path).read_text(encoding="utf-8").splitlines())

    def count(self, text: str) -> int:
        """Bad-word occurrences in `text` (non-overlapping)."""
        if self._pattern is None:
            return 0
        return sum(1 for _ in self._pattern.finditer(lower(text)))
