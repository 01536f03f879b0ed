"""Curated folders as the writers leave them, written directly: for the tokenize, shard and classifier-cut
tests."""

from __future__ import annotations

import math
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from gristmill.schemas import columns as C

SCHEMA = pa.schema([*C.schema_of(C.PROVENANCE_COLUMNS), pa.field(C.TEXT, C.TYPES[C.TEXT])])
WORDS = ("mill wheel river grain flour stone water miller sack barley rye oats spring summer autumn winter "
          "village market road cart horse bread oven baker field farmer harvest storm bridge ledger").split()


def write_curated(folder: Path, rows: list[dict], files: int = 1) -> Path:
    """Curated Parquet as the writers leave it: `files` part files, rows in order."""
    curated = folder / "curated"
    curated.mkdir(parents=True)
    per_file = -(-len(rows) // files) if rows else 0
    for f in range(files):
        part = [{name: None for name in C.PROVENANCE_COLUMNS} | row for row in rows[f * per_file : (f + 1) * per_file]]
        pq.write_table(pa.Table.from_pylist(part, schema=SCHEMA), curated / f"part-{f:05d}.parquet")
    return curated


def web_rows(n_sites: int = 24, seed: int = 7) -> list[dict]:
    """Documents from `n_sites` registered domains, several hosts each (www., blog., bare), 1-9 pages a
    site, plus a few documents without a URL: the shape of a small crawl."""
    rng = random.Random(seed)
    rows = []
    for s in range(n_sites):
        suffix = ("com", "org", "co.uk", "net")[s % 4]
        for p in range(rng.randint(1, 9)):
            host = (f"www.site{s}.{suffix}", f"blog.site{s}.{suffix}", f"site{s}.{suffix}")[p % 3]
            text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(20, 120)))
            rows.append({C.ID: f"s{s:02d}p{p}", C.URL: f"https://{host}/page/{p}", C.TEXT: f"Site {s} page {p}. {text}"})
    for k in range(3):
        rows.append({C.ID: f"nourl{k}", C.URL: None, C.TEXT: "A page without an address. " + " ".join(WORDS[k:k + 12])})
    return rows


def scored_documents(n: int, seed: int) -> list[tuple]:
    """(score, id): coarse scores with many ties, missing and NaN scores, ids that are prefixes of one
    another, non-ASCII and empty ids, None ids."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        roll = rng.random()
        score = None if roll < 0.03 else math.nan if roll < 0.05 else -0.0 if roll < 0.07 else rng.choice(
            [0.0, 0.25, 0.5, 0.5, 0.75, 1.0, rng.random(), rng.random() * 1e-300])
        doc_id = rng.choice([f"d{i}", f"d{i}x", f"é{i}", f"\U0001F600{i}", f"{i:06d}"])
        out.append((score, doc_id))
    return out


def write_scored_parts(folder, docs: list[tuple], parts: int) -> list[str]:
    curated = folder / "curated"
    curated.mkdir(parents=True)
    schema = pa.schema([pa.field(C.ID, pa.string()), pa.field(C.QUALITY_MODEL_SCORE, pa.float64()),
                        pa.field(C.SOURCE_FILE, pa.string()), pa.field(C.KEEP, pa.bool_()),
                        pa.field(C.DROP_REASON, pa.string())])
    size = -(-len(docs) // parts)
    paths = []
    for k in range(parts):
        chunk = docs[k * size:(k + 1) * size]
        table = pa.table({C.ID: [d[1] for d in chunk], C.QUALITY_MODEL_SCORE: [d[0] for d in chunk],
                          C.SOURCE_FILE: [f"in-{k % 3}.warc.gz"] * len(chunk), C.KEEP: [True] * len(chunk),
                          C.DROP_REASON: pa.nulls(len(chunk), pa.string())}, schema=schema)
        path = curated / f"part-{k:05d}.parquet"
        pq.write_table(table, path, row_group_size=97)
        paths.append(str(path))
    return paths
