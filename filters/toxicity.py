"""Toxicity scoring: a fastText classifier (any supervised model, by path) and a word-list signal.

`normalize(text)` is the one text normalization used for training (filters/training/toxicity_train.py), for the
bias audit and for scoring, so the model sees at run time what it saw in training: HTML entities
decoded, retweet markers, @mentions, URLs and hashtag signs removed, lowercased, whitespace collapsed.

`ToxicityModel(path, label).score(text)` is the probability in [0, 1] that fastText gives `label`
(the shipped model's is `toxic`). `score_spans` scores each sentence or line of a document, and
`remove_spans` deletes those above a threshold (Dolma's span mode, 0.4), returning the edits so the
stage can record them. `WordListScorer` counts LDNOOBW-format words (one word or phrase per line).

Identity-term blinding (`TermBlinder`): a model trained with blinding never sees the identity terms of
its list (Jigsaw's terms and HolisticBias' descriptors not marked dispreferred): they are removed from
the text in training and at scoring time, so the words that name a group carry no toxicity of their own
and a sentence scores the same whichever group it names (Garg et al. 2019, "blindness"). Removing beats
a shared placeholder word: the placeholder learned Davidson's toxic "white people" contexts (issue #23
audit, tuning half: FPR 0.44 vs 0.35). The list travels with the model as `<model>.blind.txt` (one term
a line); a model without that file is scored unblinded.

The evaluative combiner (`EvaluativeCombiner`, issue #23): Davidson's fastText reads casual English about a
person as toxic ("People are wonderful cooks." 0.997) and knows few insults that are not profanity. When
`<model>.combiner.json` lies beside the model, the score of a text (normalized, blinded) is
- with a profanity-list word in it (`<model>.profanity.txt`, LDNOOBW): fastText's probability, unchanged;
- without: sigmoid(alpha * logit(fastText) + beta * most negative word valence - delta * most positive word
  valence + gamma * most offensive word + bias), the valences being VADER's human ratings
  (`<model>.valence.tsv`, -4 to 4, with VADER's negation rule) and a word's offensiveness the weight that
  alt-profanity-check's linear model gives it (`<model>.offense.tsv`, per 10 units; it knows insults that
  are not swear words: "scum", "filth", "vile"). What is said about someone decides, not the register.
The five numbers are chosen by filters/training/toxicity_train.py (`fit_combiner`; MODEL_CARD.md says how).
"""

from __future__ import annotations

import html
import json
import math
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from collections import deque
from itertools import chain, islice
from typing import Iterable, Iterator

from gristmill.filters.c4 import BadWords
from gristmill.filters.pieces import Utf8Text, text_pieces

DEFAULT_MODEL = "models/toxicity-davidson.ftz"
DEFAULT_LABEL = "toxic"

_RT = re.compile(r"(?<!\w)rt\b:?", re.IGNORECASE)
_MENTION = re.compile(r"(?<!\w)[@＠]\w+:?")
_URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
_HASHTAG = re.compile(r"(?<!\w)#(\w)")
# Punctuation, emoji and symbols become spaces: tweets and web pages punctuate differently, words do not.
_NOT_WORD = re.compile(r"[^\w\s']+|(?<!\w)'|'(?!\w)|_+")
# Sentences: end punctuation followed by space; lines are split apart first.
_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+")


# A text longer than this is normalized a piece at a time (cut at a space or newline): `re.sub` holds a
# string per match and between matches, ~50 MB at once for a page near max_page_bytes.
PIECE_CHARS = 1 << 16
_CUT = re.compile(r"[ \n]")
_NEWLINE = re.compile(r"\n")


