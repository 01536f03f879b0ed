"""Bodies of the toxicity and bias commands (`gristmill train-toxicity`, `gristmill audit-bias`) and the
representation table that `gristmill stats` prints; cli/app.py registers them."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from rich.console import Console
from rich.table import Table

from gristmill.filters.identity import measured_accuracy
from gristmill.pipeline.steps.representation import per_thousand


def representation_table(representation: dict, top: int = 12) -> Table:
    """Before/after per pronoun class, axis and the most frequent descriptors (by share before): the share
    of documents that use the tag for people, and its mentions (sentences) with their rate per 1,000
    sentences. Runs from before issue 25 have no mentions: those columns then show "-"."""
    before, after = representation["before"], representation["after"]
    has_mentions = "mentions" in before
    table = Table(title=f"representation: tags used for people; share of documents and mentions (sentences), "
                        f"before filtering ({before['documents']} docs, {before.get('sentences', '-')} sentences) "
                        f"and after ({after['documents']} curated docs, {after.get('sentences', '-')} sentences)")
    for name in ("tag", "docs before", "docs after", "after − before", "mentions before", "mentions after",
                 "per 1k sent. before", "per 1k sent. after"):
        table.add_column(name, justify="left" if name == "tag" else "right")

    def mentions(side: dict, group: str, key: str, term: str | None = None) -> int | None:
        if not has_mentions:
            return None
        values = side.get("mentions", {}).get(group, {})
        return (values.get(key, {}).get(term, 0) if term is not None else values.get(key, 0))

    def row(label: str, b: float, a: float, mb: int | None, ma: int | None) -> None:
        if mb is None:
            counts = ["-"] * 4
        else:
            counts = [str(mb), str(ma), f"{per_thousand(mb, before.get('sentences', 0)):.2f}",
                      f"{per_thousand(ma, after.get('sentences', 0)):.2f}"]
        table.add_row(label, f"{b:.3f}", f"{a:.3f}", f"{a - b:+.3f}", *counts)

    for pronoun, share in before["pronouns"].items():
        row(f"pronoun {pronoun}", share, after["pronouns"].get(pronoun, 0.0),
            mentions(before, "pronouns", pronoun), mentions(after, "pronouns", pronoun))
    for axis, share in before["axes"].items():
        row(f"axis {axis}", share, after["axes"].get(axis, 0.0), mentions(before, "axes", axis), mentions(after, "axes", axis))
    descriptors = [(axis, term, share) for axis, terms in before["descriptors"].items() for term, share in terms.items()]
    for axis, term, share in sorted(descriptors, key=lambda d: (-d[2], d[0], d[1]))[:top]:
        row(f"  {axis}: {term}", share, after["descriptors"].get(axis, {}).get(term, 0.0),
            mentions(before, "descriptors", axis, term), mentions(after, "descriptors", axis, term))
    table.caption = accuracy_line()
    return table


def accuracy_line() -> str:
    """The default lexicon's measured precision/recall per axis, one line (empty when not shipped)."""
    accuracy = measured_accuracy()
    if not accuracy:
        return ""
    test = accuracy["test"]
    figures = ", ".join(f"{group} {row['precision']:.2f}/{row['recall']:.2f}" for group, row in test["by_group"].items()
                        if row["precision"] is not None and row["recall"] is not None)
    line = (f"tagger precision/recall per axis (default lexicon; {test['sentences']} held-out labelled sentences we wrote, "
            f"{accuracy['labelled_set']}): {figures}")
    web = accuracy.get("web_test")
    if web:
        pooled = web["by_group"]["all_axes"]
        line += (f"; on {web['sentences']} held-out real web sentences, all axes: "
                 f"{pooled['precision']:.2f}/{pooled['recall']:.2f}")
    return line


def train_toxicity(shared_data: Path, out: Path, seed: int, console: Console) -> None:
    from gristmill.filters.training.toxicity_train import main

    metrics = main(shared_data, out, seed=seed, log=lambda m: console.print(m, highlight=False))
    table = Table(title=f"toxicity recipes (shipped: {metrics['shipped']}); audit figures: tuning half / report half")
    for name in ("recipe", "Davidson AUC", "audit AUC", "max term FPR", "spread @90% spec.", "recall"):
        table.add_column(name, justify="left" if name == "recipe" else "right")
    for name, r in metrics["recipes"].items():
        t, p = r["audit_tune"], r["audit_report"]
        table.add_row(name + (" (shipped)" if name == metrics["shipped"] else ""), f"{r['heldout']['auc']:.4f}",
                      f"{t['auc']:.3f} / {p['auc']:.3f}", f"{t['fpr_max']:.3f} / {p['fpr_max']:.3f}",
                      f"{t['spread_at_90_specificity']:.3f} / {p['spread_at_90_specificity']:.3f}",
                      f"{t['recall']:.3f} / {p['recall']:.3f}")
    c = metrics["combined"]
    t, p = c["audit_tune"], c["audit_report"]
    table.add_row(f"{metrics['shipped']} + combiner (shipped score)", f"{c['heldout']['auc']:.4f}",
                  f"{t['auc']:.3f} / {p['auc']:.3f}", f"{t['fpr_max']:.3f} / {p['fpr_max']:.3f}",
                  f"{t['spread_at_90_specificity']:.3f} / {p['spread_at_90_specificity']:.3f}",
                  f"{t['recall']:.3f} / {p['recall']:.3f}")
    console.print(table)


