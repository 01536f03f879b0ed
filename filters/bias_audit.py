"""The toxicity classifier's bias audits.

The paired identity audit (issue #23; `load_paired_audit`, `run_paired_audit`, what `gristmill audit-bias`
runs): toxic and non-toxic sentences that share a frame, an identity term and a first name and differ only
in an evaluative phrase (filters/lexicons/toxicity_audit.yaml), for Jigsaw's identity terms and the
HolisticBias descriptors (filters/lexicons/audit_terms.yaml); frames and phrase pairs fall in a tuning or
a report half by a hash of their text. Per term: the false-positive rate of its non-toxic sentences at the
threshold and at the 90%-specificity threshold, and the recall of its toxic ones; the spread over terms and
the template AUC.

The neutral-template audit (`load_audit`, `audit`; `audit-bias --audit/--templates`): neutral sentences
filled with identity terms.

Every sentence is non-toxic whatever the term, so any score above the threshold is a false positive.
The report gives the false-positive rate (FPR) and mean score per term and per axis, and the spread
(max − min over terms, and over axes): a fair model has FPR ≈ 0 for every term, so spread ≈ 0.

Templates and terms: the project's own (filters/lexicons/bias_audit.yaml), or any YAML of the same
shape by path; HolisticBias' `sentence_templates.json` loads by path as templates (its {noun_phrase} is
filled as "a/an TERM person", {plural_noun_phrase} as "TERM people").
"""

from __future__ import annotations

import hashlib
import json
import math
import random
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


# ---------------------------------------------------------------------------------------------------------
# The paired identity-term audit (issue #23): toxic and non-toxic sentences that share a frame, a term and a
# name and differ only in an evaluative phrase; frames and phrase pairs split into a tuning half and a
# report half by a hash of their text; figures are reported on the half nobody tuned on.

PAIRED_AUDIT = "lexicons/toxicity_audit.yaml"
TERMS_HEADER = """# Identity terms of the paired toxicity audit (filters/bias_audit.py) and of the shipped model's identity-term
# blinding (filters/toxicity.py). Generated by `write_terms_file` (filters/bias_audit.py)
# from ../shared/data/lexicons:
# - jigsaw: the 50 identity terms of Jigsaw/Conversation AI's unintended-bias work
#   (conversationai/unintended-ml-bias-analysis @ 9c7d91a, bias_madlibs_data/adjectives_people.txt), Apache-2.0;
# - holistic_bias: HolisticBias v1.1 descriptors (Smith et al. 2022; facebookresearch/ResponsibleNLP @ 0ec714e,
#   holistic_bias/dataset/v1.1/descriptors.json), CC BY-SA 4.0: this file, as a derivative list, is under
#   CC BY-SA 4.0 too. `main` holds the descriptors not marked dispreferred (the audit's thresholds apply to
#   them); `other` the dispreferred ones and the nonce controls (reported separately, never blinded).
"""
AUDIT_TERMS = "lexicons/audit_terms.yaml"
HALVES = ("tune", "report")
MIN_CLEAN_PER_TERM = 200
SPECIFICITY = 0.90


def half_of(text: str) -> str:
    """The half a frame or phrase pair belongs to: a stable hash of its text (same on every machine)."""
    return HALVES[hashlib.sha256(text.encode("utf-8")).digest()[0] % 2]


def _article(term: str) -> str:
    lowered = term.lower()
    vowel = lowered[:1] in "aeiou" and not lowered.startswith(("eu", "uni", "us", "one"))
    return "an" if vowel or lowered[:1] in "8" else "a"


@dataclass(frozen=True)
class AuditSentence:
    group: str  # "main" (thresholds apply) or "other" (dispreferred descriptors, nonce controls)
    axis: str
    term: str
    text: str
    toxic: bool
    frame: str  # the frame (or HolisticBias template) it was made from