def normalize(text: str | Utf8Text) -> str:
    """Lowercased words without Twitter artefacts: entities decoded, no `RT`, `@user`, URLs, `#`,
    punctuation or emoji; single spaces.

    A long text is cut at spaces and newlines into pieces of about PIECE_CHARS, and the pieces' words
    joined: the same words, since no step matches across a space or newline (an entity, URL or run of
    punctuation holds none; a lookaround or lowercase's final sigma sees it as a non-word either way). So
    a long text may come as its UTF-8 bytes (`Utf8Text`), decoded a piece at a time."""
    text = text or ""
    if isinstance(text, str) and len(text) <= PIECE_CHARS:
        return " ".join(_strip_artefacts(text).split())
    return " ".join(normalized_parts(text))


def normalized_parts(text: str | Utf8Text) -> Iterator[str]:
    """`normalize(text)` in consecutive parts, each words joined by single spaces (none empty): their `" ".join`
    is `normalize(text)`. A part a piece of the text (`normalize`)."""
    for piece in text_pieces(text, PIECE_CHARS, _CUT):
        part = " ".join(_strip_artefacts(piece).split())
        if part:
            yield part


def _strip_artefacts(text: str) -> str:
    """`normalize` but for collapsing the whitespace."""
    if "&" in text:
        text = html.unescape(html.unescape(text))  # Davidson has double-escaped entities (&amp;#128514;)
    # Each Twitter pattern runs only where its marker occurs: most web text has none (2× faster scoring).
    lowered = text.lower()
    if "://" in text or "www." in lowered:
        text = _URL.sub(" ", text)
    if "@" in text or "\uff20" in text:
        text = _MENTION.sub(" ", text)
    if "rt" in lowered:
        text = _RT.sub(" ", text)
    if "#" in text:
        text = _HASHTAG.sub(r"\1", text)
    return _NOT_WORD.sub(" ", text.lower().replace("\u2019", "'"))


BLIND_SUFFIX = ".blind.txt"


class TermBlinder:
    """Removes identity terms (whole words or phrases, longest first; a term also in its plural with "s")
    from *normalized* text. Terms are normalized as the text is, so
    "hard-of-hearing" matches "hard of hearing"."""

    def __init__(self, terms):
        phrases = {tuple(normalize(t).split()) for t in terms if normalize(t)}
        phrases |= {p[:-1] + (p[-1] + "s",) for p in phrases if not p[-1].endswith("s")}
        self._by_first: dict[str, list[tuple[str, ...]]] = {}
        for phrase in sorted(phrases, key=lambda p: (-len(p), p)):
            self._by_first.setdefault(phrase[0], []).append(phrase)
        self.terms = len(phrases)
        self.longest = max(map(len, phrases), default=1)  # words in the longest term

    @classmethod
    def from_file(cls, path: str | Path) -> "TermBlinder":
        lines = Path(path).read_text(encoding="utf-8").splitlines()
        return cls([line.strip() for line in lines if line.strip() and not line.startswith("#")])

    def find(self, normalized: str) -> list[str]:
        """The terms (as normalized phrases) that occur in `normalized`, in order, plurals as written."""
        words = normalized.split(" ")
        found, i = [], 0
        while i < len(words):
            for phrase in self._by_first.get(words[i], ()):
                if tuple(words[i:i + len(phrase)]) == phrase:
                    found.append(" ".join(phrase))
                    i += len(phrase) - 1
                    break
            i += 1
        return found

    def __call__(self, normalized: str) -> str:
        """`normalized` without the terms: its words but those of each term found (scanning left to right,
        longest term first) joined by single spaces. A long text goes through `blind_parts` a piece at a
        time, so it never has a list of all its words."""
        if len(normalized) <= WORD_PIECE_CHARS and self._by_first.keys().isdisjoint(normalized.split(" ")):
            return normalized  # the common case: no term, nothing to rebuild
        return " ".join(self.blind_parts(_space_pieces(normalized)))

    def blind_parts(self, parts: Iterable[str]) -> Iterator[str]:
        """`self(" ".join(parts))` a part at a time: the parts blinded, those left with no word skipped, so that
        their `" ".join` is the blinded text (`" ".join(parts).split(" ")` is the parts' words in turn, for
        any strings). The whole text is never one string. Each part is read with as many words after it as the
        longest term could need, and the words that a term found in it takes from the parts after it skipped."""
        need = self.longest - 1
        pending: deque[list[str]] = deque()  # the words of parts read and not yet blinded
        ahead = 0  # words in pending[1:]
        skip = 0  # words at the start of pending[0] that a term found before them covers
        for part in chain(parts, [None]):
            if part is not None:
                pending.append(part.split(" "))
                ahead += len(pending[-1]) if len(pending) > 1 else 0
            while pending and (part is None or ahead >= need):
                words = pending.popleft()
                ahead -= len(pending[0]) if pending else 0
                kept, skip = self._blind_words(words, list(islice(chain.from_iterable(pending), need)), skip)
                if kept:
                    yield " ".join(kept)

    def _blind_words(self, words: list[str], following: list[str], skip: int) -> tuple[list[str], int]:
        """The words of one part kept, the first `skip` of them being covered already, and how many words of the
        parts after it a term found here covers. `following`: the words after the part that a term may need."""
        if skip >= len(words):
            return [], skip - len(words)
        by_first, cursor, kept = self._by_first, skip, []
        starts = [i for i, w in enumerate(words) if w in by_first]  # a comprehension: the common case is fast
        if starts and starts[-1] + self.longest > len(words):
            words_on = words + following  # a term near the end may run on into the next parts
        else:
            words_on = words
        for i in starts:
            if i < cursor:
                continue
            for phrase in by_first[words[i]]:
                if len(phrase) == 1 or tuple(words_on[i:i + len(phrase)]) == phrase:
                    kept += words[cursor:i]
                    cursor = i + len(phrase)
                    break
        if cursor >= len(words):
            return kept, cursor - len(words)
        kept += words[cursor:]
        return kept, 0


