"""Identity lexicons: representation tags that count people, not words (issue 25), and the identity-attack
signal.

`IdentityLexicon.default()` reads the project's own lexicon (filters/lexicons/identity.yaml, written by
us); `IdentityLexicon.from_path` also reads HolisticBias' `descriptors.json` (axis → bucket → terms, some
as {"descriptor": ...} dicts; its terms are modifiers, and the person nouns and rules come from the
default lexicon).

`tag(text)` finds the pronoun classes and the {axis: [terms]} used **for people**, with the number of
sentences that mention each (mentions of people). A descriptor counts only where it refers to people,
by rules over the shared text split (`filters.textsplit.SplitText.sentence_ends`) and the lexicon's word
lists; no parser (the rules need none and run at web speed):

- a noun that names people ("women", "a refugee", "Catholics") counts, except in the lexicon's
  `not_people` compounds ("mother tongue", "Isle of Man");
- an adjective counts when it modifies a person noun, possibly through other descriptors and links
  ("Black voters", "a disabled veteran", "Black and Latino voters", "young, single mothers"); when it
  stands as a noun-phrase head after "the" and may ("the elderly", "the French consider");
  when it describes a person as a predicate ("she is deaf", "he grew up poor", "came out as gay");
- an adjective that is also a noun for a group member counts in the plural ("Americans") and as a
  singular noun after an article when no noun follows ("she is a devout Christian.");
- a condition noun counts after a person ("people with disabilities", "my son has autism").

So "white flour", "old house", "black coffee", "the gay nineties", "Black Friday" tag nothing.
Pronouns "she" and "he" count as they are; "they" counts unless the nearest candidate before it is a
plural noun for things ("the boxes arrived, but they were damaged"; `_Document.they_refers_to_people`). Measured precision and recall per axis: `filters/lexicons/identity_accuracy.json`
(`bench/identity_people.py`, on tests/data/identity_people).

`identity_attack(text, score)` is the highest toxicity score among the sentences that mention an
identity term (any use of the word, 0 when none does): identity and toxic content in the same sentence.
"""

from __future__ import annotations

import json
import re
from bisect import bisect_right
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Callable

import yaml

from gristmill.filters.pieces import LOWER_PIECE_CHARS, Utf8Text, lower, text_pieces
from gristmill.filters.textsplit import SplitText
from gristmill.filters.toxicity import PIECE_CHARS, iter_spans

DEFAULT_LEXICON = "lexicons/identity.yaml"
ACCURACY_FILE = "lexicons/identity_accuracy.json"
PRONOUN_CLASSES = ("she", "he", "they")
KINDS = ("nouns", "adjectives_and_nouns", "adjectives", "conditions")
_NEWLINE = re.compile(r"\n")
_TOKEN = re.compile(r"\w+(?:[-'\u2019]\w+)*|[^\w\s]")
_POSSESSIVE = re.compile(r"(?:['\u2019]s)$")
_IRREGULAR_PLURALS = {"person": "people", "child": "children", "schoolchild": "schoolchildren", "wife": "wives",
                      "housewife": "housewives", "staff": "staff", "lives": "lives", "townspeople": "townspeople",
                      "businesspeople": "businesspeople"}
# Verbs after "they" that need a person to do them ("they said").
_HUMAN_VERBS = frozenset(
    "said say says told tell tells think thought believe believed feel felt want wanted hope hoped hoping agreed "
    "agree argued argue asked ask claimed claim decided decide knew know love loved hate hated lived live married "
    "voted vote wrote write laughed smiled cried worried complained promised admitted insisted explained "
    "remember remembered prayed studied learned learnt wished wish recalled described meet met visited visit "
    "celebrated celebrate".split())
_DEFINITE = frozenset("the this that".split())
_FUNCTION_WORDS = frozenset("but who whom whose which is are was were has have had will would can could "
                            "shall should may might must of in on at for with from to by said says".split())
_ARTICLES = frozenset("a an one another every each any no the this that".split())
_HEAD_MODIFIERS = frozenset("very most extremely desperately truly global rural urban deserving world's nation's "
                            "country's city's working".split())
