"""Bodies of the toxicity and bias commands (`gristmill train-toxicity`, `gristmill audit-bias`) and the
representation table that `gristmill stats` prints; cli.py registers them."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console
from rich.table import Table

from gristmill.filters.identity import measured_accuracy
from gristmill.pipeline.representation import per_thousand


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
    from gristmill.filters.train_toxicity import main

    metrics = main(shared_data, out, seed=seed, log=lambda m: console.print(m, highlight=False))
    for variant in ("plain", "mitigated"):
        held, audit = metrics[variant]["heldout"], metrics[variant]["audit"]
        console.print(f"{variant}: held-out AUC {held['auc']}, F1 toxic {held['toxic']['f1']}, F1 clean "
                      f"{held['clean']['f1']}; audit FPR {audit['fpr_overall']}, spread over terms "
                      f"{audit['fpr_spread_terms']}, over axes {audit['fpr_spread_axes']}", highlight=False)


def audit_bias(model_file: str | None, label: str, audit_file: str | None, templates_file: str | None,
               terms_file: str | None, threshold: float, as_json: bool, console: Console) -> dict:
    from gristmill.filters.bias_audit import audit, load_audit
    from gristmill.filters.toxicity import ToxicityModel

    terms = None
    if terms_file:  # a plain list (one term a line, optional "axis<TAB>term") or HolisticBias descriptors.json
        terms = load_terms(Path(terms_file))
    model = ToxicityModel(model_file, label)
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