# Blinding and the combiner's word features split a long text's words this many characters at a time.
WORD_PIECE_CHARS = 1 << 16


def _space_pieces(normalized: str) -> Iterator[str]:
    """Consecutive pieces of a text, cut at spaces (the space at a cut dropped): their `" ".join` is the text,
    and their `split(" ")` lists joined are `normalized.split(" ")`, for any string."""
    start, size = 0, len(normalized)
    while True:
        end = normalized.find(" ", start + WORD_PIECE_CHARS) if start + WORD_PIECE_CHARS < size else -1
        if end < 0:
            yield normalized if start == 0 else normalized[start:]
            return
        yield normalized[start:end]
        start = end + 1


COMBINER_SUFFIX = ".combiner.json"
LOGIT_CLIP = 1e-7  # fastText's float32 probabilities: logits stay finite (±16.1)


class ValenceLexicon:
    """Word valences in [-4, 4] (VADER's lexicon: the mean of ten human ratings per word) and VADER's
    negation rule: a valence word with a negator among the three words before it counts
    `negation_scalar` times its valence ("not good" is negative); "kind" in "kind of" is no praise."""

    def __init__(self, valences: dict[str, float], negators, negation_scalar: float = -0.74):
        self.valences = valences
        self.negators = frozenset(negators)
        self.negation_scalar = negation_scalar

    @classmethod
    def from_file(cls, path: str | Path, negators, negation_scalar: float = -0.74) -> "ValenceLexicon":
        return cls(read_word_weights(path), negators, negation_scalar)

    def extremes(self, words: list[str], candidates: list[int] | None = None) -> tuple[float, float]:
        """(the most negative valence as a magnitude ≥ 0, the most positive valence ≥ 0) over `words`;
        `candidates`: the positions that may hold a valence word (all of them, if not given)."""
        if candidates is None:
            candidates = [i for i, w in enumerate(words) if w in self.valences]  # a comprehension: most words have none
        negative, positive = self.fold(words, candidates, 0.0, 0.0)
        return -negative, positive

    def fold(self, words: list[str], candidates: list[int], negative: float, positive: float) -> tuple[float, float]:
        """(most negative valence ≤ 0, most positive valence ≥ 0) so far, from those before `candidates` (positions
        in `words`, in order) and theirs: the extremes of a text read a piece of its words at a time."""
        valences, negators = self.valences, self.negators
        for i in candidates:
            word = words[i]
            if word not in valences:
                continue
            if word == "kind" and i + 1 < len(words) and words[i + 1] == "of":
                continue
            value = valences[word]
            if not negators.isdisjoint(words[max(0, i - 3):i]):
                value *= self.negation_scalar
            if value < negative:
                negative = value
            elif value > positive:
                positive = value
        return negative, positive


