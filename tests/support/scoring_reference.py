"""The scoring code as it was before issue 21 bounded its memory (git 557a19f), kept verbatim as the
reference that tests/unit/test_bounded_scoring.py compares the bounded code with, and random texts that
stress it (repetition of every period, all kinds of whitespace and line breaks, citations, spaCy's
context cases)."""

from __future__ import annotations

import random
import re

import numpy as np

from gristmill.filters.c4 import _POLICY, CITATION, C4LineRules, C4Lines
from gristmill.filters.fineweb import TERMINAL, FineWebQuality
from gristmill.filters.gopher import DUPLICATE_NGRAM_SIZES, STOP_WORDS, TOP_NGRAM_SIZES, find_duplicates

# --- filters/english.py ---


def document_words(tokenizer, text: str) -> tuple[np.ndarray, np.ndarray, bool]:
    chunks = text.split()
    chunk_ids = ids = tokenizer.chunk_ids(chunks)
    if not tokenizer.context_matters(ids, chunks):
        return tokenizer.chunk_words(ids), chunk_ids, False
    parts = []
    for line in text.splitlines():
        chunks = line.split()
        ids = tokenizer.chunk_ids(chunks)
        if tokenizer.context_matters(ids, chunks):
            parts.append(np.array([tokenizer.token_id(t) for t in tokenizer.exact_tokens(line)], dtype=np.int64))
        else:
            parts.append(tokenizer.chunk_words(ids))
    return (np.concatenate(parts) if parts else np.zeros(0, np.int64)), chunk_ids, True


