"""What every stage is: a callable class that takes and returns a `pyarrow.Table`.

A stage is built with its config on the driver (cheap: no model is loaded), shipped to the Ray actors,
and set up there on its first batch (`setup()`: models, sandboxes; once per actor, never at import).
It declares the columns it `reads` and `writes` (constants from `schemas.columns`); the runner checks
`reads` against what upstream writes before launching anything. A stage whose scores are judged by
thresholds returns them from `rules()`; only the decide step applies them.

Stages score only the rows that are still documents (no `skip_reason`, no `quarantine_reason`); the
other rows pass through with nulls in the written columns, so every row reaches the writers.
Per batch, a stage adds its `StageStats` to `self.stats`; the worker resets it at the start of each input
split and puts the sums into that split's completion record (pipeline/engine/input_task.py), so a worker that
dies mid-split leaves no counts behind and its retry counts the split once.
"""

from __future__ import annotations

import time
from collections import Counter

import pyarrow as pa
import pyarrow.compute as pc

from gristmill.schemas import columns as C
from gristmill.schemas.stats import StageStats


def active_mask(table: pa.Table) -> pa.ChunkedArray:
    """True for rows that are still documents."""
    if table.num_rows == 0:
        return pa.chunked_array([pa.array([], pa.bool_())])
    return pc.and_(pc.is_null(table[C.SKIP_REASON]), pc.is_null(table[C.QUARANTINE_REASON]))


def set_column(table: pa.Table, name: str, values) -> pa.Table:
    """Add or replace a column, typed by `schemas.columns.TYPES`."""
    array = values if isinstance(values, (pa.Array, pa.ChunkedArray)) else pa.array(values, type=C.TYPES[name])
    index = table.schema.get_field_index(name)
    if index >= 0:
        return table.set_column(index, pa.field(name, C.TYPES[name]), array)
    return table.append_column(pa.field(name, C.TYPES[name]), array)


class Stage:
    # Class-level defaults; a stage whose columns depend on its config sets them per instance.
    name: str = "stage"
    reads: tuple[str, ...] = ()
    writes: tuple[str, ...] = ()
    # Columns this stage removes (e.g. the raw body once text is extracted).
    drops: tuple[str, ...] = ()

    def __init__(self, config=None):
        self.config = config
        self.stats = StageStats(self.name)  # this stage's counters since the worker last reset them
        self._ready = False

    def rules(self) -> list:
        """Thresholds on this stage's scores (`decide.Rule`s), applied by the decide step in order. From the
        config alone: building rules never loads a model, a list or an index (`decide.rules_of`)."""
        return []

    def prepare(self) -> None:
        """On the driver, once, before a run ships the stage to its workers: build what every worker
        shares (an index, parsed lists) and report a bad config before anything runs. Constructing a
        stage stays cheap, so the report and rethreshold can build stages for their rules alone."""

    def setup(self) -> None:
        """Load models, start sandboxes: once per worker, before the first batch."""

    def process(self, table: pa.Table, counts: Counter) -> pa.Table:
        raise NotImplementedError

    def __call__(self, table: pa.Table) -> pa.Table:
        if not self._ready:
            self.setup()
            self._ready = True
        started = time.perf_counter()
        counts: Counter = Counter()
        has_status = C.SKIP_REASON in table.column_names
        active = int(pc.sum(active_mask(table)).as_py() or 0) if table.num_rows and has_status else table.num_rows
        out = self.process(table, counts)
        stats = StageStats(
            self.name,
            rows_in=table.num_rows,
            rows_out=out.num_rows,
            rows_skipped=table.num_rows - active,
            bytes_in=self.bytes_in(table),
            seconds=time.perf_counter() - started,
            batches=1,
            counts=counts,
        )
        self.stats = stats if self.stats.stage != self.name else self.stats + stats
        return out

    def bytes_in(self, table: pa.Table) -> int:
        if C.TEXT in table.column_names:
            return int(pc.sum(pc.binary_length(table[C.TEXT])).as_py() or 0)
        return 0