class WordSet:
    """Words and phrases (one a line, '#' lines are comments) found as whole words in *normalized* text: a
    set lookup per word, ~10x a regular expression of the list. Only entries that `normalize` leaves as they
    are can occur in normalized text; the others ("a$$") are left out, as they could never match."""

    def __init__(self, entries):
        phrases = {tuple(e.lower().split()) for e in entries
                   if e.strip() and normalize(e) == " ".join(e.lower().split())}
        self.words = frozenset(p[0] for p in phrases if len(p) == 1)
        self._by_first: dict[str, list[tuple[str, ...]]] = {}
        for phrase in phrases:
            if len(phrase) > 1:
                self._by_first.setdefault(phrase[0], []).append(phrase)
        self._firsts = frozenset(self._by_first)
        self.longest = max(map(len, phrases), default=1)  # words in the longest entry

    @classmethod
    def from_file(cls, path: str | Path) -> "WordSet":
        lines = Path(path).read_text(encoding="utf-8").splitlines()
        return cls(line for line in lines if not line.startswith("#"))

    def found(self, words: list[str]) -> bool:
        """Whether any entry occurs in `words` (a normalized text split on spaces)."""
        if not self.words.isdisjoint(words):
            return True
        if self._firsts.isdisjoint(words):
            return False
        for i in [i for i, w in enumerate(words) if w in self._firsts]:
            if any(tuple(words[i:i + len(p)]) == p for p in self._by_first[words[i]]):
                return True
        return False


def read_word_weights(path: str | Path) -> dict[str, float]:
    """`word<TAB>weight` lines ('#' lines are comments)."""
    weights = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            word, value = line.split("\t")[:2]
            weights[word] = float(value)
    return weights