_DETERMINERS = frozenset("the a an their his her its our my your this that these those them him us me".split())
# Words in -s that are not plural nouns, for the "they" rule.
_PLURAL_LOOKING = re.compile(r"(?<![\w'\u2019-])[a-z]{2,}[^su'\u2019\W]s(?![\w'\u2019-])")
_NOT_PLURAL = frozenset("this has was does its his hers yours ours theirs always perhaps sometimes news series "
                        "towards afterwards besides whereas thus plus yes its goes makes takes gives says means "
                        "seems comes becomes includes uses needs wants gets lets keeps helps works runs looks "
                        "feels knows thinks shows turns starts ends holds leads lives moves tells asks calls "
                        "tries pays sets puts brings".split())


def _lower(text: str) -> str:
    """Lowercase with the same length, so offsets agree with the text's ("İ".lower() has two characters):
    where lowercasing changes the length, each character is lowercased alone, a block of characters at a
    time (one list of all a long text's characters would be ~8 bytes a character more)."""
    lowered = lower(text)
    if len(lowered) == len(text):
        return lowered
    del lowered
    return "".join(["".join([c.lower() if len(c.lower()) == 1 else c for c in text[start:start + LOWER_PIECE_CHARS]])
                    for start in range(0, len(text), LOWER_PIECE_CHARS)])


def plural(noun: str) -> str:
    """English plural of a lowercase noun or noun phrase (the last word inflects)."""
    head, _, last = noun.rpartition(" ")
    prefix = head + " " if head else ""
    if last in _IRREGULAR_PLURALS:
        return prefix + _IRREGULAR_PLURALS[last]
    if last.endswith("man") and last not in ("german", "roman", "shaman", "ottoman", "human"):
        return prefix + last[:-3] + "men"
    if re.search(r"(?:s|sh|ch|x|z)$", last):
        return prefix + last + "es"
    if re.search(r"[^aeiou]y$", last):
        return prefix + last[:-1] + "ies"
    return prefix + last + "s"


@dataclass(frozen=True)
class Tags:
    pronouns: tuple[str, ...]  # pronoun classes used for people, in PRONOUN_CLASSES order
    descriptors: dict[str, tuple[str, ...]]  # axis → terms used for people (sorted), axes with a hit only
    sentences: int = 0  # non-blank sentences in the text
    pronoun_sentences: dict[str, int] = field(default_factory=dict)  # class → sentences using it for people
    axis_sentences: dict[str, int] = field(default_factory=dict)  # axis → sentences with a term of it for people
    descriptor_sentences: dict[str, int] = field(default_factory=dict)  # "axis:term" → sentences

    @property
    def axes(self) -> tuple[str, ...]:
        return tuple(sorted(self.descriptors))


@dataclass(frozen=True)
class _Form:
    term: str  # canonical (singular) term
    kind: str  # one of KINDS
    is_plural: bool
    axes: tuple[str, ...]


@dataclass
class _Hit:
    start: int
    end: int
    form: _Form
    sentence: int


def _alternation(words) -> re.Pattern | None:
    words = sorted({w for w in words if w}, key=lambda w: (-len(w), w))
    if not words:
        return None
    return re.compile(r"(?<![\w-])(?:%s)(?![\w-])" % "|".join(map(re.escape, words)))


def _words(items) -> list[str]:
    return [str(t).strip().lower() for t in (items or []) if str(t).strip()]


