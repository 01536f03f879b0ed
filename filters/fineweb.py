"""FineWeb's own quality rules (Penedo et al. 2024), as datatrove's FineWebQualityFilter defines them.

In FineWeb's pipeline these run after C4's line cleanup, on the text C4 hands on: the kept lines
joined by newlines. So they score `filters.c4.c4_lines(...).kept`, not the raw text. Lines here are
the non-blank lines of that text split on "\\n".

- line_punct_ratio: share of lines ending in terminal punctuation (datatrove's TERMINAL_PUNCTUATION);
- short_line_ratio: share of lines of at most `short_line_chars` characters;
- char_dup_ratio: characters of lines that repeat an earlier line, per non-newline character;
- newline_word_ratio: newlines per word (FineWeb's "list ratio"); can exceed 1.

A text with no line scores 0.0 everywhere, so the punctuation rule drops it (datatrove's "empty").
"""

from __future__ import annotations

from dataclasses import dataclass

from datatrove.utils.text import TERMINAL_PUNCTUATION

from gristmill.filters.c4 import C4Lines
from gristmill.filters.gopher import find_duplicates

TERMINAL = frozenset(TERMINAL_PUNCTUATION)  # single characters


@dataclass(frozen=True)
class FineWebQuality:
    line_punct_ratio: float  # [0, 1]
    short_line_ratio: float  # [0, 1]
    char_dup_ratio: float  # [0, 1]
    newline_word_ratio: float  # [0, inf)


def fineweb_scores(c4: C4Lines, short_line_chars: int = 30) -> FineWebQuality:
    lines, non_newline_chars, n_newlines = _text_lines(c4.kept)
    if not lines:
        return FineWebQuality(0.0, 0.0, 0.0, 0.0)
    n_lines = len(lines)
    return FineWebQuality(
        line_punct_ratio=sum(line[-1] in TERMINAL for line in lines) / n_lines,
        short_line_ratio=sum(len(line) <= short_line_chars for line in lines) / n_lines,
        char_dup_ratio=find_duplicates(lines)[1] / non_newline_chars if non_newline_chars else 0.0,
        newline_word_ratio=n_newlines / c4.kept_word_count if c4.kept_word_count else 0.0,
    )


def _text_lines(kept: tuple[str, ...]) -> tuple[list[str], int, int]:
    """For text = "\n".join(kept).strip(): (its non-blank lines of text.split("\n"), len(text) -
    text.count("\n"), text.count("\n")), without building the text (for a document near max_page_bytes
    a second copy of it, and a third in its lines).

    The kept lines hold no "\n" (they come from `str.splitlines()`), so text.split("\n") is `kept`
    with the whitespace stripped off its ends: the blank lines before the first non-blank one and after
    the last go, with the first one's leading and the last one's trailing whitespace; the "\n" left
    are those joining the first non-blank line to the last."""
    nonblank = [i for i, line in enumerate(kept) if not line.isspace() and line]
    if not nonblank:
        return [], 0, 0
    first, last = nonblank[0], nonblank[-1]
    lines = [kept[i] for i in nonblank]
    lines[0] = lines[0].lstrip()
    lines[-1] = lines[-1].rstrip()
    chars = sum(map(len, kept[first + 1:last])) + len(lines[0]) + (len(lines[-1]) if last != first else 0)
    # (a line stripped at both ends is lines[0] = lines[-1]: counted once)
    return lines, chars, last - first