@dataclass(frozen=True)
class EvaluativeCombiner:
    """The score of a blinded, normalized text from fastText's probability and its words (the module
    docstring); `<model>.combiner.json` holds the numbers and names the three word lists beside it."""

    alpha: float  # weight of fastText's logit when the text has no profanity
    beta: float  # per unit of the most negative valence
    delta: float  # per unit of the most positive valence
    gamma: float  # per unit of the most offensive word
    bias: float
    label: str  # the label the combined score is for; any other label is fastText's own
    lexicon: ValenceLexicon
    profanity: WordSet
    offense: dict  # word → offensiveness > 0 (the source model's weight / toxicity_train.OFFENSE_UNIT)

    @classmethod
    def from_file(cls, path: str | Path) -> "EvaluativeCombiner":
        path = Path(path)
        config = json.loads(path.read_text(encoding="utf-8"))
        lexicon = ValenceLexicon.from_file(path.parent / config["valence_file"], config["negators"],
                                          config["negation_scalar"])
        profanity = WordSet.from_file(path.parent / config["profanity_file"])
        offense = read_word_weights(path.parent / config["offense_file"])
        return cls(config["alpha"], config["beta"], config["delta"], config["gamma"], config["bias"], config["label"],
                   lexicon, profanity, offense)

    def __post_init__(self):
        object.__setattr__(self, "_known", frozenset(self.lexicon.valences) | frozenset(self.offense))

    def features(self, blinded: str, probability: float) -> tuple[float, float, float, float, float]:
        """(fastText's logit, 1.0 if a profanity-list word occurs else 0.0, the most negative valence as a
        magnitude, the most positive valence, the highest offensiveness of a word)."""
        return self._features(self.word_features(blinded), probability)

    def _features(self, word_features: tuple[bool, float, float, float], probability: float):
        p = min(max(probability, LOGIT_CLIP), 1 - LOGIT_CLIP)
        profane, negative, positive, offensive = word_features
        if profane:
            return math.log(p / (1 - p)), 1.0, 0.0, 0.0, 0.0  # the profane branch reads fastText's logit alone
        return math.log(p / (1 - p)), 0.0, negative, positive, offensive

    def word_features(self, blinded: str) -> tuple[bool, float, float, float]:
        """(whether a profanity-list entry occurs, and if not: the most negative valence as a magnitude, the most
        positive valence, the highest offensiveness of a word; 0.0 each when profane)."""
        if len(blinded) > WORD_PIECE_CHARS:
            return self.word_features_in_pieces(piece.split(" ") for piece in _space_pieces(blinded))
        words = blinded.split(" ")
        if self.profanity.found(words):
            return True, 0.0, 0.0, 0.0
        known, offense = self._known, self.offense
        candidates = [i for i, w in enumerate(words) if w in known]  # one pass over the words for both lexicons
        negative, positive = self.lexicon.extremes(words, candidates)
        offensive = max([offense[words[i]] for i in candidates if words[i] in offense], default=0.0)
        return False, negative, positive, offensive

    def word_features_in_pieces(self, pieces: Iterable[list[str]]) -> tuple[bool, float, float, float]:
        """`word_features` of a long text from its words a piece at a time (`pieces`: lists of words that
        together are `blinded.split(" ")`, none empty) (a list of all ~950,000 words of a page
        near max_page_bytes is ~60 MB). Each piece is read after the words before it that a rule looks back at
        (the negation rule's three, a profanity phrase's first words), and its last word waits for the next
        piece, which holds the word after it ("kind of"): every word is judged once, in order, in a window of
        the words around it, so the folds (a first maximum, the valence extremes) are those of the whole."""
        known, offense, lexicon, profanity = self._known, self.offense, self.lexicon, self.profanity
        keep = max(4, profanity.longest - 1)  # the word held back and three before it; an entry's first words
        negative = positive = 0.0
        offensive = None
        carried: list[str] = []
        for piece in pieces:
            window = carried + piece
            if profanity.found(window):  # any entry in the text lies whole in some window
                return True, 0.0, 0.0, 0.0
            candidates = [i for i in range(len(carried) - 1 if carried else 0, len(window) - 1) if window[i] in known]
            negative, positive = lexicon.fold(window, candidates, negative, positive)
            offensive = _first_max(offensive, [offense[window[i]] for i in candidates if window[i] in offense])
            carried = window[-keep:]
        if not carried:  # no pieces: no words
            return self.word_features("")
        last = [len(carried) - 1] if carried[-1] in known else []  # the text's last word: none comes after it
        negative, positive = lexicon.fold(carried, last, negative, positive)
        offensive = _first_max(offensive, [offense[carried[i]] for i in last if carried[i] in offense])
        return False, -negative, positive, 0.0 if offensive is None else offensive

    def logit(self, blinded: str, probability: float) -> float:
        return self._logit(self.features(blinded, probability))

    def _logit(self, features: tuple[float, float, float, float, float]) -> float:
        fasttext_logit, profane, negative, positive, offensive = features
        if profane:
            return fasttext_logit
        return (self.alpha * fasttext_logit + self.beta * negative - self.delta * positive + self.gamma * offensive
                + self.bias)

    def score(self, blinded: str, probability: float) -> float:
        """The combined probability in [0, 1]."""
        return self.score_words(self.word_features(blinded), probability)

    def score_words(self, word_features: tuple[bool, float, float, float], probability: float) -> float:
        """`score` from the text's `word_features` (read before fastText, so a long text need not outlive them)."""
        z = self._logit(self._features(word_features, probability))
        return 1 / (1 + math.exp(-z)) if z > -700 else 0.0


