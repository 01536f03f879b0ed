"""Kept vs dropped by language and by registered domain, counted from a run's written documents.

Counts the documents that reached scoring (no `skip_reason`: WARC requests, non-HTML responses and
the like are not documents and would drown the breakdown), from curated/ and rejected/ after dedup, so
what is counted is what was written. The domain table keeps the `TOP_DOMAINS` largest domains (by
documents, ties by name) and folds the rest into one "(other)" row, so its size is bounded at any scale.

    {"documents": n,
     "language": {"en": {"kept": n, "dropped": n, "reasons": {reason: n}}, ...},
     "domain":   {"example.com": {...}, "(other)": {...}},
     "domains_total": distinct domains}
"""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq

from gristmill.pipeline.parquet_read import batches
from gristmill.schemas import columns as C

TOP_DOMAINS = 25
OTHER = "(other)"
UNKNOWN = "(none)"
_BATCH_ROWS = 8192


def _row() -> dict:
    return {"kept": 0, "dropped": 0, "reasons": Counter()}


def _finish(rows: dict) -> dict:
    return {key: {"kept": r["kept"], "dropped": r["dropped"], "reasons": dict(sorted(r["reasons"].items()))}
            for key, r in rows.items()}


def breakdown_of(run_dir: str | Path, top_domains: int = TOP_DOMAINS) -> dict:
    from gristmill.pipeline.shuffle import registered_domain

    run_dir = Path(run_dir)
    language: dict[str, dict] = defaultdict(_row)
    domain: dict[str, dict] = defaultdict(_row)
    documents = 0
    files = sorted((run_dir / "curated").glob("*.parquet")) + sorted((run_dir / "rejected").glob("*.parquet"))
    for path in files:
        parquet = pq.ParquetFile(path)
        names = set(parquet.schema_arrow.names)
        columns = [c for c in (C.URL, C.LANGUAGE, C.KEEP, C.DROP_REASON, C.SKIP_REASON) if c in names]
        for batch in batches(parquet, _BATCH_ROWS, columns):
            if C.SKIP_REASON in names:
                batch = batch.filter(pc.is_null(batch.column(C.SKIP_REASON)))
            n = batch.num_rows
            urls = batch.column(C.URL).to_pylist() if C.URL in names else [None] * n
            langs = batch.column(C.LANGUAGE).to_pylist() if C.LANGUAGE in names else [None] * n
            keeps = batch.column(C.KEEP).to_pylist()
            reasons = batch.column(C.DROP_REASON).to_pylist()
            for url, lang, keep, reason in zip(urls, langs, keeps, reasons):
                documents += 1
                for row in (language[lang or UNKNOWN], domain[registered_domain(url) or UNKNOWN]):
                    if keep:
                        row["kept"] += 1
                    else:
                        row["dropped"] += 1
                        row["reasons"][reason or "unknown"] += 1
    ranked = sorted(domain, key=lambda d: (-(domain[d]["kept"] + domain[d]["dropped"]), d))
    top = {d: domain[d] for d in ranked[:top_domains]}
    if len(ranked) > top_domains:
        other = _row()
        for d in ranked[top_domains:]:
            other["kept"] += domain[d]["kept"]
            other["dropped"] += domain[d]["dropped"]
            other["reasons"].update(domain[d]["reasons"])
        top[OTHER] = other
    by_language = dict(sorted(language.items(), key=lambda kv: (-(kv[1]["kept"] + kv[1]["dropped"]), kv[0])))
    return {"documents": documents, "language": _finish(by_language), "domain": _finish(top),
            "domains_total": len(domain)}
