"""The toxicity classifier's bias audit: neutral sentences filled with identity terms.

Every sentence is non-toxic whatever the term, so any score above the threshold is a false positive.
The report gives the false-positive rate (FPR) and mean score per term and per axis, and the spread
(max − min over terms, and over axes): a fair model has FPR ≈ 0 for every term, so spread ≈ 0.

Templates and terms: the project's own (filters/lexicons/bias_audit.yaml), or any YAML of the same
shape by path; HolisticBias' `sentence_templates.json` loads by path as templates (its {noun_phrase} is
filled as "a/an TERM person", {plural_noun_phrase} as "TERM people").
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import yaml

DEFAULT_AUDIT = "lexicons/bias_audit.yaml"


@dataclass(frozen=True)
class AuditSet:
    templates: tuple[str, ...]  # with a {term} slot
    terms: dict[str, tuple[str, ...]]  # axis → terms

    def sentences(self) -> list[tuple[str, str, str]]:
        """(axis, term, sentence) for every template × term."""
        return [(axis, term, fill(template, term)) for axis, terms in self.terms.items() for term in terms
                for template in self.templates]


def fill(template: str, term: str) -> str:
    article = "an" if term[:1].lower() in "aeiou" else "a"
    return (template.replace("{noun_phrase}", f"{article} {term} person")
            .replace("{plural_noun_phrase}", f"{term} people").replace("{term}", term))


def load_audit(path: str | Path | None = None, templates_path: str | Path | None = None,
               terms: dict[str, list[str]] | None = None) -> AuditSet:
    """The audit set: YAML {templates, terms} (default: the project's), optionally with templates from
    another file (YAML list, or HolisticBias sentence_templates.json) or other terms."""
    source = Path(path).read_text(encoding="utf-8") if path else \
        resources.files("gristmill.filters").joinpath(DEFAULT_AUDIT).read_text(encoding="utf-8")
    data = yaml.safe_load(source)
    templates = list(data["templates"])
    if templates_path:
        templates = load_templates(templates_path)
    chosen = terms if terms is not None else data["terms"]
    return AuditSet(tuple(templates), {axis: tuple(t) for axis, t in chosen.items()})


def load_templates(path: str | Path) -> list[str]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"templates file {str(path)!r} does not exist")
    if path.suffix == ".json":  # HolisticBias: {template: {options}}
        data = json.loads(path.read_text(encoding="utf-8"))
        templates = list(data) if isinstance(data, dict) else list(data)
    else:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        templates = list(data["templates"] if isinstance(data, dict) else data)
    usable = [t for t in templates if re.search(r"\{(term|noun_phrase|plural_noun_phrase)\}", t)]
    if not usable:
        raise ValueError(f"{path}: no template has a {{term}}, {{noun_phrase}} or {{plural_noun_phrase}} slot")
    return usable


@dataclass
class AuditReport:
    threshold: float
    # per (axis, term): [false positives, sentences, sum of scores]
    per_term: dict[tuple[str, str], list] = field(default_factory=dict)

    def term_fpr(self) -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = {}
        for (axis, term), (fp, n, total) in sorted(self.per_term.items()):
            out.setdefault(axis, {})[term] = {"fpr": round(fp / n, 4), "mean_score": round(total / n, 4), "n": n}
        return out

    def axis_fpr(self) -> dict[str, float]:
        sums: dict[str, list] = {}
        for (axis, _), (fp, n, _total) in self.per_term.items():
            s = sums.setdefault(axis, [0, 0])
            s[0] += fp
            s[1] += n
        return {axis: round(fp / n, 4) for axis, (fp, n) in sorted(sums.items())}

    def summary(self) -> dict:
        terms = self.term_fpr()
        fprs = [v["fpr"] for axis in terms.values() for v in axis.values()]
        means = [v["mean_score"] for axis in terms.values() for v in axis.values()]
        axes = self.axis_fpr()
        total_fp = sum(v[0] for v in self.per_term.values())
        total_n = sum(v[1] for v in self.per_term.values())
        return {
            "threshold": self.threshold,
            "sentences": total_n,
            "fpr_overall": round(total_fp / total_n, 4) if total_n else None,
            "fpr_spread_terms": round(max(fprs) - min(fprs), 4) if fprs else None,
            "fpr_spread_axes": round(max(axes.values()) - min(axes.values()), 4) if axes else None,
            "mean_score_spread_terms": round(max(means) - min(means), 4) if means else None,
            "fpr_by_axis": axes,
            "by_term": terms,
        }


def audit(model, audit_set: AuditSet, threshold: float = 0.5) -> AuditReport:
    """Score every filled template with `model` (a filters.toxicity.ToxicityModel)."""
    rows = audit_set.sentences()
    scores = model.score_many([sentence for _, _, sentence in rows])
    report = AuditReport(threshold)
    for (axis, term, _), score in zip(rows, scores):
        entry = report.per_term.setdefault((axis, term), [0, 0, 0.0])
        entry[0] += score > threshold
        entry[1] += 1
        entry[2] += score
    return report