def _first_max(best: float | None, values: list[float]) -> float | None:
    """`max` over the values seen before (`best`, None for none) and `values`: as `max` of them all, the first
    of equal maxima."""
    top = max(values, default=None)
    return top if best is None or (top is not None and top > best) else best


def default_model_path() -> str:
    """The shipped model (inside the package)."""
    return str(resources.files("gristmill.filters").joinpath(DEFAULT_MODEL))


@dataclass(frozen=True)
class Span:
    """A sentence or line of a document: [start, end) character offsets and its toxicity score."""

    start: int
    end: int
    score: float


def split_spans(text: str, unit: str = "sentence") -> list[tuple[int, int]]:
    """[start, end) offsets of the non-blank lines (`unit="line"`) or sentences within lines (`"sentence"`)."""
    return list(iter_spans(text, unit))


def iter_spans(text: str, unit: str = "sentence") -> Iterator[tuple[int, int]]:
    """`split_spans`, one span at a time."""
    if unit not in ("sentence", "line"):
        raise ValueError(f"span unit must be 'sentence' or 'line', not {unit!r}")
    for line in re.finditer(r"[^\n]+", text or ""):
        if not line.group().strip():
            continue
        if unit == "line":
            yield line.start(), line.end()
            continue
        start = line.start()
        for end_match in _SENTENCE_END.finditer(line.group()):
            end = line.start() + end_match.start()
            if text[start:end].strip():
                yield start, end
            start = line.start() + end_match.end()
        if text[start:line.end()].strip():
            yield start, line.end()


class ToxicityModel:
    """A supervised fastText model and the label that means toxic. Loaded once (per worker)."""

    def __init__(self, path: str | Path | None = None, label: str = DEFAULT_LABEL, use_combiner: bool = True):
        """`use_combiner=False`: fastText alone, even where a `.combiner.json` lies beside the model."""
        import fasttext

        path = str(path or default_model_path())
        if not Path(path).is_file():
            raise FileNotFoundError(f"toxicity model {path!r} does not exist")
        fasttext.FastText.eprint = lambda *args, **kwargs: None  # silence the load-time warning
        self.model = fasttext.load_model(path)
        self.path = path
        self.label = label if label.startswith("__label__") else f"__label__{label}"
        blind_file = Path(path + BLIND_SUFFIX)
        self.blinder = TermBlinder.from_file(blind_file) if blind_file.is_file() else None
        if self.label not in self.model.get_labels():
            raise ValueError(f"toxicity model {path!r} has no label {self.label!r}; it has {self.model.get_labels()}")
        combiner_file = Path(path + COMBINER_SUFFIX)
        combiner = EvaluativeCombiner.from_file(combiner_file) if use_combiner and combiner_file.is_file() else None
        self.combiner = combiner if combiner is not None and combiner.label == self.label else None

    def score_normalized(self, texts: list[str]) -> list[float]:
        """P(label) for texts already passed through `normalize` (empty text scores 0); identity terms are
        blinded here when the model was trained so, and the evaluative combiner applied when it has one."""
        blind = self.blinder
        return [self._score_blinded(blind(text) if blind is not None else text) for text in texts]

    def _score_blinded(self, text: str) -> float:
        if not text:
            return 0.0
        probability = self._probability(text)
        return self.combiner.score(text, probability) if self.combiner is not None else probability

    def _probability(self, text: str | bytes) -> float:
        """fastText's P(label) of a normalized, blinded text (or its UTF-8 bytes: the same string to fastText)."""
        # model.f.predict avoids fasttext's numpy-2 copy problem; k=-1: every label's probability.
        pairs = self.model.f.predict(text, -1, 0.0, "strict")
        return next((float(p) for p, name in pairs if name == self.label), 0.0)

    def score(self, text: str | Utf8Text) -> float:
        """P(toxic) of the whole document, in [0, 1]; a long one may come as its UTF-8 bytes (`normalize`).

        A long document is normalized and blinded a piece at a time and never becomes one str: the combiner
        reads the blinded parts' words as they come, and each part's UTF-8 is appended to the bytes fastText
        gets (pybind11 would keep a UTF-8 copy on a non-ASCII str for as long as the str lives), so for a page
        near max_page_bytes one ~4.6 MB copy of the blinded text is held beside fastText's own two and its ids."""
        text = text or ""  # None scores as the empty text (0.0); so does an empty Utf8Text
        if isinstance(text, str) and len(text) <= PIECE_CHARS:
            text = normalize(text)
            return self._score_blinded(self.blinder(text) if self.blinder is not None else text)
        parts = normalized_parts(text)
        if self.blinder is not None:
            parts = self.blinder.blind_parts(parts)
        # `" ".join(parts).encode()`, a part at a time while the combiner reads its words, into room for as many
        # bytes as the text has (normalizing rarely lengthens a text; a growing bytearray would be copied as it grows)
        data = bytearray(len(text) if isinstance(text, Utf8Text) else len(text) + 64)
        size = 0

        def words_of_parts():
            nonlocal size
            for k, part in enumerate(parts):
                encoded = b" " + part.encode("utf-8") if k else part.encode("utf-8")
                data[size:size + len(encoded)] = encoded  # past the end: the bytearray grows
                size += len(encoded)
                yield part.split(" ")

        words = words_of_parts()
        combiner = self.combiner
        word_features = None if combiner is None else combiner.word_features_in_pieces(words)
        for _ in words:  # the rest of the bytes, where a profanity entry ended the combiner's reading early
            pass
        del data[size:]
        if not data:
            return 0.0
        probability = self._probability(data)
        return probability if word_features is None else combiner.score_words(word_features, probability)

    def score_many(self, texts: list[str]) -> list[float]:
        return self.score_normalized([normalize(t) for t in texts])

    def score_spans(self, text: str, unit: str = "sentence") -> list[Span]:
        offsets = split_spans(text, unit)
        scores = self.score_normalized([normalize(text[s:e]) for s, e in offsets])
        return [Span(s, e, score) for (s, e), score in zip(offsets, scores)]


