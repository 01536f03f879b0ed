"""One split of a document's text, shared by every rule.

Rules never re-split: a stage builds one `SplitText` per document per batch and hands the same object
to every scorer (datatrove re-tokenizes in each filter, which is most of its filter time). Parts are
computed lazily and cached, so a rule set that needs no sentences never pays for them.
"""

from __future__ import annotations

import re
from functools import cached_property

# Words: runs of word characters joined by inner apostrophes or hyphens, or runs of punctuation, as
# an English word tokenizer separates them ("don't" stays one word, "end." is "end" + ".").
_WORD = re.compile(r"\w+(?:['’\-]\w+)*|[^\w\s]+")
_SENTENCE_END = re.compile(r"(?<=[.!?。！？])\s+")
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")


class SplitText:
    """Lazily computed words, lines, paragraphs and sentences of one text."""

    __slots__ = ("text", "__dict__")

    def __init__(self, text: str):
        self.text = text or ""

    @cached_property
    def words(self) -> list[str]:
        return _WORD.findall(self.text)

    @cached_property
    def lines(self) -> list[str]:
        return self.text.splitlines()

    @cached_property
    def paragraphs(self) -> list[str]:
        return [p for p in _PARAGRAPH_BREAK.split(self.text) if p.strip()]

    @cached_property
    def sentences(self) -> list[str]:
        return [s for s in _SENTENCE_END.split(self.text) if s.strip()]


def split_batch(texts) -> list[SplitText]:
    return [SplitText(t) for t in texts]