def line_facts(tokenizer, chunk_ids: np.ndarray, chunks_per_line: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n_lines = len(chunks_per_line)
    words = np.zeros(n_lines, np.int64)
    sentences = np.ones(n_lines, np.int64)
    filled = chunks_per_line > 0
    if not filled.any():
        return words, sentences
    line_of_chunk = np.repeat(np.arange(n_lines), chunks_per_line)
    starts = (np.cumsum(chunks_per_line) - chunks_per_line)[filled]
    words[filled] = np.add.reduceat(tokenizer._chunk_count.view[chunk_ids], starts)
    first, last = tokenizer._chunk_first_class.view[chunk_ids], tokenizer._chunk_last_class.view[chunk_ids]
    position = np.arange(len(chunk_ids))
    last_nonempty = np.maximum.accumulate(np.where(last > 0, position, -1))
    before = np.empty_like(last_nonempty)
    before[0] = -1
    before[1:] = last_nonempty[:-1]
    same_line = (before >= 0) & (line_of_chunk[np.maximum(before, 0)] == line_of_chunk)
    opens = (first == 1) & same_line & (last[np.maximum(before, 0)] == 2)
    events = opens.astype(np.int64) + tokenizer._chunk_po.view[chunk_ids]
    sentences[filled] += np.add.reduceat(events, starts)
    return words, sentences


# --- filters/c4.py ---


def c4_lines(split, rules: C4LineRules = C4LineRules()) -> C4Lines:
    tokenizer = split.tokenizer
    stripped = [line.strip() for line in split.lines]
    line_chunks = [line.split() for line in stripped]
    chunks_per_line = np.fromiter(map(len, line_chunks), dtype=np.int64, count=len(line_chunks))
    fast = not split.needs_context and int(chunks_per_line.sum()) == len(split.chunk_ids)
    if fast:
        line_words, line_sentences = line_facts(tokenizer, split.chunk_ids, chunks_per_line)
        line_words, line_sentences = line_words.tolist(), line_sentences.tolist()
    min_words = rules.min_words_per_line if rules.min_words_per_line is not None else -1
    max_length = rules.max_word_length
    lorem = curly = sentences = words = 0
    long_word = too_few = javascript = policy = citations = 0
    kept: list[str] = []
    for i, (line, chunks) in enumerate(zip(stripped, line_chunks)):
        if max_length is not None and len(line) > max_length and max(map(len, chunks)) > max_length:
            long_word += 1
            continue
        cited = False
        if rules.remove_citations and "[" in line:
            cleaned = CITATION.sub("", line)
            if cleaned != line:
                line, cited = cleaned, True
        if len(chunks) < min_words:
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
        if fast and not cited and (len(chunks) < 2 or " ".join(chunks) == line):
            n_words, n_sentences = line_words[i], line_sentences[i]
        else:
            n_words, n_sentences = tokenizer.line_counts(line, line.split() if cited else chunks,
                                                         check_context=cited or not fast)
        sentences += n_sentences
        words += n_words
        kept.append(line)
    removed = (("long_word", long_word), ("too_few_words", too_few), ("javascript", javascript), ("policy", policy),
               ("citations_cut", citations))
    return C4Lines(lorem, curly, sentences, tuple(kept), words, removed)


# --- filters/gopher.py ---


def quality_word_facts(split) -> tuple[float, int]:
    """(mean_word_length, stop_word_count) as gopher_quality_scores computed them."""
    ids, lengths, content = split.word_ids, split.word_lengths, split.word_is_content
    n_content = int(content.sum())
    vocab = split.tokenizer.vocab
    stop_ids = [vocab[w] for w in STOP_WORDS if w in vocab]
    return (float(lengths[content].sum()) / n_content if n_content else 0.0,
            len(set(stop_ids).intersection(ids.tolist())) if stop_ids else 0)


def ngram_repetition(ids: np.ndarray, lengths: np.ndarray, top_sizes=TOP_NGRAM_SIZES,
                     duplicate_sizes=DUPLICATE_NGRAM_SIZES) -> tuple[dict[int, int], dict[int, int]]:
    n_words = len(ids)
    top = {n: 0 for n in top_sizes}
    duplicate = {n: 0 for n in duplicate_sizes}
    if n_words < 2:
        return top, duplicate
    ids = np.asarray(ids, dtype=np.int64)
    prefix = np.zeros(n_words + 1, dtype=np.int64)
    np.cumsum(lengths, out=prefix[1:])

    def chars(start: int, n: int) -> int:
        return int(prefix[start + n] - prefix[start]) + n - 1

    base = int(ids.max()) + 1
    positions = np.arange(n_words, dtype=np.int64)
    grams = ids
    for n in range(2, min(max((*top_sizes, *duplicate_sizes)), n_words) + 1):
        if positions.size and positions[-1] > n_words - n:
            inside = positions <= n_words - n
            positions, grams = positions[inside], grams[inside]
        if not positions.size:
            top.update({m: chars(0, m) for m in top if n <= m <= n_words})
            break
        keys = grams * base + ids[positions + n - 1]
        inverse, counts, first = _group(keys)
        best = int(counts.max())
        if n in top:
            start = int(positions[first[counts == best].min()]) if best > 1 else 0
            top[n] = chars(start, n) * best
        if best == 1:
            positions = positions[:0]
            continue
        repeated = counts[inverse] > 1
        positions, grams = positions[repeated], inverse[repeated]
        if n in duplicate and positions.size:
            spans = (prefix[positions + n] - prefix[positions]).tolist()
            duplicate[n] = _greedy_duplicate_chars(positions.tolist(), grams.tolist(), spans, n)
    return top, duplicate


def _group(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    order = np.argsort(keys, kind="quicksort")
    ordered = keys[order]
    new = np.empty(len(ordered), dtype=bool)
    new[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=new[1:])
    starts = np.flatnonzero(new)
    counts = np.empty(len(starts), dtype=np.int64)
    counts[:-1] = starts[1:] - starts[:-1]
    counts[-1] = len(ordered) - starts[-1]
    inverse = np.empty(len(ordered), dtype=np.int64)
    inverse[order] = np.cumsum(new) - 1
    return inverse, counts, np.minimum.reduceat(order, starts)


def _greedy_duplicate_chars(positions: list[int], grams: list[int], spans: list[int], n: int) -> int:
    seen: set[int] = set()
    chars, resume = 0, 0
    for position, gram, span in zip(positions, grams, spans):
        if position < resume:
            continue
        if gram in seen:
            chars += span
            resume = position + n
        else:
            seen.add(gram)
    return chars


# --- filters/fineweb.py (before session 9 stopped building the kept text) ---


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


# --- random texts ---

WORDS = ["the", "mill", "river", "of", "and", "to", "be", "that", "have", "with", "water", "wheel", "grain",
         "don't", "U.S.", "e.g.", "Dr.", "(1998)", "3.5", "x" * 12, "naïve", "Straße", "日本語", "🙂", "#tag",
         "javascript", "lorem", "ipsum", "{", "}", "[1]", "[edit]", "[citation needed]", "''Account", "]]'",
         "''", "'", "...", "…", "-", "•", "!", "?", ".", ",", ":-)", "privacy", "policy", "cookies", "use"]
SPACES = [" ", " ", " ", " ", "  ", "\t", "\xa0", "\u3000", "\x1f", "\u2009"]
BREAKS = ["\n", "\n", "\n\n", "\r\n", "\r", "\u2028", "\x1c", "\x85", "\x0b", "\n \n", "\n\t"]


def random_text(rng: random.Random, max_words: int = 400) -> str:
    """Words from a small vocabulary (so n-grams repeat), runs copied from earlier in the text (periods
    1 to 12: adversarial repetition), every kind of whitespace and line break, spaCy's context cases."""
    vocab = rng.sample(WORDS, rng.randint(2, len(WORDS)))
    words: list[str] = []
    target = rng.randint(0, max_words)
    while len(words) < target:
        roll = rng.random()
        if roll < 0.25 and words:  # repeat a run: period p, r times
            period = rng.randint(1, 12)
            run = words[-period:]
            words += run * rng.randint(1, 6)
        else:
            words.append(rng.choice(vocab))
    parts = [rng.choice(SPACES + ["\t "]) if rng.random() < 0.05 else ""]
    for word in words:
        parts.append(word)
        parts.append(rng.choice(BREAKS) if rng.random() < 0.08 else rng.choice(SPACES) if rng.random() < 0.15 else " ")
    if rng.random() < 0.5:
        parts.pop()
    return "".join(parts)


# --- filters/toxicity.py ---


def blind(blinder, normalized: str) -> str:
    """TermBlinder.__call__ as it was."""
    words = normalized.split(" ")
    by_first = blinder._by_first
    starts = [i for i, w in enumerate(words) if w in by_first]
    if not starts:
        return normalized
    out, cursor = [], 0
    for i in starts:
        if i < cursor:
            continue
        for phrase in by_first[words[i]]:
            if len(phrase) == 1 or tuple(words[i:i + len(phrase)]) == phrase:
                out += words[cursor:i]
                cursor = i + len(phrase)
                break
    out += words[cursor:]
    return " ".join(out)


def blinding_texts(rng: random.Random, terms: list[str], count: int) -> list[str]:
    """Space-separated words with identity terms (single and multi-word, plurals, prefixes of terms) among
    them; some with empty words (double, leading and trailing spaces), which `split(" ")` keeps."""
    phrases = [t.split() for t in terms]
    out = ["", " ", "  ", "a", *terms[:20]]
    for _ in range(count):
        words: list[str] = []
        for _ in range(rng.randint(0, 60)):
            roll = rng.random()
            if roll < 0.3:
                words += rng.choice(phrases)
            elif roll < 0.4:
                phrase = rng.choice(phrases)
                words += phrase[:max(1, len(phrase) - 1)] + [phrase[-1] + "s"] if rng.random() < 0.5 else phrase[:-1]
            elif roll < 0.45:
                words.append("")
            else:
                words.append(rng.choice(["the", "people", "are", "x", "black", "women", "old", "man", "and"]))
        out.append(" ".join(words))
    return out


def normalize(text: str) -> str:
    """filters.toxicity.normalize as it was."""
    import html

    from gristmill.filters.toxicity import _HASHTAG, _MENTION, _NOT_WORD, _RT, _URL

    text = text or ""
    if "&" in text:
        text = html.unescape(html.unescape(text))
    lowered = text.lower()
    if "://" in text or "www." in lowered:
        text = _URL.sub(" ", text)
    if "@" in text or "\uff20" in text:
        text = _MENTION.sub(" ", text)
    if "rt" in lowered:
        text = _RT.sub(" ", text)
    if "#" in text:
        text = _HASHTAG.sub(r"\1", text)
    text = _NOT_WORD.sub(" ", text.lower().replace("\u2019", "'"))
    return re.sub(r"\s+", " ", text).strip()


TWEETY = ["&amp;", "&amp;#128514;", "&#32;", "&#10;", "&lt;b&gt;", "&ampx", "&amp", "&notit;", "&#x41;", "&NewLine;",
          "http://x.test/a?b=c", "www.Example.com/p", "HTTPS://A.B", "@user:", "＠someone", "RT", "rt:", "art", "#tag",
          "#_x", "don't", "it\u2019s", "'quoted'", "snake_case", "__", "ΣΑΣ", "ΌΣΟΣ.", "σς", "İ", "ß", "🙂", "x&y"]


def tweety_text(rng: random.Random, max_words: int = 120) -> str:
    """Words with entities (double-escaped too), URLs, mentions, RT markers, hashtags, apostrophes, Greek
    sigma, between every kind of whitespace."""
    words = [rng.choice(TWEETY + WORDS) for _ in range(rng.randint(0, max_words))]
    seps = SPACES + BREAKS
    return "".join(w + (rng.choice(seps) if rng.random() < 0.3 else " ") for w in words)


def valence_extremes(lexicon, words: list[str], candidates: list[int] | None = None) -> tuple[float, float]:
    """ValenceLexicon.extremes as it was (before issue 21 bounded the combiner's features)."""
    valences, negators = lexicon.valences, lexicon.negators
    negative = positive = 0.0
    if candidates is None:
        candidates = [i for i, w in enumerate(words) if w in valences]
    for i in candidates:
        word = words[i]
        if word not in valences:
            continue
        if word == "kind" and i + 1 < len(words) and words[i + 1] == "of":
            continue
        value = valences[word]
        if not negators.isdisjoint(words[max(0, i - 3):i]):
            value *= lexicon.negation_scalar
        if value < negative:
            negative = value
        elif value > positive:
            positive = value
    return -negative, positive


def word_set_found(word_set, words: list[str]) -> bool:
    """WordSet.found as it was."""
    if not word_set.words.isdisjoint(words):
        return True
    if word_set._firsts.isdisjoint(words):
        return False
    for i in [i for i, w in enumerate(words) if w in word_set._firsts]:
        if any(tuple(words[i:i + len(p)]) == p for p in word_set._by_first[words[i]]):
            return True
    return False


def combiner_features(combiner, blinded: str, probability: float) -> tuple[float, float, float, float, float]:
    """EvaluativeCombiner.features as it was: one list of all the text's words."""
    import math

    from gristmill.filters.toxicity import LOGIT_CLIP

    p = min(max(probability, LOGIT_CLIP), 1 - LOGIT_CLIP)
    words = blinded.split(" ")
    if word_set_found(combiner.profanity, words):
        return math.log(p / (1 - p)), 1.0, 0.0, 0.0, 0.0
    known = frozenset(combiner.lexicon.valences) | frozenset(combiner.offense)
    offense = combiner.offense
    candidates = [i for i, w in enumerate(words) if w in known]
    negative, positive = valence_extremes(combiner.lexicon, words, candidates)
    return (math.log(p / (1 - p)), 0.0, negative, positive,
            max([offense[words[i]] for i in candidates if words[i] in offense], default=0.0))
