"""Evidence spans: which parts of a document a drop reason points at, for reports and `gristmill inspect`.

`evidence_spans(reason, text)` → sorted, non-overlapping `(start, end, label)` character spans. These are
approximations for a human reader (lines that end in an ellipsis, bullet lines, repeated lines, the
most frequent word n-gram, '{' lines, 'lorem ipsum', ...), not the scores themselves: the decision was
made from the score columns. A reason without a textual cue (too_few_words, language) gets no span.
Placeholders a PII redaction stage left (`|||EMAIL_ADDRESS|||`) are marked for every reason.

`redact(text)` masks e-mail addresses, phone numbers and IP addresses (a report may be shared;
redaction stages, when they ran, already replaced PII in the stored text).
"""

from __future__ import annotations

import re
from collections import Counter

_LINE = re.compile(r"[^\n]+")
_WORD = re.compile(r"\w+", re.UNICODE)
_PLACEHOLDER = re.compile(r"\|\|\|[A-Z_]+\|\|\|")
PII_PATTERNS = {
    "EMAIL_ADDRESS": re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"),
    "IP_ADDRESS": re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}\b"),
    "PHONE_NUMBER": re.compile(r"(?<![\w])\+?\d[\d ().-]{7,}\d(?![\w])"),
}


def _lines(text: str, test, label: str) -> list[tuple[int, int, str]]:
    return [(m.start(), m.end(), label) for m in _LINE.finditer(text) if test(m.group(0))]


def _repeated_lines(text: str, label: str) -> list[tuple[int, int, str]]:
    seen: set[str] = set()
    out = []
    for m in _LINE.finditer(text):
        line = m.group(0).strip()
        if line and line in seen:
            out.append((m.start(), m.end(), label))
        seen.add(line)
    return out


def _top_ngram(text: str, n: int, label: str) -> list[tuple[int, int, str]]:
    words = [(m.start(), m.end(), m.group(0).lower()) for m in _WORD.finditer(text)]
    grams = [tuple(w[2] for w in words[i:i + n]) for i in range(len(words) - n + 1)]
    if not grams:
        return []
    top, count = Counter(grams).most_common(1)[0]
    if count < 2:
        return []
    return [(words[i][0], words[i + n - 1][1], label) for i, g in enumerate(grams) if g == top]


def _pattern(text: str, pattern: str, label: str, flags=0) -> list[tuple[int, int, str]]:
    return [(m.start(), m.end(), label) for m in re.finditer(pattern, text, flags)]


def evidence_spans(reason: str | None, text: str | None) -> list[tuple[int, int, str]]:
    if not text:
        return []
    reason = reason or ""
    spans: list[tuple[int, int, str]]
    if reason == "too_many_ellipsis_lines":
        spans = _lines(text, lambda line: line.rstrip().endswith(("...", "…")), "ends with an ellipsis")
    elif reason == "too_many_bullet_lines":
        spans = _lines(text, lambda line: line.lstrip().startswith(("•", "-")), "bullet line")
    elif reason in ("too_many_ellipses",):
        spans = _pattern(text, r"\.\.\.|…", "ellipsis")
    elif reason == "too_many_hashes":
        spans = _pattern(text, r"#", "hash")
    elif reason == "contains_curly_bracket":
        spans = _lines(text, lambda line: "{" in line, "line with '{'")
    elif reason == "contains_lorem_ipsum":
        spans = _pattern(text, r"lorem ipsum", "lorem ipsum", re.IGNORECASE)
    elif reason in ("too_many_duplicate_lines", "too_many_duplicate_line_chars", "too_much_duplicate_line_text",
                    "too_many_duplicate_paragraphs", "too_many_duplicate_paragraph_chars"):
        spans = _repeated_lines(text, "repeats an earlier line")
    elif reason.startswith("top_") and reason.endswith("gram_too_frequent"):
        n = int(reason[len("top_"):-len("gram_too_frequent")])
        spans = _top_ngram(text, n, f"most frequent {n}-gram")
    elif reason.startswith("too_many_duplicate_") and reason.endswith("grams"):
        spans = _repeated_lines(text, "repeats an earlier line")
    elif reason == "too_many_short_lines":
        spans = _lines(text, lambda line: len(line.strip()) <= 30, "short line")
    elif reason == "too_few_punctuated_lines":
        spans = _lines(text, lambda line: not line.rstrip().endswith((".", "!", "?", '"', "'")), "no terminal punctuation")
    else:
        spans = []
    # Placeholders a PII redaction stage left (|||EMAIL_ADDRESS|||): shown, marked, never the value.
    spans += [(m.start(), m.end(), "redacted PII") for m in _PLACEHOLDER.finditer(text)]
    out, end = [], -1
    for span in sorted(spans):
        if span[0] >= end:
            out.append(span)
            end = span[1]
    return out


def redact(text: str) -> tuple[str, Counter]:
    """`text` with PII-looking substrings replaced by `<TYPE>`, and how many of each type were masked."""
    counts: Counter = Counter()
    for kind, pattern in PII_PATTERNS.items():
        text, n = pattern.subn(f"<{kind}>", text)
        counts[kind] += n
    return text, +counts