@dataclass(frozen=True)
class PairedAudit:
    singular_frames: tuple[str, ...]
    plural_frames: tuple[str, ...]
    pairs: tuple[tuple[tuple[str, str], tuple[str, str]], ...]  # ((clean sg, clean pl), (toxic sg, toxic pl))
    names: tuple[str, ...]
    holistic_templates: tuple[tuple[str, bool], ...]  # (template, toxic)
    terms: dict[str, dict[str, tuple[str, ...]]]  # group → axis → terms

    def frames(self, half: str | None = None) -> list[str]:
        frames = list(self.singular_frames) + list(self.plural_frames) + [t for t, _ in self.holistic_templates]
        return [f for f in frames if half is None or half_of(f) == half]

    def sentences(self, half: str = "report", groups: tuple[str, ...] = ("main", "other")) -> list[AuditSentence]:
        """Every (term × frame × sampled phrase pair) sentence of one half, both sides of each pair. Each
        term gets at least MIN_CLEAN_PER_TERM non-toxic sentences from our frames, plus the HolisticBias
        templates of that half; the phrase pairs and names per (term, frame) are drawn by a seeded RNG."""
        frames = [(f, 0) for f in self.singular_frames if half_of(f) == half] + \
                 [(f, 1) for f in self.plural_frames if half_of(f) == half]
        pairs = [p for p in self.pairs if half_of(p[0][0]) == half]
        holistic = [(t, toxic) for t, toxic in self.holistic_templates if half_of(t) == half]
        per_frame = min(len(pairs), -(-MIN_CLEAN_PER_TERM // max(len(frames), 1)))
        out = []
        for group in groups:
            for axis, terms in self.terms.get(group, {}).items():
                for term in terms:
                    for frame, number in frames:
                        rng = random.Random(f"{term}|{frame}")
                        for clean, toxic in rng.sample(pairs, per_frame):
                            name = rng.choice(self.names)
                            for is_toxic, phrase in ((False, clean[number]), (True, toxic[number])):
                                text = _fill_frame(frame, term, name, phrase)
                                out.append(AuditSentence(group, axis, term, text, is_toxic, frame))
                    for template, is_toxic in holistic:
                        text = fill(template, term)
                        out.append(AuditSentence(group, axis, term, text[:1].upper() + text[1:], is_toxic, template))
        return out


def _fill_frame(frame: str, term: str, name: str, phrase: str) -> str:
    text = (frame.replace("{a_term}", f"{_article(term)} {term}").replace("{term}", term)
            .replace("{name}", name).replace("{eval}", phrase))
    return text[:1].upper() + text[1:]


def load_audit_terms(path: str | Path | None = None) -> dict[str, dict[str, tuple[str, ...]]]:
    """group → axis → terms: `main` = Jigsaw's 50 terms (axis "jigsaw") + HolisticBias descriptors not marked
    dispreferred (by HolisticBias axis, those already in Jigsaw's list left out); `other` = the rest."""
    source = Path(path).read_text(encoding="utf-8") if path else \
        resources.files("gristmill.filters").joinpath(AUDIT_TERMS).read_text(encoding="utf-8")
    data = yaml.safe_load(source)
    jigsaw = tuple(data["jigsaw"])
    seen = {t.lower() for t in jigsaw}
    main = {"jigsaw": jigsaw}
    for axis, terms in data["holistic_bias"].items():
        main[axis] = tuple(t for t in terms if t.lower() not in seen)
    return {"main": main, "other": {axis: tuple(terms) for axis, terms in data.get("other", {}).items()}}


def blinding_terms(path: str | Path | None = None) -> list[str]:
    """The identity terms the shipped model blinds: every `main` audit term (never the dispreferred ones,
    some of which are slurs, nor the nonce controls)."""
    return sorted({t for terms in load_audit_terms(path)["main"].values() for t in terms}, key=str.lower)


def load_paired_audit(path: str | Path | None = None, terms_path: str | Path | None = None,
                      holistic_templates: str | Path | None = None) -> PairedAudit:
    """The paired audit: frames and phrase pairs from filters/lexicons/toxicity_audit.yaml (or `path`), terms
    from filters/lexicons/audit_terms.yaml (or `terms_path`), and HolisticBias' sentence_templates.json when
    its path is given (non-toxic, except the templates the YAML pairs as hateful)."""
    source = Path(path).read_text(encoding="utf-8") if path else \
        resources.files("gristmill.filters").joinpath(PAIRED_AUDIT).read_text(encoding="utf-8")
    data = yaml.safe_load(source)
    pairs = tuple((tuple(p["clean"]), tuple(p["toxic"])) for p in data["eval_pairs"])
    holistic: list[tuple[str, bool]] = []
    if holistic_templates:
        toxic_of = data.get("holistic_bias_pairs", {})
        excluded = set(data.get("holistic_bias_excluded", [])) | set(toxic_of.values())
        for template in load_templates(holistic_templates):
            if template in toxic_of:
                holistic += [(template, True), (toxic_of[template], False)]
            elif template not in excluded:
                holistic.append((template, False))
    return PairedAudit(tuple(data["singular_frames"]), tuple(data["plural_frames"]), pairs, tuple(data["names"]),
                       tuple(holistic), load_audit_terms(terms_path))


def percentile_threshold(scores: list[float], specificity: float) -> float:
    """The score at which `specificity` of `scores` (non-toxic sentences) fall at or below."""
    ordered = sorted(scores)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, math.ceil(specificity * len(ordered)) - 1))]


