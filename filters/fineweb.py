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
    text = "\n".join(c4.kept).strip()
    lines = [line for line in text.split("\n") if line.strip()]
    if not lines:
        return FineWebQuality(0.0, 0.0, 0.0, 0.0)
    n_lines = len(lines)
    non_newline_chars = len(text) - text.count("\n")
    return FineWebQuality(
        line_punct_ratio=sum(line[-1] in TERMINAL for line in lines) / n_lines,
        short_line_ratio=sum(len(line) <= short_line_chars for line in lines) / n_lines,
        char_dup_ratio=find_duplicates(lines)[1] / non_newline_chars if non_newline_chars else 0.0,
        newline_word_ratio=text.count("\n") / c4.kept_word_count if c4.kept_word_count else 0.0,
    )
