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

import math
from collections import Counter, defaultdict
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq
import xxhash

from gristmill.pipeline.engine.parquet_read import batches
from gristmill.pipeline.engine.run_folder import RunFolder
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


def _count(paths: list[str]) -> tuple[dict, dict, int]:
    """(rows by language, rows by registered domain, documents) over these part files, a batch at a time."""
    from gristmill.pipeline.steps.token_shuffle import registered_domain

    language: dict[str, dict] = defaultdict(_row)
    domain: dict[str, dict] = defaultdict(_row)
    documents = 0
    for path in paths:
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
    return dict(language), dict(domain), documents


def _add(into: dict, rows: dict) -> None:
    for key, row in rows.items():
        target = into.setdefault(key, _row())
        target["kept"] += row["kept"]
        target["dropped"] += row["dropped"]
        target["reasons"].update(row["reasons"])


def _ranked(rows: dict) -> list[str]:
    return sorted(rows, key=lambda d: (-(rows[d]["kept"] + rows[d]["dropped"]), d))


def _top(domain: dict, top_domains: int) -> tuple[dict, dict, int]:
    """(the `top_domains` largest rows, the rest summed into one row, distinct domains)."""
    ranked = _ranked(domain)
    rest = _row()
    _add({OTHER: rest}, {d: domain[d] for d in ranked[top_domains:]})
    return {d: domain[d] for d in ranked[:top_domains]}, rest, len(ranked)


def _map_files(extra, pieces) -> tuple[dict, list]:
    paths, partitions = extra
    language, domain, documents = _count(paths)
    out = [{} for _ in range(partitions)]
    for name, row in domain.items():
        out[xxhash.xxh3_64_intdigest(name.encode("utf-8", "surrogatepass")) % partitions][name] = row
    return {"language": language, "documents": documents}, out


def _reduce_domains(extra, pieces) -> tuple[dict, list]:
    domain: dict[str, dict] = {}
    for piece in pieces:
        _add(domain, piece)
    top, rest, distinct = _top(domain, extra)
    return {"top": top, "rest": rest, "distinct": distinct}, []


# Documents per counting task (consecutive part files grouped), and per domain partition of the reduce.
ROWS_PER_TASK = 200_000
DOCUMENTS_PER_PARTITION = 5_000_000


def breakdown_of(run_dir: str | Path, top_domains: int = TOP_DOMAINS, workers: int | None = None) -> dict:
    """The breakdown of the module docstring. With Ray initialized, counted by Ray tasks over groups of
    part files whose per-domain rows are hash-partitioned to reduce tasks that each keep their top rows, so
    neither the driver nor any task holds every domain of a large run; without Ray, in this process. The
    same result either way."""
    files = RunFolder.of(run_dir).documents()
    language: dict[str, dict] = {}
    documents = 0
    candidates: dict[str, dict] = {}
    rest, distinct = _row(), 0
    try:
        import ray

        distributed = ray.is_initialized()
    except ImportError:
        distributed = False
    if distributed and files:
        from gristmill.pipeline.engine.parquet_read import groups_of
        from gristmill.pipeline.steps.dedup.exchange import Exchange

        rows = [pq.ParquetFile(f).metadata.num_rows for f in files]
        from gristmill.pipeline.engine.cluster import task_cpus

        workers, cpus_per_task = task_cpus(workers)
        # Partitions follow the rows only (map tasks × partitions pieces: not one partition per worker).
        partitions = max(1, math.ceil(sum(rows) / DOCUMENTS_PER_PARTITION))
        groups = [[str(files[i]) for i in group] for group in groups_of(rows, ROWS_PER_TASK)]
        exchange = Exchange(cpus_per_task=cpus_per_task)
        stats, out = exchange.step(_map_files, [(group, partitions) for group in groups], None, partitions)
        reduced, _ = exchange.step(_reduce_domains, [top_domains] * partitions, Exchange.transpose(out, partitions), 0)
        for s in stats:
            _add(language, s["language"])
            documents += s["documents"]
        for r in reduced:
            candidates.update(r["top"])  # partitions hold disjoint domains
            _add({OTHER: rest}, {OTHER: r["rest"]})
            distinct += r["distinct"]
    else:
        language, domain, documents = _count([str(f) for f in files])
        candidates, rest, distinct = _top(domain, top_domains)
    top, beyond, _ = _top(candidates, top_domains)  # the global top rows are among each partition's top rows
    _add({OTHER: rest}, {OTHER: beyond})
    if distinct > top_domains:
        top[OTHER] = rest
    by_language = dict(sorted(language.items(), key=lambda kv: (-(kv[1]["kept"] + kv[1]["dropped"]), kv[0])))
    return {"documents": documents, "language": _finish(by_language), "domain": _finish(top),
            "domains_total": distinct}