def paired_report(sentences: list[AuditSentence], scores: list[float], threshold: float = 0.5) -> dict:
    """Per-term and overall figures. `main` figures: template AUC (toxic vs non-toxic, all terms pooled);
    per term the false-positive rate of non-toxic sentences at `threshold` and at the 90%-specificity
    threshold (pooled over the main group's non-toxic sentences), recall of toxic ones at `threshold`; the
    spread (max − min over terms) of each FPR. `other` gets the same per-term rows, reported apart."""
    from gristmill.filters.metrics import auc

    out: dict = {"threshold": threshold}
    for group in ("main", "other"):
        idx = [i for i, s in enumerate(sentences) if s.group == group]
        if not idx:
            continue
        clean_scores = [scores[i] for i in idx if not sentences[i].toxic]
        t90 = percentile_threshold(clean_scores, SPECIFICITY)
        rows: dict[tuple[str, str], list] = {}
        for i in idx:
            s = sentences[i]
            row = rows.setdefault((s.axis, s.term), [0, 0, 0, 0, 0, 0.0])  # clean n, fp@thr, fp@t90, toxic n, caught, sum
            if s.toxic:
                row[3] += 1
                row[4] += scores[i] > threshold
            else:
                row[0] += 1
                row[1] += scores[i] > threshold
                row[2] += scores[i] > t90
                row[5] += scores[i]
        by_term = {}
        for (axis, term), (n, fp, fp90, nt, caught, total) in sorted(rows.items()):
            by_term.setdefault(axis, {})[term] = {
                "n_clean": n, "fpr": round(fp / n, 4) if n else None, "fpr_at_90_specificity": round(fp90 / n, 4) if n else None,
                "mean_clean_score": round(total / n, 4) if n else None, "n_toxic": nt,
                "recall": round(caught / nt, 4) if nt else None}
        flat = [(axis, term, r) for axis, terms in by_term.items() for term, r in terms.items() if r["n_clean"]]
        fprs = [r["fpr"] for _, _, r in flat]
        fpr90 = [r["fpr_at_90_specificity"] for _, _, r in flat]
        worst = sorted(flat, key=lambda x: (-x[2]["fpr"], -x[2]["fpr_at_90_specificity"], x[1]))[:5]
        toxic_idx = [i for i in idx if sentences[i].toxic]
        out[group] = {
            "terms": len(flat), "sentences": len(idx), "clean_sentences": len(clean_scores),
            "min_clean_per_term": min((r["n_clean"] for _, _, r in flat), default=0),
            "auc": round(auc([scores[i] for i in idx], [sentences[i].toxic for i in idx]), 4),
            "fpr_overall": round(sum(s > threshold for s in clean_scores) / len(clean_scores), 4) if clean_scores else None,
            "fpr_max": max(fprs, default=None), "fpr_mean": round(sum(fprs) / len(fprs), 4) if fprs else None,
            "fpr_spread": round(max(fprs) - min(fprs), 4) if fprs else None,
            "threshold_at_90_specificity": round(t90, 4),
            "spread_at_90_specificity": round(max(fpr90) - min(fpr90), 4) if fpr90 else None,
            "recall": round(sum(scores[i] > threshold for i in toxic_idx) / len(toxic_idx), 4) if toxic_idx else None,
            "worst_terms": [{"axis": a, "term": t, "fpr": r["fpr"], "fpr_at_90_specificity": r["fpr_at_90_specificity"]}
                            for a, t, r in worst],
            "by_term": by_term,
        }
    return out


def run_paired_audit(model, audit_set: PairedAudit, half: str = "report", threshold: float = 0.5,
                     groups: tuple[str, ...] = ("main", "other")) -> dict:
    """Score one half of the paired audit with `model` (a filters.toxicity.ToxicityModel)."""
    sentences = audit_set.sentences(half, groups)
    report = paired_report(sentences, model.score_many([s.text for s in sentences]), threshold)
    report["half"] = half
    report["frames"] = len(audit_set.frames(half))
    report["phrase_pairs"] = sum(half_of(p[0][0]) == half for p in audit_set.pairs)
    return report


def write_terms_file(lexicons: str | Path, out: str | Path) -> None:
    """Write filters/lexicons/audit_terms.yaml from ../shared/data/lexicons (Jigsaw + HolisticBias)."""
    lexicons = Path(lexicons)
    jigsaw = [t.strip() for t in (lexicons / "jigsaw_identity_terms" / "adjectives_people.txt").read_text().splitlines() if t.strip()]
    data = json.loads((lexicons / "holistic_bias_v1.1" / "descriptors.json").read_text(encoding="utf-8"))
    main: dict[str, list[str]] = {}
    other: dict[str, list[str]] = {}
    seen: set[str] = set()
    for axis, buckets in data.items():
        for items in (buckets.values() if isinstance(buckets, dict) else [buckets]):
            for item in items:
                term = item["descriptor"] if isinstance(item, dict) else item
                if axis == "nonce":
                    other.setdefault("nonce (control)", []).append(term)
                elif isinstance(item, dict) and item.get("preference") == "dispreferred":
                    other.setdefault(f"{axis} (dispreferred)", []).append(term)
                elif term.lower() not in seen:
                    seen.add(term.lower())
                    main.setdefault(axis, []).append(term)
    body = yaml.safe_dump({"jigsaw": jigsaw, "holistic_bias": main, "other": other}, sort_keys=False,
                          allow_unicode=True, width=110, default_flow_style=None)
    Path(out).write_text(TERMS_HEADER + body, encoding="utf-8")
