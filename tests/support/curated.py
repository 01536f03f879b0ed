"""Curated folders as the writers leave them, written directly: for the tokenize and shard tests."""

from __future__ import annotations

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
