"""Offline language identification with py3langid (its model ships inside the wheel: no download).

`LanguageScorer.score(text)` returns (ISO 639-1 code, probability in [0, 1]). Empty text gives
("und", 0.0).
"""

from __future__ import annotations

# Long documents add nothing to the decision and cost linear time: classify a prefix.
MAX_CHARS = 4000


class LanguageScorer:
    def __init__(self, max_chars: int = MAX_CHARS):
        from py3langid.langid import MODEL_DIR, MODEL_FILE, LanguageIdentifier

        self._identifier = LanguageIdentifier.from_modelpath(MODEL_DIR / MODEL_FILE, norm_probs=True)
        self.max_chars = max_chars

    def score(self, text: str) -> tuple[str, float]:
        sample = (text or "")[: self.max_chars]
        if not sample.strip():
            return "und", 0.0
        language, probability = self._identifier.classify(sample)
        return language, float(probability)