def audit_bias(model_file: str | None, label: str, audit_file: str | None, templates_file: str | None,
               terms_file: str | None, threshold: float, as_json: bool, console: Console,
               holistic_templates: str | None = None, half: str = "report") -> dict:
    """The paired identity audit (default), or the neutral-template audit when `audit_file` or
    `templates_file` is given."""
    from gristmill.filters.toxicity import ToxicityModel

    terms = load_terms(Path(terms_file)) if terms_file else None
    model = ToxicityModel(model_file, label)
    if audit_file or templates_file:
        return _neutral_audit(model, audit_file, templates_file, terms, threshold, as_json, console)
    from gristmill.filters.bias_audit import load_paired_audit, run_paired_audit

    audit_set = load_paired_audit(holistic_templates=holistic_templates)
    if terms is not None:
        audit_set = replace(audit_set, terms={"main": {axis: tuple(t) for axis, t in terms.items()}})
    report = run_paired_audit(model, audit_set, half, threshold)
    report["model"] = model.path
    if as_json:
        console.print_json(json.dumps(report))
        return report
    console.print(paired_audit_table(report, Path(model.path).name))
    for group in ("main", "other"):
        if group in report:
            console.print(paired_audit_summary(report, group), highlight=False)
    return report


def paired_audit_table(report: dict, model_name: str) -> Table:
    table = Table(title=f"bias audit ({report['half']} half: {report['frames']} frames, {report['phrase_pairs']} phrase "
                        f"pairs; model {model_name}; threshold {report['threshold']})")
    for name in ("group", "axis", "term", "non-toxic", "FPR", "FPR @90% spec.", "mean score", "recall"):
        table.add_column(name, justify="left" if name in ("group", "axis", "term") else "right")
    for group in ("main", "other"):
        for axis, by_term in report.get(group, {}).get("by_term", {}).items():
            for term, row in by_term.items():
                table.add_row(group, axis, term, str(row["n_clean"]), f"{row['fpr']:.3f}",
                              f"{row['fpr_at_90_specificity']:.3f}", f"{row['mean_clean_score']:.3f}",
                              "" if row["recall"] is None else f"{row['recall']:.3f}")
    return table


def paired_audit_summary(report: dict, group: str) -> str:
    g = report[group]
    worst = ", ".join(f"{w['term']} {w['fpr']:.3f}" for w in g["worst_terms"])
    label = "terms (Jigsaw + HolisticBias, not dispreferred)" if group == "main" else "other descriptors (dispreferred, nonce)"
    return (f"{group}: {g['terms']} {label}, {g['sentences']} sentences (≥ {g['min_clean_per_term']} non-toxic per term); "
            f"template AUC {g['auc']}; FPR at {report['threshold']}: max {g['fpr_max']}, mean {g['fpr_mean']}, spread "
            f"{g['fpr_spread']}; at the 90%-specificity threshold {g['threshold_at_90_specificity']}: spread "
            f"{g['spread_at_90_specificity']}; recall {g['recall']}; worst: {worst}")


def _neutral_audit(model, audit_file, templates_file, terms, threshold, as_json, console) -> dict:
    from gristmill.filters.bias_audit import audit, load_audit

    summary = audit(model, load_audit(audit_file, templates_file, terms), threshold).summary()
    summary["model"] = model.path
    if as_json:
        console.print_json(json.dumps(summary))
        return summary
    table = Table(title=f"bias audit: false-positive rate on neutral sentences (threshold {threshold}, "
                        f"{summary['sentences']} sentences, model {Path(model.path).name})")
    for name in ("axis", "term", "FPR", "mean score"):
        table.add_column(name, justify="left" if name in ("axis", "term") else "right")
    for axis, by_term in summary["by_term"].items():
        table.add_row(axis, "(all)", f"{summary['fpr_by_axis'][axis]:.3f}", "")
        for term, row in by_term.items():
            table.add_row("", term, f"{row['fpr']:.3f}", f"{row['mean_score']:.3f}")
    console.print(table)
    console.print(f"FPR overall {summary['fpr_overall']}; spread (max − min) over terms {summary['fpr_spread_terms']}, "
                  f"over axes {summary['fpr_spread_axes']}", highlight=False)
    return summary


def load_terms(path: Path) -> dict[str, list[str]]:
    if not path.is_file():
        raise FileNotFoundError(f"terms file {str(path)!r} does not exist")
    if path.suffix == ".json":
        from gristmill.filters.identity import holistic_bias_descriptors

        return holistic_bias_descriptors(json.loads(path.read_text(encoding="utf-8")))
    terms: dict[str, list[str]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        axis, _, term = line.rpartition("\t")
        terms.setdefault(axis or "terms", []).append(term)
    return terms
