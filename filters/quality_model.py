"""A fastText quality classifier: load by path, score documents, and the top-fraction cutoff.

Any supervised fastText model loads (`.bin` or quantized `.ftz`): the shipped English default
(`filters/data/quality_en.ftz`, see its MODEL_CARD.md) or a user's, e.g. DCLM's
`openhermes_reddit_eli5_vs_rw_v2_bigram_200k_train.bin` with `positive_label: __label__hq`.
A document's score is the model's probability of the positive label, on the text with its newlines
turned into spaces (fastText reads one line per example; DCLM scores the same way).

`percentile_cutoff(scores, ids, top_fraction)` is the one rule that turns a run's scores into the
documents kept by `classifier.top_fraction`: pure, so a later re-threshold reproduces it exactly.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

DEFAULT_MODEL = Path(__file__).parent / "data" / "quality_en.ftz"
POSITIVE_LABEL = "__label__hq"
NEGATIVE_LABEL = "__label__cc"
_SPACES = re.compile(r"\s+")


def model_text(text: str | None) -> str:
    """The text as the classifier sees it (training and scoring alike): one line, whitespace collapsed."""
    return _SPACES.sub(" ", text or "").strip()


def resolve_model(path: str | Path) -> Path:
    return DEFAULT_MODEL if str(path) == "default" else Path(path)


class QualityModel:
    """A loaded fastText model; `score(texts)` gives each text's probability of `positive_label`."""

    def __init__(self, path: str | Path = "default", positive_label: str = POSITIVE_LABEL):
        import fasttext

        path = resolve_model(path)
        if not path.is_file():
            raise FileNotFoundError(f"fastText model {path} not found")
        fasttext.FastText.eprint = lambda *args, **kwargs: None  # its load-time warning on stderr
        self.model = fasttext.load_model(str(path))
        self.labels = list(self.model.get_labels())
        if positive_label not in self.labels:
            raise ValueError(f"fastText model {path} has labels {self.labels}, not {positive_label!r}: "
                             "set classifier.positive_label to one of them")
        self.path, self.positive_label = path, positive_label

    def score(self, texts: Sequence[str | None]) -> list[float]:
        if not texts:
            return []
        labels, probs = self.model.predict([model_text(t) for t in texts], k=-1, threshold=0.0)
        out = []
        for names, values in zip(labels, probs):
            p = dict(zip(names, values)).get(self.positive_label, 0.0)
            out.append(min(1.0, max(0.0, float(p))))  # fastText's softmax can overshoot 1 by an ulp
        return out


@dataclass(frozen=True)
class Cutoff:
    """The last document kept by a top-fraction cut: documents are ranked by score, highest first,
    ties by id (ascending); the first `keep` of the `documents` ranked are kept. `score`/`id` are
    the last kept document's (None when nothing is kept)."""

    documents: int
    keep: int
    top_fraction: float
    score: float | None
    id: str | None

    def kept(self, score: float | None, id: str | None) -> bool:
        """Whether a document with this score and id is among the kept ones."""
        if self.keep == 0:
            return False
        return rank_key(score, id) <= rank_key(self.score, self.id)

    def to_dict(self) -> dict:
        return {"documents": self.documents, "keep": self.keep, "top_fraction": self.top_fraction,
                "score": self.score, "id": self.id}


def rank_key(score: float | None, id: str | None) -> tuple:
    """Sort key of the top-fraction ranking: higher score first (a missing or NaN score last), then id."""
    bad = score is None or math.isnan(score)
    return (bad, 0.0 if bad else -score, id or "")


def keep_count(documents: int, top_fraction: float) -> int:
    """Documents kept of `documents`: ceil(documents × top_fraction) (any document at all keeps ≥ 1)."""
    if not 0 < top_fraction <= 1:
        raise ValueError(f"top_fraction must be in (0, 1], not {top_fraction}")
    return min(documents, math.ceil(round(documents * top_fraction, 9)))


def percentile_cutoff(scores: Iterable[float | None], ids: Iterable[str | None], top_fraction: float) -> Cutoff:
    """The cut that keeps the top `top_fraction` of documents by score (ties broken by id)."""
    ranked = sorted(zip(scores, ids), key=lambda entry: rank_key(*entry))  # stable among equal keys
    keep = keep_count(len(ranked), top_fraction)
    if keep == 0:
        return Cutoff(len(ranked), 0, top_fraction, None, None)
    score, id_ = ranked[keep - 1]
    return Cutoff(len(ranked), keep, top_fraction, score, id_)