def remove_spans(text: str, spans: list[Span], threshold: float) -> tuple[str, list[Span]]:
    """The text without the spans scoring above `threshold`, and those spans (offsets in the input text).
    A removed span takes its trailing spaces with it, so no double spaces are left behind."""
    removed = [s for s in spans if s.score > threshold]
    if not removed:
        return text, []
    parts, cursor = [], 0
    for span in removed:
        parts.append(text[cursor:span.start])
        cursor = span.end
        while cursor < len(text) and text[cursor] in " \t":
            cursor += 1
    parts.append(text[cursor:])
    return "".join(parts), removed


class WordListScorer:
    """Occurrences of words from an LDNOOBW-format list (one word or phrase per line), as whole words
    in the lowercased text; the second, model-free toxicity signal."""

    def __init__(self, words):
        words = list(words)
        self._bad_words = BadWords(words)
        self._pieceable = not any("\n" in w for w in words)

    @classmethod
    def from_file(cls, path: str | Path) -> "WordListScorer":
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"toxic word list {str(path)!r} does not exist")
        return cls(path.read_text(encoding="utf-8").splitlines())

    def count(self, text: str | Utf8Text) -> int:
        """Occurrences in `text`, non-overlapping. A long text (or its UTF-8 bytes) is counted a piece of lines at
        a time, each lowercased on its own (no copy of the whole): no entry holds a newline (from_file reads
        lines; a list given with one is counted whole), so no match crosses one, a lookaround sees it as a
        non-word as it sees a piece's end, and lowercasing's final sigma stops at it."""
        text = text or ""
        if len(text) <= PIECE_CHARS or not self._pieceable:
            return self._bad_words.count(str(text))
        return sum(self._bad_words.count(piece) for piece in text_pieces(text, PIECE_CHARS, _NEWLINE))
