"""Cutting a long text into bounded pieces at separators, so a scorer never builds a list of all its words;
reading a long text from its UTF-8 bytes a piece at a time, so it never needs the text as one str; and
lowercasing a long text a piece at a time."""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache

import numpy as np
import pyarrow as pa


class Utf8Text:
    """A text as UTF-8 bytes (an Arrow string value's buffer, not copied), for scorers that read it a piece at
    a time: a page near max_page_bytes is ~4.7 MB of UTF-8 but 9.5 MB as a str beyond Latin-1, and decoding
    it holds a 1-byte copy besides (14 MiB at the peak)."""

    def __init__(self, data):
        self.data = memoryview(data).cast("B")

    @classmethod
    def of_values(cls, texts: pa.Array | pa.ChunkedArray) -> Iterator["Utf8Text | None"]:
        """Each value of a string or large_string array (None where null) as a slice of the array's own data
        buffer: no copy (`Scalar.as_buffer` copies)."""
        if not (pa.types.is_string(texts.type) or pa.types.is_large_string(texts.type)):
            raise TypeError(f"Utf8Text reads string and large_string arrays, not {texts.type}")
        for chunk in texts.chunks if isinstance(texts, pa.ChunkedArray) else [texts]:
            if len(chunk) == 0:
                continue
            _, offsets_buffer, data = chunk.buffers()
            offsets_type = np.int64 if pa.types.is_large_string(chunk.type) else np.int32
            offsets = np.frombuffer(offsets_buffer, offsets_type, len(chunk) + 1,
                                    chunk.offset * np.dtype(offsets_type).itemsize).tolist()
            view = memoryview(data if data is not None else b"")
            valid = chunk.is_valid().to_pylist() if chunk.null_count else [True] * len(chunk)
            for k, present in enumerate(valid):
                yield cls(view[offsets[k]:offsets[k + 1]]) if present else None

    @classmethod
    def of(cls, text: str) -> "Utf8Text":
        return cls(text.encode("utf-8"))

    def __len__(self) -> int:
        """Bytes, not characters."""
        return self.data.nbytes

    def __str__(self) -> str:
        return str(self.data, "utf-8")


def text_pieces(text: str | Utf8Text, piece_chars: int, cut: re.Pattern) -> Iterator[str]:
    """Consecutive slices of `text` that together are `text`: each ends at the first match of `cut` at or
    after `piece_chars` characters from its start (the last piece: the rest of the text). A `Utf8Text` is
    measured in bytes and decoded a piece at a time; `cut` must then match ASCII characters only, which
    never lie inside a multi-byte character, so each piece is whole characters and the same str."""
    if isinstance(text, Utf8Text):
        yield from _utf8_pieces(text.data, piece_chars, _bytes_pattern(cut))
        return
    start, size = 0, len(text)
    while start < size:
        end = start + piece_chars
        if end < size:
            found = cut.search(text, end)
            end = found.start() if found is not None else size
        yield text[start:end]
        start = end


def _utf8_pieces(data: memoryview, piece_bytes: int, cut: re.Pattern) -> Iterator[str]:
    start, size = 0, data.nbytes
    while start < size:
        end = start + piece_bytes
        if end < size:
            found = cut.search(data, end)
            end = found.start() if found is not None else size
        yield str(data[start:end], "utf-8")
        start = end


@lru_cache(maxsize=None)
def _bytes_pattern(cut: re.Pattern) -> re.Pattern:
    if not cut.pattern.isascii():
        raise ValueError(f"a UTF-8 text is cut at ASCII characters only, not {cut.pattern!r}")
    return re.compile(cut.pattern.encode("ascii"), cut.flags & ~re.UNICODE)


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
