"""ScoreFunction: a user's scorer from a plain function, treated like a built-in score.

    ScoreFunction("digit_ratio", lambda text: sum(c.isdigit() for c in text) / max(len(text), 1),
                  drop_above=0.2, low=0.0, high=1.0, meaning="share of digit characters")

The column is registered with its range and meaning (it shows in stats and score summaries), its
threshold becomes a decide rule, and a drop is reported as `user:<column>` (or the namespaced reason
you give).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import pyarrow as pa

from gristmill.pipeline.stages.decide import Rule
from gristmill.pipeline.stages.base import Stage, active_mask, set_column
from gristmill.schemas import columns as C
from gristmill.schemas import reasons as R


class ScoreFunction(Stage):
    def __init__(self, column: str, fn: Callable[[str], float], *, drop_below: float | None = None,
                 drop_above: float | None = None, reason: str | None = None, low: float | None = None,
                 high: float | None = None, meaning: str = ""):
        super().__init__({"fn": fn, "drop_below": drop_below, "drop_above": drop_above})
        self.name = column
        self.reads = (C.TEXT,)
        self.writes = (column,)
        self.reason = reason or f"user:{column}"
        self.score = (column, low, high, meaning or f"user score {column}")
        self._register()

    def _register(self) -> None:
        # Registries are per process: register on the driver (stats, funnel) and again on each worker.
        C.register_score(*self.score)
        R.register(self.reason, self.name, f"{self.name} outside its threshold")

    def setup(self) -> None:
        self._register()

    def rules(self) -> list[Rule]:
        column = self.writes[0]
        rules = []
        if self.config["drop_below"] is not None:
            rules.append(Rule(self.reason, column, "<", self.config["drop_below"]))
        if self.config["drop_above"] is not None:
            rules.append(Rule(self.reason, column, ">", self.config["drop_above"]))
        return rules

    def process(self, table: pa.Table, counts: Counter) -> pa.Table:
        fn = self.config["fn"]
        values = [float(fn(text)) if is_doc else None
                  for is_doc, text in zip(active_mask(table).to_pylist(), table[C.TEXT].to_pylist())]
        counts["scored"] += sum(v is not None for v in values)
        return set_column(table, self.writes[0], values)