class IdentityLexicon:
    def __init__(self, axes: dict[str, dict[str, list[str]] | list[str]], pronouns: dict[str, list[str]] | None = None,
                 rules: dict | None = None, source: str = ""):
        """`axes`: axis → {kind: terms} (KINDS), or axis → terms (then a term that is a person noun is a noun
        and any other an adjective). `rules`: the lexicon's word lists (person_nouns, nominal, ...); the
        default lexicon's when None."""
        self.source = source
        rules = rules if rules is not None else _default_data()
        self.person_nouns = set(_words(rules.get("person_nouns")))
        person_forms = self.person_nouns | {plural(n) for n in self.person_nouns}
        self._person_forms = frozenset(person_forms)
        self._nominal = frozenset(_words(rules.get("nominal")))
        self._plural_nouns = frozenset(_words(rules.get("plural_nouns")))
        self._links = frozenset(_words(rules.get("modifier_links")))
        self._enders = frozenset(_words(rules.get("phrase_enders")))
        self._subjects = frozenset(_words(rules.get("subjects")))
        self._copulas = frozenset(_words(rules.get("copulas")))
        self._adverbs = frozenset(_words(rules.get("predicate_adverbs")))
        self._not_after = {t: [tuple(p.split()) for p in _words(v)] for t, v in (rules.get("not_people") or {}).items()}
        self._not_before = {t: frozenset(_words(v)) for t, v in (rules.get("not_people_before") or {}).items()}
        self._idioms = _alternation(_words(rules.get("not_people_phrases")))

        kinds: dict[str, dict[str, str]] = {}  # axis → term → kind
        for axis, spec in sorted(axes.items()):
            by_kind = spec if isinstance(spec, dict) else {None: spec}
            for kind, terms in by_kind.items():
                if kind is not None and kind not in KINDS:
                    raise ValueError(f"identity lexicon {source!r}: axis {axis!r} has an unknown kind {kind!r} "
                                     f"(one of {', '.join(KINDS)})")
                for term in _words(terms):
                    kinds.setdefault(axis, {})[term] = kind or ("nouns" if term in person_forms else "adjectives")
        self.axes = {axis: sorted(terms) for axis, terms in kinds.items()}
        self.pronouns = pronouns or {}

        forms: dict[str, _Form] = {}
        axes_of: dict[str, list[str]] = {}
        kind_of: dict[str, str] = {}  # a term listed under two kinds keeps the first (axes in sorted order)
        for axis, terms in kinds.items():
            for term, kind in terms.items():
                axes_of.setdefault(term, []).append(axis)
                kind_of.setdefault(term, kind)
        for term, term_axes in sorted(axes_of.items()):
            kind = kind_of[term]
            forms.setdefault(term, _Form(term, kind, False, tuple(term_axes)))
            if kind != "adjectives" or term in self._plural_nouns:
                forms.setdefault(plural(term), _Form(term, kind, True, tuple(term_axes)))
        self._forms = forms
        self._descriptor_pattern = _alternation(forms)
        self._pronoun_class = {w.lower(): c for c in PRONOUN_CLASSES for w in self.pronouns.get(c, [])}
        self._pronoun_pattern = _alternation(self._pronoun_class)
        # The identity-attack signal keeps matching any use of a term (plural "s" as before).
        self._any = _alternation([*forms, *(t + "s" for t in forms if re.fullmatch(r"\w+", t))])

    @classmethod
    def default(cls) -> "IdentityLexicon":
        return cls.from_path(str(resources.files("gristmill.filters").joinpath(DEFAULT_LEXICON)))

    @classmethod
    def from_path(cls, path: str | Path) -> "IdentityLexicon":
        """A gristmill YAML lexicon ({pronouns, axes, and optionally the rule lists}) or HolisticBias'
        descriptors.json (its terms are modifiers unless they are person nouns; pronouns and rule lists come
        from the default lexicon)."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"identity lexicon {str(path)!r} does not exist")
        default = _default_data()
        if path.suffix == ".json":
            axes = holistic_bias_descriptors(json.loads(path.read_text(encoding="utf-8")))  # flat: nouns if person nouns
            return cls(axes, default["pronouns"], default, source=str(path))
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if not isinstance(data.get("axes"), dict):
            raise ValueError(f"identity lexicon {str(path)!r} has no 'axes' mapping")
        rules = {key: data.get(key, default.get(key)) for key in default if key not in ("axes", "pronouns")}
        return cls(data["axes"], data.get("pronouns") or default["pronouns"], rules, source=str(path))

    # --- tagging ---

    def tag(self, text: str | SplitText) -> Tags:
        split = text if isinstance(text, SplitText) else SplitText(text)
        lowered = _lower(split.text)
        if not lowered.strip():
            return Tags((), {}, 0)
        ends = split.sentence_ends
        doc = _Document(self, split.text, lowered, ends)

        descriptor_sentences: dict[str, set[int]] = {}
        axis_sentences: dict[str, set[int]] = {}
        for hit in doc.hits:
            if doc.refers_to_people(hit):
                for axis in hit.form.axes:
                    descriptor_sentences.setdefault(f"{axis}:{hit.form.term}", set()).add(hit.sentence)
                    axis_sentences.setdefault(axis, set()).add(hit.sentence)

        pronoun_sentences: dict[str, set[int]] = {}
        they_hits = []
        if self._pronoun_pattern is not None:
            for m in self._pronoun_pattern.finditer(lowered):
                cls = self._pronoun_class[m.group()]
                sentence = bisect_right(ends, m.start())
                if cls == "they":
                    they_hits.append((m, sentence))
                else:
                    pronoun_sentences.setdefault(cls, set()).add(sentence)
        for m, sentence in they_hits:
            if doc.they_refers_to_people(m, sentence):
                pronoun_sentences.setdefault("they", set()).add(sentence)

        descriptors: dict[str, list[str]] = {}
        for key in sorted(descriptor_sentences):
            axis, term = key.split(":", 1)
            descriptors.setdefault(axis, []).append(term)
        previous, sentences = 0, 0
        for end in ends:
            if not lowered[previous:end].isspace() and end > previous:
                sentences += 1
            previous = end
        return Tags(
            pronouns=tuple(c for c in PRONOUN_CLASSES if c in pronoun_sentences),
            descriptors={axis: tuple(terms) for axis, terms in descriptors.items()},
            sentences=sentences,
            pronoun_sentences={c: len(pronoun_sentences[c]) for c in PRONOUN_CLASSES if c in pronoun_sentences},
            axis_sentences={axis: len(s) for axis, s in sorted(axis_sentences.items())},
            descriptor_sentences={key: len(s) for key, s in sorted(descriptor_sentences.items())},
        )

    # --- the identity-attack signal (word level) ---

    def mentions_identity(self, text: str) -> bool:
        return self._any is not None and self._any.search(lower(text or "")) is not None

    def identity_attack(self, text: str | Utf8Text, score_sentences: Callable[[list[str]], list[float]]) -> float:
        """Highest toxicity (from `score_sentences`) of a sentence that mentions an identity term; 0 if none.
        A text given as its UTF-8 bytes is read a piece of lines at a time (sentences lie within lines)."""
        pieces = text_pieces(text, PIECE_CHARS, _NEWLINE) if isinstance(text, Utf8Text) else (text or "",)
        sentences = (piece[s:e] for piece in pieces for s, e in iter_spans(piece, "sentence"))  # no list of all
        with_identity = [s for s in sentences if self.mentions_identity(s)]
        return max(score_sentences(with_identity), default=0.0) if with_identity else 0.0


class _Document:
    """The rules, over one lowercased text and its sentence ends. Context is read only around candidate
    terms (a few tokens either side, within the sentence), so the cost is one regex pass per word list."""

    WINDOW = 80  # characters read either side of a term
    ANTECEDENT_WINDOW = 300  # characters searched back for what "they" refers to

    def __init__(self, lexicon: IdentityLexicon, original: str, lowered: str, ends: list[int]):
        self.lx, self.original, self.text, self.ends = lexicon, original, lowered, ends
        self.hits: list[_Hit] = []
        self.by_start: dict[int, _Hit] = {}
        if lexicon._descriptor_pattern is not None:
            for m in lexicon._descriptor_pattern.finditer(lowered):
                hit = _Hit(m.start(), m.end(), lexicon._forms[m.group()], bisect_right(ends, m.start()))
                self.hits.append(hit)
                self.by_start[hit.start] = hit
        if lexicon._idioms is not None:  # "poor man's": no term in it counts
            for m in lexicon._idioms.finditer(lowered):
                for hit in self.hits:
                    if m.start() <= hit.start < m.end():
                        self.by_start.pop(hit.start, None)
                self.hits = [h for h in self.hits if not m.start() <= h.start < m.end()]
        self.decided: dict[int, bool] = {}

    def bounds(self, sentence: int) -> tuple[int, int]:
        return (self.ends[sentence - 1] if sentence else 0), self.ends[sentence] if sentence < len(self.ends) else len(self.text)

    def after(self, pos: int, sentence: int, n: int = 6) -> list[re.Match]:
        _, end = self.bounds(sentence)
        out = []
        for m in _TOKEN.finditer(self.text, pos, min(end, pos + self.WINDOW)):
            out.append(m)
            if len(out) == n:
                break
        return out

    def before(self, pos: int, sentence: int) -> list[str]:
        """Tokens before `pos` in its sentence, nearest first (a token cut by the window is left out)."""
        start, _ = self.bounds(sentence)
        lo = max(start, pos - self.WINDOW)
        tokens = [m for m in _TOKEN.finditer(self.text, lo, pos)]
        if tokens and lo > start and tokens[0].start() == lo and self.text[lo - 1].isalnum():
            tokens = tokens[1:]
        return [m.group() for m in reversed(tokens)]

    def is_person_token(self, token: str) -> bool:
        return _POSSESSIVE.sub("", token) in self.lx._person_forms

    def excluded(self, hit: _Hit) -> bool:
        """The term sits in one of the lexicon's not-people compounds."""
        term = hit.form.term
        if term in self.lx._not_after:
            following = tuple(m.group() for m in self.after(hit.end, hit.sentence, 3))
            if any(following[:len(p)] == p for p in self.lx._not_after[term]):
                return True
        if term in self.lx._not_before:
            previous = self.before(hit.start, hit.sentence)
            if previous and previous[0] in self.lx._not_before[term]:
                return True
        return False

    def ends_phrase(self, pos: int, sentence: int, strict: bool = False) -> bool:
        """Nothing nominal follows `pos`: the sentence ends, punctuation, a function word or (unless
        `strict`) a verb."""
        following = self.after(pos, sentence, 1)
        if not following:
            return True
        token = following[0].group()
        if strict:
            return not token[0].isalnum() or token in _FUNCTION_WORDS
        if not token[0].isalnum() or token in self.lx._enders or (len(token) > 4 and token.endswith("ed")):
            return True
        # "the wealthy hid their money": a word followed by a determiner is a verb, not a noun
        then = self.after(following[0].end(), sentence, 1)
        return bool(then) and then[0].group() in _DETERMINERS

    def modifies_person(self, hit: _Hit) -> bool:
        """A person noun follows, possibly through other descriptors and links ("Black and Latino voters")."""
        pos, steps = hit.end, 0
        while steps < 6:
            following = self.after(pos, hit.sentence, 1)
            if not following:
                return False
            m = following[0]
            other = self.by_start.get(m.start())
            if other is not None:
                if other.form.kind in ("nouns", "adjectives_and_nouns") and self.refers_to_people(other):
                    return True
                pos, steps = other.end, steps + 1
                continue
            token = m.group()
            if self.is_person_token(token):
                return True
            if token in self.lx._links:
                pos, steps = m.end(), steps + 1
                continue
            # one more capitalized item of a coordinated list ("Christian, Islamic and Jewish communities";
            # not "black coffee and white people")
            then = self.after(m.end(), hit.sentence, 1)
            if then and then[0].group() in (",", "and", "or") and token.isalpha() and self.original[m.start()].isupper():
                pos, steps = m.end(), steps + 1
                continue
            return False
        return False

    def is_predicate(self, hit: _Hit) -> bool:
        """A person subject, a copula (adverbs between), then the term ("she is deaf", "came out as gay")."""
        seen_copula = False
        for token in self.before(hit.start, hit.sentence)[:10]:
            if token in self.lx._subjects or (seen_copula and self.is_person_token(token)):
                return seen_copula or token in self.lx._copulas  # "she's", "i'm" carry their copula
            if token in self.lx._copulas:
                seen_copula = True
            # adverbs, and a coordinated predicate: "she was born poor and died rich"
            elif not (token in self.lx._adverbs or token in ("and", "or", "but", ",") or token in self.lx._forms):
                return False
        return False

    def asks_age(self, hit: _Hit) -> bool:
        """"how old they are", "how young is she": a question about a person's age."""
        previous = self.before(hit.start, hit.sentence)[:1]
        following = [m.group() for m in self.after(hit.end, hit.sentence, 2)]
        return (previous == ["how"] and bool(following)
                and any(t in self.lx._subjects or t == "they" or self.is_person_token(t) for t in following))

    def after_article(self, hit: _Hit, articles=_ARTICLES) -> bool:
        """An article, then at most two words of a noun phrase, then the term ("a devout Christian",
        "the young South Australian")."""
        previous = self.before(hit.start, hit.sentence)[:3]
        for token in previous:
            if token in articles:
                # after a definite article the noun use must end at a function word, not a possible verb
                # ("the Protestant work ethic")
                return token not in _DEFINITE or self.ends_phrase(hit.end, hit.sentence, strict=True)
            if not token.isalpha() or token in self.lx._enders:
                return False
        return False

    def after_the(self, hit: _Hit) -> bool:
        """"the elderly", "the very poor", "the global poor"."""
        previous = self.before(hit.start, hit.sentence)[:2]
        if previous and (previous[0] in _HEAD_MODIFIERS or previous[0] in self.lx._links):
            previous = previous[1:]
        return bool(previous) and previous[0] == "the"

    def after_person(self, hit: _Hit) -> bool:
        """A condition after a person: "people with disabilities", "my son has autism"."""
        previous = self.before(hit.start, hit.sentence)[:8]
        for i, token in enumerate(previous):
            if token in ("with", "has", "have", "had", "having"):
                return any(self.is_person_token(t) or t in self.lx._subjects or t in ("they", "them")
                           for t in previous[i + 1:i + 4])
        return False

    def refers_to_people(self, hit: _Hit) -> bool:
        if hit.start in self.decided:
            return self.decided[hit.start]
        self.decided[hit.start] = False  # a chain that comes back here stops
        decided = not self.excluded(hit) and self._decide(hit)
        self.decided[hit.start] = decided
        return decided

    def _decide(self, hit: _Hit) -> bool:
        form = hit.form
        if form.kind == "nouns":
            previous = self.before(hit.start, hit.sentence)[:1]
            # "Man, that was close": an interjection at the start of a sentence
            return not (form.term == "man" and not previous and self.after(hit.end, hit.sentence, 1)
                        and self.after(hit.end, hit.sentence, 1)[0].group() in (",", "!"))
        if form.kind == "conditions":
            return self.after_person(hit)
        if form.is_plural:  # "Muslims", "whites": a noun for people
            return True
        if self.modifies_person(hit):
            return True
        if self.is_predicate(hit) and self.ends_phrase(hit.end, hit.sentence):
            return True
        if self.asks_age(hit):
            return True
        if form.kind == "adjectives_and_nouns" and self.after_article(hit) and self.ends_phrase(hit.end, hit.sentence):
            return True
        return form.term in self.lx._nominal and self.after_the(hit) and self.ends_phrase(hit.end, hit.sentence)

    def they_refers_to_people(self, m: re.Match, sentence: int) -> bool:
        """"they" is for people when a person noun follows it ("their parents"); else when the nearest
        candidate before it (in its sentence, then the sentence before) names people rather than things
        ("the volunteers gave up their evenings" vs "the boxes arrived, but they were damaged"); with no
        candidate, unless a verb of speech or thought follows ("they said"), people by default."""
        following = self.after(m.end(), sentence, 1)
        if following and self.is_person_token(following[0].group()):
            return True
        start, _ = self.bounds(sentence)
        found = self.nearest_antecedent(start, m.start())
        if found is None and following and following[0].group() in _HUMAN_VERBS:
            return True
        if found is None and sentence > 0:
            found = self.nearest_antecedent(*self.bounds(sentence - 1))
        return found is None or found

    def nearest_antecedent(self, start: int, end: int) -> bool | None:
        """The last candidate in text[start:end]: True for people (a person noun, a term used for people),
        False for a word that looks like a plural noun for things, None when there is none."""
        start = max(start, end - self.ANTECEDENT_WINDOW)  # bounded: a text without sentence ends stays linear
        for token in reversed(list(_TOKEN.finditer(self.text, start, end))):
            word = token.group()
            if self.decided.get(token.start()) or self.is_person_token(word):
                return True
            if _PLURAL_LOOKING.fullmatch(word) and word not in _NOT_PLURAL:
                return False
        return None


_DEFAULT_DATA: dict | None = None


def _default_data() -> dict:
    global _DEFAULT_DATA
    if _DEFAULT_DATA is None:
        path = resources.files("gristmill.filters").joinpath(DEFAULT_LEXICON)
        _DEFAULT_DATA = yaml.safe_load(path.read_text(encoding="utf-8"))
    return _DEFAULT_DATA


def measured_accuracy() -> dict | None:
    """The default lexicon's measured precision and recall per axis (bench/identity_people.py), or None."""
    path = resources.files("gristmill.filters").joinpath(ACCURACY_FILE)
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def holistic_bias_descriptors(data: dict) -> dict[str, list[str]]:
    """HolisticBias descriptors.json (axis → bucket → [term | {"descriptor": term, ...}]) → axis → terms.
    The `nonce` axis (made-up words, a control) is left out."""
    axes = {}
    for axis, buckets in data.items():
        if axis == "nonce":
            continue
        terms = []
        for items in (buckets.values() if isinstance(buckets, dict) else [buckets]):
            for item in items:
                terms.append(item["descriptor"] if isinstance(item, dict) else item)
        axes[axis] = terms
    return axes
