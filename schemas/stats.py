"""Stats and the ledger: counters that merge with `+`, and the format of `stats.json`.

Each stage writes a `StageStats` per batch; the runner sums them (`sum(parts, StageStats(name))`).
The ledger proves that every record read ends in exactly one place:
`input == kept + sum(dropped.values()) + quarantined`.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import asdict, dataclass, field

STATS_VERSION = 1
HISTOGRAM_BINS = 20


@dataclass
class StageStats:
    """Rows in/out of one stage, rows it skipped (already not documents), its seconds and counters."""

    stage: str
    rows_in: int = 0
    rows_out: int = 0
    rows_skipped: int = 0
    bytes_in: int = 0
    seconds: float = 0.0
    batches: int = 0
    counts: Counter = field(default_factory=Counter)

    def __add__(self, other: "StageStats") -> "StageStats":
        if other.stage != self.stage:
            raise ValueError(f"cannot add stats of {other.stage!r} to {self.stage!r}")
        return StageStats(
            self.stage,
            self.rows_in + other.rows_in,
            self.rows_out + other.rows_out,
            self.rows_skipped + other.rows_skipped,
            self.bytes_in + other.bytes_in,
            self.seconds + other.seconds,
            self.batches + other.batches,
            self.counts + other.counts,
        )

    def to_dict(self) -> dict:
        d = asdict(self)
        d["counts"] = dict(sorted(self.counts.items()))
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "StageStats":
        return cls(**{**d, "counts": Counter(d.get("counts", {}))})


def _add_exact(partials: list[float], values) -> None:
    """Add `values` to the exact sum that `partials` (non-overlapping floats) represents (Shewchuk's
    algorithm, as in Python's math.fsum recipe): the sum of a column does not depend on how its values
    were grouped into batches or splits, so a run's statistics do not depend on its batch sizes."""
    for x in values:
        i = 0
        for y in partials:
            if abs(x) < abs(y):
                x, y = y, x
            high = x + y
            low = y - (high - x)
            if low:
                partials[i] = low
                i += 1
            x = high
        partials[i:] = [x]


@dataclass
class Summary:
    """n, sum, min, max of a score column, plus a histogram over its declared [low, high] when bounded.
    The sum is kept exactly (`partials`; `total` is it correctly rounded), so summaries add up to the same
    figures whatever the batches, splits and order they were counted in."""

    n: int = 0
    total: float = 0.0
    low: float = math.inf
    high: float = -math.inf
    bounds: tuple[float, float] | None = None
    histogram: list[int] | None = None
    partials: list[float] | None = None

    def __post_init__(self):
        if self.partials is None:
            self.partials = [self.total] if self.total else []

    def add_values(self, values) -> None:
        import numpy as np

        arr = np.asarray([v for v in values if v is not None], dtype=np.float64)
        arr = arr[np.isfinite(arr)]
        if not len(arr):
            return
        self.n += len(arr)
        _add_exact(self.partials, arr.tolist())
        self.total = math.fsum(self.partials)
        self.low = min(self.low, float(arr.min()))
        self.high = max(self.high, float(arr.max()))
        if self.bounds is not None:
            counts, _ = np.histogram(np.clip(arr, *self.bounds), bins=HISTOGRAM_BINS, range=self.bounds)
            self.histogram = [a + int(b) for a, b in zip(self.histogram or [0] * HISTOGRAM_BINS, counts)]

    def __add__(self, other: "Summary") -> "Summary":
        hist = None
        if self.histogram or other.histogram:
            hist = [a + b for a, b in zip(self.histogram or [0] * HISTOGRAM_BINS, other.histogram or [0] * HISTOGRAM_BINS)]
        partials = list(self.partials)
        _add_exact(partials, other.partials)
        return Summary(self.n + other.n, math.fsum(partials), min(self.low, other.low),
                       max(self.high, other.high), self.bounds or other.bounds, hist, partials)

    def to_dict(self) -> dict:
        return {
            "n": self.n,
            "mean": self.total / self.n if self.n else None,
            "min": self.low if self.n else None,
            "max": self.high if self.n else None,
            "bounds": list(self.bounds) if self.bounds else None,
            "histogram": self.histogram,
        }


class LedgerError(AssertionError):
    """The run lost or duplicated records: its ledger does not sum."""


@dataclass
class Ledger:
    input: int = 0
    kept: int = 0
    dropped: Counter = field(default_factory=Counter)
    quarantined: int = 0

    def __add__(self, other: "Ledger") -> "Ledger":
        return Ledger(self.input + other.input, self.kept + other.kept, self.dropped + other.dropped,
                      self.quarantined + other.quarantined)

    @property
    def accounted(self) -> int:
        return self.kept + sum(self.dropped.values()) + self.quarantined

    def check(self, records_read: int | None = None) -> None:
        """Raise LedgerError unless input == kept + dropped + quarantined (== records the sources read)."""
        if self.accounted != self.input:
            raise LedgerError(f"ledger does not sum: input {self.input} != kept {self.kept} + dropped "
                              f"{sum(self.dropped.values())} + quarantined {self.quarantined}")
        if records_read is not None and records_read != self.input:
            raise LedgerError(f"sources read {records_read} records but {self.input} reached the writers")

    def to_dict(self) -> dict:
        return {"input": self.input, "kept": self.kept, "dropped": dict(sorted(self.dropped.items())),
                "quarantined": self.quarantined, "sums": self.accounted == self.input}

    @classmethod
    def from_dict(cls, d: dict) -> "Ledger":
        return cls(d["input"], d["kept"], Counter(d["dropped"]), d["quarantined"])


def funnel(ledger: Ledger, stage_order: list[str]) -> list[dict]:
    """The ledger as a funnel: per stage, the drops whose reason it owns and what remains after it.

    Reasons are attributed through the reason registry (`schemas.reasons`), so a plug-in's
    namespaced reasons land under the plug-in's stage.
    """
    from gristmill.schemas import reasons as R

    by_stage: dict[str, Counter] = {name: Counter() for name in stage_order}
    for reason, n in ledger.dropped.items():
        try:
            stage = R.get(reason).stage
        except KeyError:
            stage = reason.split(":", 1)[0] if ":" in reason else "unknown"
        by_stage.setdefault(stage, Counter())[reason] += n
    remaining = ledger.input - ledger.quarantined
    rows = [{"stage": "quarantine", "dropped": {}, "quarantined": ledger.quarantined, "remaining": remaining}]
    for stage, dropped in by_stage.items():
        remaining -= sum(dropped.values())
        rows.append({"stage": stage, "dropped": dict(sorted(dropped.items())), "remaining": remaining})
    return rows


@dataclass
class RunStats:
    """The content of RUN/stats.json."""

    ledger: Ledger
    stages: list[StageStats]
    scores: dict[str, Summary]
    sources: dict[str, dict]  # per input file: records, by WARC type, html responses, quarantined
    tokens: dict | None = None
    dedup: dict | None = None  # the global dedup step: removed, clusters, cluster sizes, bytes saved
    seconds: dict[str, float] = field(default_factory=dict)
    funnel: list[dict] = field(default_factory=list)
    crawl: dict | None = None  # per crawl source (by index): its folder and the crawler's stats
    # kept vs dropped documents by language and top registered domains (pipeline/steps/breakdown.py)
    breakdown: dict | None = None
    # {"documents_with_pii": n, "by_type": {entity: n}} from the PII stage; None without one
    pii: dict | None = None
    version: int = STATS_VERSION
    # {"before": R, "after": R}: documents per pronoun class / identity axis / descriptor (pipeline/steps/representation.py)
    representation: dict | None = None
    # the classifier's top-fraction cut (pipeline/steps/quality_cut.py); written only when it ran
    classifier_cut: dict | None = None

    def to_json(self) -> str:
        extra = {"classifier_cut": self.classifier_cut} if self.classifier_cut is not None else {}
        return json.dumps({
            "version": self.version,
            "ledger": self.ledger.to_dict(),
            "funnel": self.funnel,
            "stages": [s.to_dict() for s in self.stages],
            "scores": {k: v.to_dict() for k, v in sorted(self.scores.items())},
            "sources": self.sources,
            "tokens": self.tokens,
            "dedup": self.dedup,
            "seconds": self.seconds,
            "crawl": self.crawl,
            "breakdown": self.breakdown,
            "representation": self.representation,
            **extra,
            **({"pii": self.pii} if self.pii is not None else {}),
        }, indent=2) + "\n"
