"""The corpus representation report (as in the Llama 2 data card, but counting people, not words): per
pronoun class, identity axis and descriptor, the share of documents that use it for people and the
number of sentences that do (mentions of people), BEFORE filtering (every document the bias stage
tagged, from its counters) and AFTER (the curated set once dedup is done, from curated/).

    stats["representation"] = {"before": R, "after": R}
    R = {"documents": int, "sentences": int,
         "pronouns": {"she": share, "he": share, "they": share},
         "axes": {axis: share}, "descriptors": {axis: {term: share}},       # share = fraction of documents
         "mentions": {"pronouns": {...}, "axes": {...}, "descriptors": {...}}}  # the same keys: sentences

Both reports list the same keys (a descriptor seen only before filtering has share 0 after), so a
group whose mentions the filters removed shows up as a drop, not as a missing row. Compare mentions
before and after as a rate per sentence (`sentences` is each side's total).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from gristmill.schemas import columns as C

PRONOUN_CLASSES = ("she", "he", "they")
DOCUMENTS = "documents"
SENTENCES = "sentences"
MENTIONS = "mentions:"  # counter keys "mentions:pronoun:she", "mentions:axis:age", "mentions:descriptor:age:old"


@dataclass(frozen=True)
class DocumentTags:
    """One document's tags and, per tag, the sentences that use it for people (same order)."""

    pronouns: tuple[str, ...] = ()
    pronoun_mentions: tuple[int, ...] = ()
    axes: tuple[str, ...] = ()
    axis_mentions: tuple[int, ...] = ()
    descriptors: tuple[str, ...] = ()  # "axis:term"
    descriptor_mentions: tuple[int, ...] = ()
    sentences: int = 0

    @classmethod
    def of(cls, tags) -> "DocumentTags":
        """From `filters.identity.Tags`."""
        descriptors = tuple(f"{axis}:{term}" for axis in tags.axes for term in tags.descriptors[axis])
        return cls(tags.pronouns, tuple(tags.pronoun_sentences[p] for p in tags.pronouns),
                   tags.axes, tuple(tags.axis_sentences[a] for a in tags.axes),
                   descriptors, tuple(tags.descriptor_sentences[d] for d in descriptors), tags.sentences)

    def columns(self) -> dict[str, object]:
        return {C.PRONOUN_CLASSES: list(self.pronouns), C.PRONOUN_SENTENCE_COUNTS: list(self.pronoun_mentions),
                C.IDENTITY_AXES: list(self.axes), C.IDENTITY_AXIS_SENTENCE_COUNTS: list(self.axis_mentions),
                C.IDENTITY_DESCRIPTORS: list(self.descriptors),
                C.IDENTITY_DESCRIPTOR_SENTENCE_COUNTS: list(self.descriptor_mentions),
                C.REPRESENTATION_SENTENCE_COUNT: self.sentences}

    @classmethod
    def from_row(cls, row: dict) -> "DocumentTags":
        """From a curated row (columns() names); a row written before issue 25 has no mention counts."""
        def values(name):
            return tuple(row.get(name) or ())

        return cls(values(C.PRONOUN_CLASSES), values(C.PRONOUN_SENTENCE_COUNTS), values(C.IDENTITY_AXES),
                   values(C.IDENTITY_AXIS_SENTENCE_COUNTS), values(C.IDENTITY_DESCRIPTORS),
                   values(C.IDENTITY_DESCRIPTOR_SENTENCE_COUNTS), row.get(C.REPRESENTATION_SENTENCE_COUNT) or 0)


def count_document(counts: Counter, doc: DocumentTags) -> None:
    """Add one document's tags to `counts` (keys: documents, sentences, pronoun:X, axis:A, descriptor:A:T,
    and mentions:<the same> for the sentences)."""
    counts[DOCUMENTS] += 1
    counts[SENTENCES] += doc.sentences
    for kind, names, mentions in (("pronoun", doc.pronouns, doc.pronoun_mentions), ("axis", doc.axes, doc.axis_mentions),
                                  ("descriptor", doc.descriptors, doc.descriptor_mentions)):
        for name in names:
            counts[f"{kind}:{name}"] += 1
        for name, n in zip(names, mentions):
            counts[f"{MENTIONS}{kind}:{name}"] += n


