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
