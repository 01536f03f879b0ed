"""The inspection commands' bodies: `gristmill stats`, `report`, `inspect` and `rethreshold`
(registered in pipeline/cli/app.py). Terminal output is rich tables; `--json` prints machine-readable data."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.text import Text

from gristmill.pipeline.engine.run_folder import RunFolder


def load_stats(run_dir: Path) -> dict:
    folder = RunFolder.of(run_dir)
    if not folder.stats.exists():
        raise FileNotFoundError(f"{folder.stats} not found: is {run_dir} a finished gristmill run?")
    return folder.read_stats()


def stats_view(run_dir: Path) -> dict:
    """stats.json plus `funnel_view`: per stage in/out/dropped by reason, seconds, docs/s, MB/s (and the
    breakdown computed from the Parquet for runs written before stats.json had it)."""
    stats = load_stats(run_dir)
    if stats.get("breakdown") is None:  # runs written before the breakdown existed
        from gristmill.pipeline.steps.breakdown import breakdown_of

        stats["breakdown"] = breakdown_of(run_dir)
    ledger = stats["ledger"]
    timing = {s["stage"]: s for s in stats.get("stages", [])}
    rows, before = [], ledger["input"]
    for row in stats.get("funnel", []):
        s = timing.get(row["stage"], {})
        dropped = sum(row["dropped"].values()) + row.get("quarantined", 0)
        seconds = s.get("seconds", 0.0)
        docs = s.get("rows_in", 0) - s.get("rows_skipped", 0)
        rows.append({"stage": row["stage"], "in": before, "out": row["remaining"], "dropped": dropped,
                     "by_reason": row["dropped"], "seconds": round(seconds, 3), "bytes_in": s.get("bytes_in", 0),
                     "documents_scored": docs,
                     "docs_per_s": round(docs / seconds, 1) if seconds else None,
                     "mb_per_s": round(s.get("bytes_in", 0) / 1e6 / seconds, 3) if seconds else None})
        before = row["remaining"]
    # stats.json as is (so `--json` stays a superset of it) plus the funnel as per-stage rows
    return {**stats, "funnel_view": rows}


def ledger_table(ledger: dict, by_reason: bool = False) -> Table:
    """The ledger with its sum check; `by_reason`: one row per drop reason instead of their total."""
    table = Table(title="ledger: every input record ends in exactly one place")
    table.add_column("outcome")
    table.add_column("records", justify="right")
    table.add_row("input", str(ledger["input"]))
    table.add_row("kept", str(ledger["kept"]))
    if by_reason:
        for reason, n in sorted(ledger["dropped"].items(), key=lambda kv: -kv[1]):
            table.add_row(f"  dropped: {reason}", str(n))
    else:
        table.add_row("dropped", str(sum(ledger["dropped"].values())))
    table.add_row("quarantined", str(ledger["quarantined"]))
    accounted = ledger["kept"] + sum(ledger["dropped"].values()) + ledger["quarantined"]
    table.add_row("sum check", f"{'OK' if accounted == ledger['input'] else 'MISMATCH'} ({accounted})")
    return table


def print_stats_view(view: dict, console: Console) -> None:
    ledger = view["ledger"]
    console.print(ledger_table(ledger))
    table = Table(title=f"funnel: {ledger['input']} records in → {ledger['kept']} kept "
                        f"({ledger['quarantined']} quarantined; ledger {'sums' if ledger.get('sums', True) else 'DOES NOT SUM'})")
    for name in ("stage", "in", "out", "dropped", "seconds", "docs/s", "MB/s", "dropped by reason"):
        table.add_column(name, justify="left" if name in ("stage", "dropped by reason") else "right")
    for row in view["funnel_view"]:
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(row["by_reason"].items(), key=lambda kv: -kv[1]))
        table.add_row(row["stage"], str(row["in"]), str(row["out"]), str(row["dropped"]), f"{row['seconds']:.2f}",
                      "-" if row["docs_per_s"] is None else f"{row['docs_per_s']:.0f}",
                      "-" if row["mb_per_s"] is None or not row["bytes_in"] else f"{row['mb_per_s']:.2f}", reasons)
    table.add_row("kept", str(ledger["kept"]), "", "", "", "", "", "")
    console.print(table)
    breakdown = view["breakdown"]
    for key, title in (("language", "documents by language"),
                       ("domain", f"documents by registered domain (top of {breakdown.get('domains_total', 0)})")):
        t = Table(title=title)
        for name in (key, "kept", "dropped", "kept %", "top drop reasons"):
            t.add_column(name, justify="left" if name in (key, "top drop reasons") else "right")
        for name, row in breakdown.get(key, {}).items():
            total = row["kept"] + row["dropped"]
            top = ", ".join(f"{k} {v}" for k, v in sorted(row["reasons"].items(), key=lambda kv: -kv[1])[:3])
            t.add_row(name, str(row["kept"]), str(row["dropped"]), f"{100 * row['kept'] / total:.0f}" if total else "-", top)
        console.print(t)
    if view.get("dedup"):
        d = view["dedup"]
        console.print(f"dedup: {d['documents']} documents, {d['exact_removed']} exact + {d['near_removed']} near duplicates "
                      f"removed, {d['clusters']} clusters (sizes {d['cluster_sizes']})", highlight=False)
    if view.get("tokens"):
        t = view["tokens"]
        console.print(f"tokens: {t['train_tokens']} train ({t['train_docs']} docs), {t['val_tokens']} val ({t['val_docs']} docs)",
                      highlight=False)


# --- inspect -----------------------------------------------------------------------------------------

def inspect_documents(run_dir: Path, reason: str | None, kept: bool, n: int, seed: int, console: Console,
                      as_json: bool = False) -> int:
    """Print up to `n` documents dropped for `reason` (or kept ones), their scores and highlighted spans."""
    from gristmill.pipeline.tools.report_html import sample_documents

    samples = sample_documents(run_dir, per_reason=n, seed=seed, reasons=None if kept else [reason], kept=kept)
    docs = samples.get("kept" if kept else reason, [])
    if as_json:
        sys.stdout.write(json.dumps([{k: v for k, v in d.items()} for d in docs], indent=2, default=str) + "\n")
        return len(docs)
    if not docs:
        known = sorted(k for k in sample_documents(run_dir, per_reason=1, seed=seed))
        console.print(f"no documents {'kept' if kept else f'dropped as {reason!r}'}; reasons with documents: {', '.join(known) or 'none'}",
                      highlight=False)
        return 0
    from gristmill.filters.evidence import redact

    for i, doc in enumerate(docs, 1):
        console.rule(f"{i}/{len(docs)}  {doc['id']}  {doc['drop_reason'] or 'kept'}")
        console.print(f"{redact(doc['url'] or '')[0]}  language {doc['language']}", highlight=False)
        if doc.get("rule"):
            rule = doc["rule"]
            console.print(f"[bold]rule:[/] {rule['column']} {rule['op']} {rule['threshold']} (this document: {rule['value']})")
        if doc.get("dup_cluster_id"):
            console.print(f"[bold]duplicate of[/] {doc['dup_cluster_id']}")
        scores = Table(show_header=False, box=None)
        for name, value in doc["scores"].items():
            scores.add_row(name, f"{value:.4g}" if isinstance(value, float) else str(value))
        console.print(scores)
        text = doc["text"][:2000]
        out, pos = Text(), 0
        for start, end, label in doc["spans"]:
            if start >= len(text):
                break
            out.append(redact(text[pos:start])[0])
            out.append(redact(text[start:min(end, len(text))])[0], style="black on yellow")
            pos = min(end, len(text))
        out.append(redact(text[pos:])[0])
        if len(doc["text"]) > len(text):
            out.append(f" … [{len(doc['text']) - len(text)} more characters]", style="dim")
        console.print(out)
        if doc["spans"]:
            console.print(f"[dim]highlighted: {len(doc['spans'])} span(s): {doc['spans'][0][2]}[/]")
    return len(docs)


# --- rethreshold -------------------------------------------------------------------------------------

def print_rethreshold(result, console: Console) -> None:
    before = {row["stage"]: row for row in result.before.get("funnel", [])}
    table = Table(title="what-if: " + ", ".join(f"{k}={v}" for k, v in result.changes.items()))
    for name in ("stage", "dropped before", "dropped after", "remaining before", "remaining after", "change"):
        table.add_column(name, justify="left" if name == "stage" else "right")
    for row in result.funnel:
        old = before.get(row["stage"], {"dropped": {}, "remaining": 0})
        d_old = sum(old["dropped"].values()) + old.get("quarantined", 0)
        d_new = sum(row["dropped"].values()) + row.get("quarantined", 0)
        delta = row["remaining"] - old["remaining"]
        table.add_row(row["stage"], str(d_old), str(d_new), str(old["remaining"]), str(row["remaining"]),
                      f"{delta:+d}" if delta else "")
    console.print(table)
    old_kept = result.before["ledger"]["kept"]
    console.print(f"kept: {old_kept} → {result.ledger.kept} ({result.ledger.kept - old_kept:+d}); "
                  f"{result.newly_kept} newly kept, {result.newly_dropped} newly dropped", highlight=False)
    if result.written:
        console.print(f"new curated set written to {result.written} (not tokenized)", highlight=False)
