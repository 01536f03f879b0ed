"""The corpus representation report (as in the Llama 2 data card): the share of documents that mention
each pronoun class, each identity axis and each descriptor, BEFORE filtering (every document the bias
stage tagged, from its counters) and AFTER (the curated set once dedup is done, from curated/).

    stats["representation"] = {"before": R, "after": R}
    R = {"documents": int, "pronouns": {"she": share, "he": share, "they": share},
         "axes": {axis: share}, "descriptors": {axis: {term: share}}}     # share = fraction of documents

Both reports list the same keys (a descriptor seen only before filtering has share 0 after), so a
group whose mentions the filters removed shows up as a drop, not as a missing row.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from gristmill.schemas import columns as C

PRONOUN_CLASSES = ("she", "he", "they")
DOCUMENTS = "documents"


def count_document(counts: Counter, pronouns: list[str], descriptors: list[str]) -> None:
    """Add one document's tags to `counts` (keys: documents, pronoun:X, axis:A, descriptor:A:T)."""
    counts[DOCUMENTS] += 1
    for pronoun in pronouns:
        counts[f"pronoun:{pronoun}"] += 1
    for axis in dict.fromkeys(d.split(":", 1)[0] for d in descriptors):
        counts[f"axis:{axis}"] += 1
    for descriptor in descriptors:
        counts[f"descriptor:{descriptor}"] += 1


def counts_of_curated(curated: Path) -> Counter:
    """The same counters, over every row of curated/*.parquet."""
    import pyarrow.parquet as pq

    counts: Counter = Counter()
    for path in sorted(Path(curated).glob("*.parquet")):
        schema = pq.read_schema(path)
        if C.IDENTITY_DESCRIPTORS not in schema.names:
            continue
        table = pq.read_table(path, columns=[C.PRONOUN_CLASSES, C.IDENTITY_DESCRIPTORS])
        for pronouns, descriptors in zip(table[C.PRONOUN_CLASSES].to_pylist(), table[C.IDENTITY_DESCRIPTORS].to_pylist()):
            count_document(counts, pronouns or [], descriptors or [])
    return counts


def report(counts: Counter, axes: set[str] = frozenset(), descriptors: set[str] = frozenset()) -> dict:
    """Counters → R (shares rounded to 6 places); `axes`/`descriptors` ("axis:term") are listed even at 0."""
    n = counts.get(DOCUMENTS, 0)

    def share(key: str) -> float:
        return round(counts.get(key, 0) / n, 6) if n else 0.0

    axes = set(axes) | {k.split(":", 1)[1] for k in counts if k.startswith("axis:")}
    descriptors = set(descriptors) | {k.split(":", 1)[1] for k in counts if k.startswith("descriptor:")}
    by_axis: dict[str, dict[str, float]] = {}
    for descriptor in sorted(descriptors):
        axis, term = descriptor.split(":", 1)
        by_axis.setdefault(axis, {})[term] = share(f"descriptor:{descriptor}")
    return {
        "documents": n,
        "pronouns": {p: share(f"pronoun:{p}") for p in PRONOUN_CLASSES},
        "axes": {axis: share(f"axis:{axis}") for axis in sorted(axes)},
        "descriptors": by_axis,
    }


def before_after(before: Counter, after: Counter) -> dict:
    """{"before": R, "after": R} over the union of the axes and descriptors either side saw."""
    axes = {k.split(":", 1)[1] for k in (*before, *after) if k.startswith("axis:")}
    descriptors = {k.split(":", 1)[1] for k in (*before, *after) if k.startswith("descriptor:")}
    return {"before": report(before, axes, descriptors), "after": report(after, axes, descriptors)}
