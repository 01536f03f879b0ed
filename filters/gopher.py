"""Gopher quality scores (Rae et al. 2021, "Scaling Language Models", appendix A), as datatrove's
GopherQualityFilter defines them.

`gopher_quality_scores` returns the numbers; thresholds live in the job and are applied by the decide
step. An empty document scores 0 words and 0.0 ratios (no division by zero).
"""

from __future__ import annotations

from dataclasses import dataclass

from gristmill.filters.textsplit import SplitText

# datatrove.utils.text.PUNCTUATION: a word made only of these is a symbol, not a word.
PUNCTUATION = set(
    "!/—”:％１〈&(、━\\【#%「」，】；+^]~“《„';’{|∶´[=-`*．（–？！：$～«〉,><》)?）。…@_.\"}►»"
    + "".join(chr(x) for a, b in ((0, 9), (11, 13), (13, 32), (127, 160)) for x in range(a, b))
)
STOP_WORDS = frozenset(["the", "be", "to", "of", "and", "that", "have", "with"])
BULLETS = ("•", "-")
ELLIPSES = ("...", "…")


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


def gopher_quality_scores(split: SplitText) -> GopherQuality:
    text, words, lines = split.text, split.words, split.lines
    content_words = [w for w in words if any(ch not in PUNCTUATION for ch in w)]
    n_words = len(words)
    n_lines = len(lines)
    return GopherQuality(
        word_count=len(content_words),
        mean_word_length=sum(map(len, content_words)) / len(content_words) if content_words else 0.0,
        hash_word_ratio=text.count("#") / n_words if n_words else 0.0,
        ellipsis_word_ratio=(text.count("...") + text.count("…")) / n_words if n_words else 0.0,
        bullet_lines_ratio=sum(line.lstrip().startswith(BULLETS) for line in lines) / n_lines if n_lines else 0.0,
        ellipsis_lines_ratio=sum(line.rstrip().endswith(ELLIPSES) for line in lines) / n_lines if n_lines else 0.0,
        alpha_words_ratio=sum(any(c.isalpha() for c in w) for w in words) / n_words if n_words else 0.0,
        stop_word_count=len(STOP_WORDS.intersection(words)),
    )
