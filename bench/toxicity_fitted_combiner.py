"""Toxicity: the combiner's weights fitted on training data instead of chosen as a prior (MODEL_CARD.md,
"Why a prior and not a fit").

    python bench/toxicity_fitted_combiner.py ../shared/data [--json OUT]

fastText's logit, out of fold: the shipped recipe (blind) is trained on 4/5 of its training texts
(Davidson's training split, clean tweets ×3, WikiText-2 valid chunks; unquantized) and scores the fifth;
ToxiGen's statements are scored by the shipped model, which never saw them. Features: the shipped
combiner's (`EvaluativeCombiner.features`: fastText's logit, profanity, VADER's most negative and most
positive valence, the highest offensiveness). A weighted logistic regression (classes balanced; ToxiGen
weighted 1, 5 or 20) is fitted
- "full": on [logit, logit × profane, profane, negative, positive, offensive] (no profanity branch forced);
- "offset": on the non-profane texts, with alpha × logit as a fixed offset, the combiner's form.
Each is measured on the audit's tuning half (AUC, max term FPR@0.5, recall) and Davidson's held-out AUC.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np


def _fit(features, y, weights, offset=None, l2=1.0, iterations=30):
    z = np.hstack([features, np.ones((len(features), 1))])
    b = np.zeros(z.shape[1])
    offset = np.zeros(len(y)) if offset is None else offset
    for _ in range(iterations):
        q = 1 / (1 + np.exp(-(z @ b + offset)))
        gradient = z.T @ (weights * (q - y)) + l2 * np.r_[b[:-1], 0]
        hessian = (z * (weights * q * (1 - q))[:, None]).T @ z + l2 * np.eye(len(b))
        b -= np.linalg.solve(hessian, gradient)
    return b


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("shared_data", type=Path)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    from gristmill.filters.bias_audit import blinding_terms, load_paired_audit, paired_report
    from gristmill.filters.toxicity import ToxicityModel, normalize
    from gristmill.filters.training.toxicity_train import (TOXIC, Recipe, auc_array, build_training_set, combiner_features,
                                                  load_davidson, split_heldout, toxigen_examples, train_model)

    shared = args.shared_data
    train, heldout = split_heldout(load_davidson(shared / "toxicity-davidson"), 0)
    full = build_training_set(train, shared, 0, Recipe("blind", blind=True))
    combiner = ToxicityModel().combiner  # its word lists; fastText's own probability comes from `shipped`
    shipped = ToxicityModel(use_combiner=False)
    texts, labels, groups, logits = [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        fold_of = {e.text: hashlib.sha256(e.text.encode()).digest()[0] % 5 for e in full}
        unique = {e.text: e for e in full}
        for k in range(5):
            path = os.path.join(tmp, f"fold{k}.bin")
            train_model([e for e in full if fold_of[e.text] != k], path, 0, quantize=False, blind_terms=blinding_terms())
            fold_model = ToxicityModel(path)
            held = [e for t, e in sorted(unique.items()) if fold_of[t] == k]
            rows = combiner_features(fold_model, combiner, [e.text for e in held])
            texts += [e.text for e in held]
            labels += [e.label == TOXIC for e in held]
            groups += [e.group for e in held]
            logits.append(rows)
    toxigen = toxigen_examples(shared)
    features = np.vstack(logits + [combiner_features(shipped, combiner, [e.text for e in toxigen])])
    labels = np.array(labels + [e.label == TOXIC for e in toxigen], dtype=float)
    groups += [e.group for e in toxigen]
    audit = load_paired_audit(holistic_templates=shared / "lexicons" / "holistic_bias_v1.1" / "sentence_templates.json")
    tune = audit.sentences("tune", ("main",))
    tune_features = combiner_features(shipped, combiner, [normalize(s.text) for s in tune])
    davidson_features = combiner_features(shipped, combiner, [e.text for e in heldout])
    davidson_toxic = np.array([e.label == TOXIC for e in heldout])

    def design(f):
        logit, profane, negative, positive, offensive = f.T
        return np.stack([logit, logit * profane, profane, negative, positive, offensive], axis=1)

    results = []
    for weight in (1, 5, 20):
        w = np.array([weight if g.startswith("toxigen") else 1.0 for g in groups])
        w = w * np.where(labels == 1, 0.5 / (w * labels).sum(), 0.5 / (w * (1 - labels)).sum()) * len(labels)
        fits = {"full": (None, _fit(design(features), labels, w))}
        clean = features[:, 1] == 0
        for alpha in (0.2, 0.35, 0.5):
            fits[f"offset alpha={alpha}"] = (alpha, _fit(features[clean][:, 2:], labels[clean], w[clean],
                                                         alpha * features[clean, 0]))
        for name, (alpha, b) in fits.items():
            def logit_of(f):
                if alpha is None:
                    return design(f) @ b[:-1] + b[-1]
                return np.where(f[:, 1] > 0, f[:, 0], alpha * f[:, 0] + f[:, 2:] @ b[:-1] + b[-1])
            z = logit_of(tune_features)
            report = paired_report(tune, list(1 / (1 + np.exp(-z))))["main"]
            results.append({"toxigen_weight": weight, "fit": name, "coefficients": [round(float(x), 3) for x in b],
                            "davidson_auc": round(auc_array(logit_of(davidson_features), davidson_toxic), 4),
                            "tune_auc": report["auc"], "tune_fpr_max": report["fpr_max"],
                            "tune_fpr_overall": report["fpr_overall"], "tune_recall": report["recall"]})
            print(json.dumps(results[-1]), flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
