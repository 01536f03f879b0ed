"""Identity lexicons: representation tagging (pronoun classes, identity descriptors per axis) and the
identity-attack signal.

`IdentityLexicon.default()` reads the project's own lexicon (filters/lexicons/identity.yaml, written by
us); `IdentityLexicon.from_path` also reads HolisticBias' `descriptors.json` (axis → bucket → terms,
some as {"descriptor": ...} dicts). Terms match as whole words or phrases in the lowercased text; a
single word also matches with a plural "s".

`tag(text)` returns the pronoun classes and the {axis: [terms]} a document mentions (each term once).
`identity_attack(text, score)` is the highest toxicity score among the sentences that mention an
identity term (0 when none does): identity and toxic content in the same sentence.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Callable

import yaml

from gristmill.filters.toxicity import split_spans

DEFAULT_LEXICON = "lexicons/identity.yaml"
PRONOUN_CLASSES = ("she", "he", "they")


@dataclass(frozen=True)
class Tags:
    pronouns: tuple[str, ...]  # pronoun classes present, in PRONOUN_CLASSES order
    descriptors: dict[str, tuple[str, ...]]  # axis → the lexicon's terms present (sorted), axes with a hit only

    @property
    def axes(self) -> tuple[str, ...]:
        return tuple(sorted(self.descriptors))


def _pattern(terms) -> re.Pattern | None:
    words = sorted({t.strip().lower() for t in terms if t and t.strip()}, key=lambda t: (-len(t), t))
    if not words:
        return None
    alternatives = [re.escape(w) + ("s?" if re.fullmatch(r"\w+", w) else "") for w in words]
    return re.compile(r"(?<![\w-])(?:%s)(?![\w-])" % "|".join(alternatives))


class IdentityLexicon:
    def __init__(self, axes: dict[str, list[str]], pronouns: dict[str, list[str]] | None = None, source: str = ""):
        self.source = source
        self.axes = {axis: sorted({t.strip().lower() for t in terms if t.strip()}) for axis, terms in sorted(axes.items())}
        self.pronouns = pronouns or {}
        self._pronoun_patterns = {c: re.compile(r"\b(?:%s)\b" % "|".join(map(re.escape, self.pronouns[c])))
                                  for c in PRONOUN_CLASSES if self.pronouns.get(c)}
        # term (and its plural) → canonical term, per axis; one regex per axis.
        self._axis_patterns = {axis: _pattern(terms) for axis, terms in self.axes.items()}
        self._canonical = {axis: {t: t for t in terms} | {t + "s": t for t in terms if re.fullmatch(r"\w+", t)}
                           for axis, terms in self.axes.items()}
        self._any = _pattern([t for terms in self.axes.values() for t in terms])

    @classmethod
    def default(cls) -> "IdentityLexicon":
        return cls.from_path(str(resources.files("gristmill.filters").joinpath(DEFAULT_LEXICON)))

    @classmethod
    def from_path(cls, path: str | Path) -> "IdentityLexicon":
        """A gristmill YAML lexicon ({pronouns, axes}) or HolisticBias' descriptors.json (pronouns then come
        from the default lexicon)."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"identity lexicon {str(path)!r} does not exist")
        if path.suffix == ".json":
            return cls(holistic_bias_descriptors(json.loads(path.read_text(encoding="utf-8"))),
                       _default_pronouns(), source=str(path))
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if not isinstance(data.get("axes"), dict):
            raise ValueError(f"identity lexicon {str(path)!r} has no 'axes' mapping")
        return cls(data["axes"], data.get("pronouns") or _default_pronouns(), source=str(path))

    def tag(self, text: str) -> Tags:
        lowered = (text or "").lower()
        pronouns = tuple(c for c, p in self._pronoun_patterns.items() if p.search(lowered))
        descriptors = {}
        for axis, pattern in self._axis_patterns.items():
            if pattern is None:
                continue
            found = {self._canonical[axis].get(m.group(), m.group()) for m in pattern.finditer(lowered)}
            if found:
                descriptors[axis] = tuple(sorted(found))
        return Tags(pronouns, descriptors)

    def mentions_identity(self, text: str) -> bool:
        return self._any is not None and self._any.search((text or "").lower()) is not None

    def identity_attack(self, text: str, score_sentences: Callable[[list[str]], list[float]]) -> float:
        """Highest toxicity (from `score_sentences`) of a sentence that mentions an identity term; 0 if none."""
        sentences = [text[s:e] for s, e in split_spans(text or "", "sentence")]
        with_identity = [s for s in sentences if self.mentions_identity(s)]
        return max(score_sentences(with_identity), default=0.0) if with_identity else 0.0


def _default_pronouns() -> dict[str, list[str]]:
    path = resources.files("gristmill.filters").joinpath(DEFAULT_LEXICON)
    return yaml.safe_load(path.read_text(encoding="utf-8"))["pronouns"]


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
