"""Cutting a long text into bounded pieces at separators, so a scorer never builds a list of all its words."""

from __future__ import annotations

import re
from collections.abc import Iterator


def text_pieces(text: str, piece_chars: int, cut: re.Pattern) -> Iterator[str]:
    """Consecutive slices of `text` that together are `text`: each ends at the first match of `cut` at or
    after `piece_chars` characters from its start (the last piece: the rest of the text)."""
    start, size = 0, len(text)
    while start < size:
        end = start + piece_chars
        if end < size:
            found = cut.search(text, end)
            end = found.start() if found is not None else size
        yield text[start:end]
        start = end


# `lower` lowercases a text longer than this a piece at a time.
LOWER_PIECE_CHARS = 1 << 16
_LOWER_CUT = re.compile(r"[ \n]")


def lower(text: str, piece_chars: int = LOWER_PIECE_CHARS) -> str:
    """`text.lower()`, a piece at a time for a long text: CPython's `str.lower` works in a scratch buffer of
    12 bytes a character (room for full case mappings, up to three characters of four bytes each), ~57 MB
    at once for a page near max_page_bytes. Pieces are cut at a space or newline, so the result is the
    same: the only context lowercasing reads, a capital sigma's (final or not), never reaches across a
    space or newline (neither is cased nor case-ignorable)."""
    if len(text) <= piece_chars:
        return text.lower()
    return "".join([piece.lower() for piece in text_pieces(text, piece_chars, _LOWER_CUT)])