def _count_files(paths: list[str]) -> Counter:
    import pyarrow.parquet as pq

    from gristmill.pipeline.engine.parquet_read import batches

    counts: Counter = Counter()
    for path in paths:
        parquet = pq.ParquetFile(path)
        names = parquet.schema_arrow.names
        if C.IDENTITY_DESCRIPTORS not in names:
            continue
        wanted = [c for c in DocumentTags().columns() if c in names]
        for batch in batches(parquet, 8192, wanted):
            for row in batch.to_pylist():
                count_document(counts, DocumentTags.from_row(row))
    return counts


def counts_of_curated(curated: Path) -> Counter:
    """The same counters, over every row of curated/*.parquet: by Ray tasks over groups of part files
    when Ray is initialized (engine.tasks.map_tasks; the driver adds their counters, whose size is the tag
    vocabulary's), else in this process, a batch at a time."""
    import pyarrow.parquet as pq

    from gristmill.pipeline.engine.parquet_read import groups_of
    from gristmill.pipeline.engine.tasks import map_tasks

    paths = [str(p) for p in sorted(Path(curated).glob("*.parquet"))]
    rows = [pq.ParquetFile(p).metadata.num_rows for p in paths]
    counts: Counter = Counter()
    map_tasks(_count_files, [([paths[i] for i in group],) for group in groups_of(rows, 200_000)],
              lambda _, part: counts.update(part))
    return counts


def report(counts: Counter, axes: set[str] = frozenset(), descriptors: set[str] = frozenset()) -> dict:
    """Counters → R (shares rounded to 6 places); `axes`/`descriptors` ("axis:term") are listed even at 0."""
    n = counts.get(DOCUMENTS, 0)

    def share(key: str) -> float:
        return round(counts.get(key, 0) / n, 6) if n else 0.0

    def mentions(key: str) -> int:
        return counts.get(MENTIONS + key, 0)

    axes = set(axes) | {k.split(":", 1)[1] for k in counts if k.startswith("axis:")}
    descriptors = set(descriptors) | {k.split(":", 1)[1] for k in counts if k.startswith("descriptor:")}
    by_axis: dict[str, dict[str, float]] = {}
    mentions_by_axis: dict[str, dict[str, int]] = {}
    for descriptor in sorted(descriptors):
        axis, term = descriptor.split(":", 1)
        by_axis.setdefault(axis, {})[term] = share(f"descriptor:{descriptor}")
        mentions_by_axis.setdefault(axis, {})[term] = mentions(f"descriptor:{descriptor}")
    return {
        "documents": n,
        "sentences": counts.get(SENTENCES, 0),
        "pronouns": {p: share(f"pronoun:{p}") for p in PRONOUN_CLASSES},
        "axes": {axis: share(f"axis:{axis}") for axis in sorted(axes)},
        "descriptors": by_axis,
        "mentions": {"pronouns": {p: mentions(f"pronoun:{p}") for p in PRONOUN_CLASSES},
                     "axes": {axis: mentions(f"axis:{axis}") for axis in sorted(axes)},
                     "descriptors": mentions_by_axis},
    }


def before_after(before: Counter, after: Counter) -> dict:
    """{"before": R, "after": R} over the union of the axes and descriptors either side saw."""
    axes = {k.split(":", 1)[1] for k in (*before, *after) if k.startswith("axis:")}
    descriptors = {k.split(":", 1)[1] for k in (*before, *after) if k.startswith("descriptor:")}
    return {"before": report(before, axes, descriptors), "after": report(after, axes, descriptors)}


def per_thousand(mentions: int, sentences: int) -> float:
    """Mentions per 1,000 sentences (0 when there are none)."""
    return round(1000 * mentions / sentences, 2) if sentences else 0.0
