"""`gristmill report RUN` → RUN/report.html: one self-contained page (inline SVG, CSS and a little JS;
no network, no CDN) that shows what each filter removed and why.

Sections: the drop funnel, a histogram of every score with its thresholds marked, kept vs dropped by
language and top domains, dedup cluster sizes, PII counts per entity type, representation before and
after filtering, the toxicity model's per-term identity audit, and sample documents per drop reason with the spans behind the reason highlighted
(PII-looking text masked). A section whose stats the run did not compute says so.

Every plot is a `<figure class="plot" data-plot=NAME data-values=JSON>` and every mark in it carries
`data-label`/`data-value`, so tests (and scripts) read the plotted numbers back from the page.
"""

from __future__ import annotations

import html
import json
import math
import random
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq

from gristmill.pipeline.engine.run_folder import RunFolder
from gristmill.filters.bias_audit import load_paired_audit, run_paired_audit
from gristmill.filters.evidence import evidence_spans, redact
from gristmill.filters.identity import measured_accuracy
from gristmill.filters.toxicity import ToxicityModel
from gristmill.pipeline.steps.representation import per_thousand
from gristmill.pipeline.tools.rethreshold import RethresholdError, load_run_job
from gristmill.schemas import columns as C

SAMPLES_PER_REASON = 3
SAMPLE_CHARS = 1500
UNBOUNDED_BINS = 20
NOT_COMPUTED = "not computed in this run"

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
header{background:#1d2330;color:#fff;padding:16px 28px}header h1{margin:0;font-size:22px}header p{margin:4px 0 0;color:#c9cfdb}
main{padding:8px 28px 40px;max-width:1200px}section{background:#fff;border:1px solid #e1e4ea;border-radius:8px;padding:14px 18px;margin:16px 0}
h2{font-size:17px;margin:0 0 10px}.grid.wide{grid-template-columns:repeat(auto-fill,minmax(560px,1fr))}table{align-self:start}h3{font-size:14px;margin:10px 0 4px}.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(340px,1fr));gap:12px}
figure{margin:0}figcaption{font-size:12px;color:#4a5263;margin-bottom:2px}svg text{font-size:11px;fill:#2b3140}
.kept{fill:#2f9e6e}.dropped{fill:#d9534f}.bar{fill:#4c78a8}.before{fill:#9aa5b8}.after{fill:#4c78a8}.threshold{stroke:#d9534f;stroke-width:2;stroke-dasharray:4 2}
.note{color:#6b7385;font-style:italic}table{border-collapse:collapse;font-size:12px}td,th{padding:2px 8px;border-bottom:1px solid #eceef2;text-align:right}td:first-child,th:first-child{text-align:left}
.doc{border-left:3px solid #d9534f;padding:6px 10px;margin:8px 0;background:#fbfbfc}.doc pre{white-space:pre-wrap;font:12px/1.4 ui-monospace,Menlo,monospace;margin:4px 0;max-height:220px;overflow:auto}
mark{background:#ffe08a}.meta{font-size:12px;color:#4a5263}.legend span{display:inline-block;width:10px;height:10px;margin:0 4px 0 10px}
"""

_JS = """
(function(){
  var figures=document.querySelectorAll('figure.plot');var summary={};
  figures.forEach(function(f){
    var marks=f.querySelectorAll('[data-value]').length;
    f.setAttribute('data-rendered',String(marks));
    summary[f.getAttribute('data-plot')]=marks;
  });
  window.gristmillReport={plots:summary};
  document.querySelectorAll('button.more').forEach(function(b){
    b.addEventListener('click',function(){var p=b.parentNode.querySelector('pre');p.style.maxHeight=p.style.maxHeight?'':'none';});
  });
})();
"""


def _e(value) -> str:
    return html.escape(str(value), quote=True)


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _figure(name: str, caption: str, values, svg: str) -> str:
    return (f'<figure class="plot" data-plot="{_e(name)}" data-values="{_e(json.dumps(values, sort_keys=True))}">'
            f"<figcaption>{_e(caption)}</figcaption>{svg}</figure>")


def hbars(rows: list[tuple[str, dict[str, float]]], series: list[str], width: int = 520, label_width: int = 170) -> str:
    """Horizontal bars, one row per label, series stacked (classes = series names)."""
    bar_h, gap = 16, 5
    height = max(1, len(rows)) * (bar_h + gap) + 8
    top = max([sum(v.get(s, 0) for s in series) for _, v in rows] + [1])
    scale = (width - label_width - 60) / top
    parts = [f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img">']
    for i, (label, values) in enumerate(rows):
        y = 4 + i * (bar_h + gap)
        parts.append(f'<text x="{label_width - 6}" y="{y + 12}" text-anchor="end">{_e(label[:28])}</text>')
        x = float(label_width)
        for s in series:
            if s not in values:
                continue
            v = values[s]
            w = v * scale
            parts.append(f'<rect class="{_e(s)}" x="{x:.1f}" y="{y}" width="{max(w, 0.0):.1f}" height="{bar_h}" '
                         f'data-label="{_e(label)}" data-series="{_e(s)}" data-value="{_e(v)}"><title>{_e(label)} {_e(s)}: {_e(_fmt(v))}</title></rect>')
            x += w
        total = sum(values.get(s, 0) for s in series)
        parts.append(f'<text x="{x + 4:.1f}" y="{y + 12}">{_e(_fmt(total))}</text>')
    parts.append("</svg>")
    return "".join(parts)


def histogram_svg(edges: list[float], counts: list[int], thresholds: list[float], width: int = 340, height: int = 130) -> str:
    pad_l, pad_b = 8, 18
    plot_w, plot_h = width - 2 * pad_l, height - pad_b - 6
    lo, hi = edges[0], edges[-1]
    span = (hi - lo) or 1.0
    top = max(counts + [1])
    n = len(counts)
    parts = [f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img">']
    for i, count in enumerate(counts):
        x = pad_l + plot_w * i / n
        h = plot_h * count / top
        parts.append(f'<rect class="bar" x="{x:.1f}" y="{6 + plot_h - h:.1f}" width="{max(plot_w / n - 1, 1):.1f}" '
                     f'height="{h:.1f}" data-label="[{_fmt(edges[i])}, {_fmt(edges[i + 1])})" data-value="{count}">'
                     f"<title>[{_e(_fmt(edges[i]))}, {_e(_fmt(edges[i + 1]))}): {count}</title></rect>")
    for t in thresholds:
        x = pad_l + plot_w * (min(max(t, lo), hi) - lo) / span
        parts.append(f'<line class="threshold" x1="{x:.1f}" x2="{x:.1f}" y1="2" y2="{6 + plot_h}" data-threshold="{_e(t)}">'
                     f"<title>threshold {_e(_fmt(t))}</title></line>")
    parts.append(f'<text x="{pad_l}" y="{height - 4}">{_e(_fmt(lo))}</text>'
                 f'<text x="{width - pad_l}" y="{height - 4}" text-anchor="end">{_e(_fmt(hi))}</text></svg>')
    return "".join(parts)


# --- data --------------------------------------------------------------------------------------------

def _document_files(run_dir: Path) -> list[Path]:
    return RunFolder.of(run_dir).documents()


def _score_values(run_dir: Path, names: list[str]) -> dict[str, np.ndarray]:
    """Values of score columns over every written document (what the stats summaries count)."""
    out: dict[str, list] = {n: [] for n in names}
    for path in _document_files(run_dir):
        present = [n for n in names if n in pq.ParquetFile(path).schema_arrow.names]
        if not present:
            continue
        table = pq.read_table(path, columns=present)
        for n in present:
            arr = pc.drop_null(table[n]).to_numpy().astype(np.float64)
            out[n].append(arr[~np.isnan(arr)])
    return {n: np.concatenate(v) if v else np.empty(0) for n, v in out.items()}


def _rules(run_dir: Path) -> list:
    try:
        from gristmill.pipeline.tools.rethreshold import decide_rules, load_run_job

        return decide_rules(load_run_job(run_dir))
    except Exception:  # noqa: BLE001 - a Python-API run has no job to read thresholds from
        return []


def _thresholds(run_dir: Path) -> dict[str, list[float]]:
    """score column → the thresholds the run's rules put on it (numbers only)."""
    out: dict[str, list[float]] = {}
    for rule in _rules(run_dir):
        if isinstance(rule.threshold, (int, float)) and not isinstance(rule.threshold, bool):
            out.setdefault(rule.column, []).append(float(rule.threshold))
    return out


def score_histograms(run_dir: Path, stats: dict) -> list[dict]:
    """Per score: bin edges, counts, thresholds. Bounded scores: the stats histogram as is; unbounded
    ones: UNBOUNDED_BINS equal bins over [min, max] of the written documents."""
    thresholds = _thresholds(run_dir)
    scores = stats.get("scores", {})
    unbounded = [n for n, s in scores.items() if not s.get("histogram") and s.get("n")]
    values = _score_values(run_dir, unbounded) if unbounded else {}
    out = []
    for name, summary in sorted(scores.items()):
        if not summary.get("n"):
            continue
        if summary.get("histogram"):
            lo, hi = summary["bounds"]
            counts = list(summary["histogram"])
            edges = list(np.linspace(lo, hi, len(counts) + 1))
        else:
            v = values.get(name, np.empty(0))
            if not len(v):
                continue
            lo, hi = float(v.min()), float(v.max())
            if hi <= lo:
                hi = lo + 1.0
            hist, edge_arr = np.histogram(v, bins=UNBOUNDED_BINS, range=(lo, hi))
            counts, edges = [int(c) for c in hist], list(edge_arr)
        out.append({"score": name, "edges": [float(e) for e in edges], "counts": [int(c) for c in counts],
                    "thresholds": thresholds.get(name, []), "n": int(sum(counts)),
                    "bounded": bool(summary.get("histogram"))})
    return out


def sample_documents(run_dir: Path, per_reason: int = SAMPLES_PER_REASON, seed: int = 0,
                     reasons: list[str] | None = None, kept: bool = False) -> dict[str, list[dict]]:
    """Up to `per_reason` documents per drop reason (or kept documents under "kept"), chosen by `seed`."""
    folder = RunFolder.of(run_dir).curated if kept else RunFolder.of(run_dir).rejected
    rows: dict[str, list[dict]] = {}
    for path in sorted(folder.glob("*.parquet")):
        names = pq.ParquetFile(path).schema_arrow.names
        table = pq.read_table(path, columns=[c for c in (C.DROP_REASON, C.SKIP_REASON) if c in names])
        is_doc = (pc.is_null(table[C.SKIP_REASON]).to_pylist() if C.SKIP_REASON in names  # not documents: nothing to show
                  else [True] * table.num_rows)
        keys = ["kept"] * table.num_rows if kept else table[C.DROP_REASON].to_pylist()
        for i, (key, doc) in enumerate(zip(keys, is_doc)):
            if doc and (reasons is None or key in reasons):
                rows.setdefault(key, []).append((path.name, i))
    rules = {rule.reason: rule for rule in _rules(run_dir)}
    out: dict[str, list[dict]] = {}
    for key, refs in sorted(rows.items()):
        chosen = sorted(random.Random(f"{seed}:{key}").sample(refs, min(per_reason, len(refs))))
        out[key] = [_describe(pq.read_table(folder / name).slice(i, 1).to_pylist()[0], key, rules.get(key)) for name, i in chosen]
    return out


def _describe(doc: dict, reason: str, rule=None) -> dict:
    scores = {name: doc[name] for name in C.SCORES if doc.get(name) is not None}
    text = doc.get(C.TEXT) or ""
    fired = None
    if rule is not None:  # the rule that named the drop: its column, test, threshold and this document's value
        fired = {"column": rule.column, "op": rule.op, "threshold": rule.threshold if isinstance(rule.threshold, (int, float, str, list))
                 else repr(rule.threshold), "value": doc.get(rule.column)}
    return {"id": doc.get(C.ID), "url": doc.get(C.URL), "language": doc.get(C.LANGUAGE), "reason": reason,
            "drop_reason": doc.get(C.DROP_REASON), "text": text, "spans": evidence_spans(doc.get(C.DROP_REASON), text),
            "scores": scores, "rule": fired, "dup_cluster_id": doc.get(C.DUP_CLUSTER_ID)}


def highlighted_html(text: str, spans: list[tuple[int, int, str]], limit: int = SAMPLE_CHARS) -> str:
    """The text (first `limit` characters) with spans in <mark>, every piece PII-masked on its own."""
    pieces, pos = [], 0
    for start, end, label in spans:
        if start >= limit:
            break
        pieces.append(_e(redact(text[pos:start])[0]))
        pieces.append(f'<mark title="{_e(label)}">{_e(redact(text[start:min(end, limit)])[0])}</mark>')
        pos = min(end, limit)
    pieces.append(_e(redact(text[pos:limit])[0]))
    if len(text) > limit:
        pieces.append(f"… [{len(text) - limit} more characters]")
    return "".join(pieces)


# --- sections ----------------------------------------------------------------------------------------

def _section(title: str, body: str, anchor: str) -> str:
    return f'<section id="{_e(anchor)}"><h2>{_e(title)}</h2>{body}</section>'


def _not_computed(what: str) -> str:
    return f'<p class="note" data-missing="{_e(what)}">{_e(what)}: {NOT_COMPUTED}.</p>'


def funnel_section(stats: dict) -> str:
    ledger = stats["ledger"]
    rows = [("input", {"remaining": ledger["input"]})]
    values = [{"stage": "input", "remaining": ledger["input"], "dropped": 0}]
    for row in stats.get("funnel", []):
        dropped = sum(row["dropped"].values()) + row.get("quarantined", 0)
        rows.append((f"{row['stage']} (−{dropped})", {"remaining": row["remaining"], "dropped": dropped}))
        values.append({"stage": row["stage"], "remaining": row["remaining"], "dropped": dropped})
    body = _figure("funnel", "documents remaining after each stage (red: removed by that stage)", values,
                   hbars(rows, ["remaining", "dropped"]).replace('class="remaining"', 'class="kept"'))
    reasons = sorted(ledger["dropped"].items(), key=lambda kv: -kv[1])
    body += _figure("drop_reasons", "records dropped, by reason", dict(reasons),
                    hbars([(r, {"dropped": n}) for r, n in reasons], ["dropped"]))
    table = "".join(f"<tr><td>{_e(k)}</td><td>{_e(v)}</td></tr>" for k, v in
                    [("input", ledger["input"]), ("kept", ledger["kept"]), ("dropped", sum(ledger["dropped"].values())),
                     ("quarantined", ledger["quarantined"])])
    return _section("Funnel", f'<div class="grid wide"><div>{body}</div><table>{table}</table></div>', "funnel")


def stages_section(stats: dict) -> str:
    head = "<tr><th>stage</th><th>rows in</th><th>skipped</th><th>seconds</th><th>MB in</th><th>MB/s</th><th>docs/s</th></tr>"
    rows = []
    for s in stats.get("stages", []):
        mb = s.get("bytes_in", 0) / 1e6
        docs = s.get("rows_in", 0) - s.get("rows_skipped", 0)
        sec = s.get("seconds") or 0
        rows.append(f"<tr><td>{_e(s['stage'])}</td><td>{s['rows_in']}</td><td>{s.get('rows_skipped', 0)}</td><td>{sec:.2f}</td>"
                    f"<td>{mb:.2f}</td><td>{(mb / sec if sec else 0):.2f}</td><td>{(docs / sec if sec else 0):.0f}</td></tr>")
    return _section("Stages", f"<table>{head}{''.join(rows)}</table>", "stages")


def scores_section(histograms: list[dict]) -> str:
    if not histograms:
        return _section("Scores", _not_computed("score histograms"), "scores")
    figures = []
    for h in histograms:
        marks = ", ".join(_fmt(t) for t in h["thresholds"]) or "none"
        caption = f"{h['score']} (n={h['n']}; threshold: {marks})"
        figures.append(_figure(f"score:{h['score']}", caption, h, histogram_svg(h["edges"], h["counts"], h["thresholds"])))
    return _section("Scores (every written document; red dashes: thresholds)", f'<div class="grid">{"".join(figures)}</div>', "scores")


def breakdown_section(stats: dict, breakdown: dict | None) -> str:
    if not breakdown:
        return _section("Kept vs dropped by language and domain", _not_computed("language and domain breakdown"), "breakdown")
    legend = '<p class="legend"><span class="kept" style="background:#2f9e6e"></span>kept<span style="background:#d9534f"></span>dropped</p>'
    parts = []
    for key, title in (("language", "by language"), ("domain", f"by registered domain (top of {breakdown.get('domains_total', '?')})")):
        rows = breakdown.get(key, {})
        values = {k: {"kept": v["kept"], "dropped": v["dropped"]} for k, v in rows.items()}
        parts.append(_figure(key, f"documents {title}", values, hbars([(k, v) for k, v in values.items()], ["kept", "dropped"])))
    return _section("Kept vs dropped by language and domain", legend + f'<div class="grid wide">{"".join(parts)}</div>', "breakdown")


def dedup_section(stats: dict) -> str:
    dedup = stats.get("dedup")
    if not dedup:
        return _section("Dedup clusters", _not_computed("dedup"), "dedup")
    sizes = {str(k): v for k, v in dedup.get("cluster_sizes", {}).items()}
    body = (f"<p>{dedup['documents']} documents in, {dedup['exact_removed']} exact and {dedup['near_removed']} near duplicates "
            f"removed in {dedup['clusters']} clusters ({dedup.get('bytes_saved', 0)} bytes saved).</p>")
    if sizes:
        body += _figure("dedup_cluster_sizes", "clusters by size (documents per cluster)", sizes,
                        hbars([(f"size {k}", {"clusters": v}) for k, v in sizes.items()], ["clusters"]).replace('class="clusters"', 'class="bar"'))
    else:
        body += '<p class="note">no duplicate clusters.</p>'
    return _section("Dedup clusters", body, "dedup")


def pii_section(stats: dict) -> str:
    pii = stats.get("pii")
    if not pii:
        return _section("PII", _not_computed("PII detection"), "pii")
    by_type = dict(sorted(pii.get("by_type", {}).items(), key=lambda kv: (-kv[1], kv[0])))
    body = f"<p>{pii.get('documents_with_pii', 0)} documents with PII.</p>"
    body += _figure("pii", "PII found, per entity type", by_type,
                    hbars([(k, {"count": v}) for k, v in by_type.items()], ["count"]).replace('class="count"', 'class="bar"'))
    return _section("PII", body, "pii")


def representation_section(stats: dict) -> str:
    rep = stats.get("representation")
    if not rep:
        return _section("Representation before/after filtering", _not_computed("representation"), "representation")
    before, after = rep.get("before", {}), rep.get("after", {})
    body = ("<p>Tags count a term only where it refers to people (\"Black voters\", not \"black coffee\"); "
            "shares are of documents, mentions are sentences that use the tag for people, also per 1,000 sentences.</p>"
            f'<p class="legend">share of documents; <span style="background:#9aa5b8"></span>before ({before.get("documents", 0)} documents, '
            f'{before.get("sentences", "-")} sentences)<span style="background:#4c78a8"></span>after ({after.get("documents", 0)} '
            f'documents, {after.get("sentences", "-")} sentences)</p>')
    figures = []
    for key in ("pronouns", "axes"):
        names = sorted(set(before.get(key, {})) | set(after.get(key, {})))
        values = {n: {"before": before.get(key, {}).get(n, 0.0), "after": after.get(key, {}).get(n, 0.0)} for n in names}
        rows = []
        for n in names:
            rows.append((f"{n} before", {"before": values[n]["before"]}))
            rows.append((f"{n} after", {"after": values[n]["after"]}))
        figures.append(_figure(f"representation:{key}", f"{key}: share of documents before vs after", values,
                               hbars(rows, ["before", "after"])))

    def cells(b_share: float, a_share: float, b_count, a_count) -> str:
        if b_count is None:
            counts = "<td>-</td>" * 4
        else:
            counts = (f"<td>{b_count}</td><td>{a_count}</td><td>{per_thousand(b_count, before.get('sentences', 0)):.2f}</td>"
                      f"<td>{per_thousand(a_count, after.get('sentences', 0)):.2f}</td>")
        return f"<td>{b_share:.3f}</td><td>{a_share:.3f}</td>{counts}"

    def mentions(side: dict, group: str, key: str, term: str | None = None):
        if "mentions" not in side:
            return None
        values = side["mentions"].get(group, {})
        return values.get(key, {}).get(term, 0) if term is not None else values.get(key, 0)

    header = ("<tr><th>{}</th><th>{}</th><th>docs before</th><th>docs after</th><th>mentions before</th>"
              "<th>mentions after</th><th>per 1k sentences before</th><th>per 1k sentences after</th></tr>")
    groups = []
    for key, label in (("pronouns", "pronoun"), ("axes", "axis")):
        for n in sorted(set(before.get(key, {})) | set(after.get(key, {}))):
            groups.append(f"<tr><td>{label}</td><td>{_e(n)}</td>" + cells(before.get(key, {}).get(n, 0.0), after.get(key, {}).get(n, 0.0),
                                                                        mentions(before, key, n), mentions(after, key, n)) + "</tr>")
    descriptors = []
    for axis in sorted(set(before.get("descriptors", {})) | set(after.get("descriptors", {}))):
        b, a = before.get("descriptors", {}).get(axis, {}), after.get("descriptors", {}).get(axis, {})
        for term in sorted(set(b) | set(a)):
            descriptors.append(f"<tr><td>{_e(axis)}</td><td>{_e(term)}</td>" + cells(
                b.get(term, 0), a.get(term, 0), mentions(before, "descriptors", axis, term), mentions(after, "descriptors", axis, term)) + "</tr>")
    table = "<h3>pronouns and axes</h3><table>" + header.format("tag", "name") + "".join(groups) + "</table>"
    if descriptors:
        table += "<h3>descriptors</h3><table>" + header.format("axis", "term") + "".join(descriptors) + "</table>"
    accuracy = measured_accuracy()
    if accuracy:
        test, web = accuracy["test"], accuracy.get("web_test", {"sentences": 0, "by_group": {}})

        def measured(row: dict | None) -> str:
            if not row:
                return "<td>-</td>" * 3
            return f"<td>{_fmt(row['precision'])}</td><td>{_fmt(row['recall'])}</td><td>{row['support']}</td>"

        groups = list(dict.fromkeys([*test["by_group"], *web["by_group"]]))
        rows = "".join(f"<tr><td>{_e(g)}</td>{measured(test['by_group'].get(g))}{measured(web['by_group'].get(g))}</tr>" for g in groups)
        table += (f"<h3>tagger accuracy</h3><p class=\"note\">precision and recall of the default lexicon's tags per axis "
                  f"(sentence level), on {test['sentences']} held-out sentences we wrote, hard negatives included, and on "
                  f"{web['sentences']} held-out real web and news sentences (descriptors only; few per axis); "
                  f"{_e(accuracy['labelled_set'])}. A custom lexicon is not measured.</p>"
                  "<table><tr><th>axis</th><th>written: precision</th><th>recall</th><th>positives</th>"
                  "<th>real web: precision</th><th>recall</th><th>positives</th></tr>" + rows + "</table>")
    return _section("Representation before/after filtering", body + f'<div class="grid wide">{"".join(figures)}</div>' + table, "representation")


def toxicity_audit(run_dir: Path) -> dict | None:
    """The paired identity audit (report half) of the run's toxicity model at the run's toxicity threshold;
    None when the run had no toxicity stage (or no job to read it from)."""
    try:
        config = load_run_job(run_dir).toxicity
    except RethresholdError:  # a Python-API run has no job to read the toxicity stage from
        return None
    if config is None:
        return None
    model = ToxicityModel(config.model_file, config.label)
    report = run_paired_audit(model, load_paired_audit(), "report", config.max_score if config.max_score is not None else 0.5)
    report["model"] = Path(model.path).name
    return report


def toxicity_audit_section(report: dict | None, worst: int = 15) -> str:
    title = "Toxicity model: identity-term audit"
    if report is None:
        return _section(title, _not_computed("toxicity"), "toxicity-audit")
    main = report["main"]
    body = (f'<p>Model {_e(report["model"])}, the audit\'s report half ({report["frames"]} frames, {report["phrase_pairs"]} '
            f'phrase pairs; `gristmill audit-bias`): {main["terms"]} identity terms, {main["sentences"]} sentences. '
            f'Template AUC <b data-audit="auc">{main["auc"]:.3f}</b>; false-positive rate of non-toxic sentences at '
            f'{report["threshold"]}: max over terms <b data-audit="fpr_max">{main["fpr_max"]:.3f}</b>, mean {main["fpr_mean"]:.3f}; '
            f'spread over terms at the 90%-specificity threshold ({main["threshold_at_90_specificity"]:.3f}): '
            f'<b data-audit="spread_at_90_specificity">{main["spread_at_90_specificity"]:.3f}</b>; recall of the toxic '
            f'twins {main["recall"]:.3f}.</p>')
    rows = [(axis, term, r) for axis, terms in main["by_term"].items() for term, r in terms.items()]
    rows.sort(key=lambda x: (-x[2]["fpr"], -x[2]["fpr_at_90_specificity"], x[1]))

    def table(items, name):
        head = "<tr><th>axis</th><th>term</th><th>non-toxic</th><th>FPR</th><th>FPR @90% spec.</th><th>recall</th></tr>"
        return (f'<table data-table="{name}">{head}' + "".join(
            f'<tr data-term="{_e(t)}" data-fpr="{r["fpr"]}"><td>{_e(a)}</td><td>{_e(t)}</td><td>{r["n_clean"]}</td>'
            f'<td>{r["fpr"]:.3f}</td><td>{r["fpr_at_90_specificity"]:.3f}</td><td>{_fmt(r["recall"])}</td></tr>'
            for a, t, r in items) + "</table>")

    body += f"<h3>the {worst} terms with the highest false-positive rate</h3>" + table(rows[:worst], "toxicity-audit-worst")
    body += f"<details><summary>all {len(rows)} terms</summary>" + table(rows, "toxicity-audit") + "</details>"
    if "other" in report:
        other = report["other"]
        body += (f'<p class="meta">Reported apart: {other["terms"]} dispreferred HolisticBias descriptors and nonce controls: '
                 f'FPR max {other["fpr_max"]:.3f}, mean {other["fpr_mean"]:.3f}.</p>')
    return _section(title, body, "toxicity-audit")


def samples_section(samples: dict[str, list[dict]]) -> str:
    if not samples:
        return _section("Sample dropped documents", '<p class="note">no dropped documents with text.</p>', "samples")
    parts = []
    for reason, docs in samples.items():
        parts.append(f'<h3 data-reason="{_e(reason)}">{_e(reason)}</h3>')
        for doc in docs:
            rule = doc.get("rule")
            scores = (f"{rule['column']} = {_fmt(rule['value'])} ({rule['op']} {_fmt(rule['threshold'])})" if rule
                      else ", ".join(f"{k} {_fmt(v)}" for k, v in list(doc["scores"].items())[:4]))
            if doc.get("dup_cluster_id"):
                scores += f", duplicate of {doc['dup_cluster_id']}"
            parts.append(f'<div class="doc" data-doc-id="{_e(doc["id"])}" data-spans="{len(doc["spans"])}">'
                         f'<div class="meta">{_e(redact(doc["url"] or "")[0])} · {_e(doc["language"] or "?")} · {_e(scores)}</div>'
                         f'<pre>{highlighted_html(doc["text"], doc["spans"])}</pre><button class="more">expand</button></div>')
    return _section("Sample dropped documents (highlights: what the reason points at; PII masked)", "".join(parts), "samples")


def build_report(run_dir: str | Path, seed: int = 0) -> Path:
    """Write RUN/report.html and return its path."""
    run_dir = Path(run_dir)
    if not RunFolder(run_dir).stats.exists():
        raise FileNotFoundError(f"{RunFolder(run_dir).stats} not found: is {run_dir} a finished gristmill run?")
    stats = RunFolder(run_dir).read_stats()
    breakdown = stats.get("breakdown")
    if breakdown is None:
        from gristmill.pipeline.steps.breakdown import breakdown_of

        breakdown = breakdown_of(run_dir)
    histograms = score_histograms(run_dir, stats)
    samples = sample_documents(run_dir, seed=seed)
    ledger = stats["ledger"]
    title = f"gristmill report: {run_dir.resolve().name}"
    body = "".join([
        funnel_section(stats), stages_section(stats), breakdown_section(stats, breakdown), scores_section(histograms),
        dedup_section(stats), pii_section(stats), representation_section(stats),
        toxicity_audit_section(toxicity_audit(run_dir)), samples_section(samples),
    ])
    kept_share = ledger["kept"] / ledger["input"] if ledger["input"] else math.nan
    page = (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>'
            f'<meta name="viewport" content="width=device-width,initial-scale=1"><link rel="icon" href="data:,"><style>{_CSS}</style></head><body>'
            f"<header><h1>{_e(title)}</h1><p>{ledger['input']} records in, {ledger['kept']} kept ({kept_share:.1%}), "
            f"{sum(ledger['dropped'].values())} dropped, {ledger['quarantined']} quarantined</p></header>"
            f"<main>{body}</main><script>{_JS}</script></body></html>\n")
    out = run_dir / "report.html"
    out.write_text(page)
    return out
