"""One input split, start to finish, on a worker: read it in bounded batches, run the per-batch stages and
the decide step on each batch, write its part files, and last its completion record (writers.py).

    source.rows(path) ─► batched(rows, bytes) ─► stage … stage ─► decide ─► SplitOutputs ─► done/{split}.json

`SplitWorker` is the Ray actor the runner keeps a fixed pool of (one per worker CPU): its stages load their
models once per actor, and each `process(task)` call handles one split of one input file. The read is
fused into the same call, so page bodies never enter Ray's object store; what the call returns is the
completion record, a few KB of counts (the driver never receives a row). Memory is bounded by one batch:
`batch_size` rows and `batch_bytes` bytes, one record at most past that (capped by the source's
`max_page_bytes` / `max_record_bytes`), plus the Parquet writers' buffers. The scorers' scratch for one
document is bounded too (they split long texts in pieces), and after each stage the worker hands freed
pages back (pipeline/engine/process.py), so a page near max_page_bytes does not leave its peak resident.

A split that fails half-way (the actor is killed: Ray restarts it and retries the call) starts over:
`process` first removes what an earlier attempt left (record, then part files), so a retry writes the
same names and counts every record once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from gristmill.pipeline.engine.faults import fault_point
from gristmill.pipeline.engine.process import release_memory
from gristmill.pipeline.sources.base import WHOLE, SplitRange, SplitReport, batched
from gristmill.pipeline.stages.base import Stage
from gristmill.pipeline.engine.writers import ROWS_PER_FILE, SplitOutputs
from gristmill.schemas.stats import StageStats

SOURCE_STAGE = "source"


@dataclass(frozen=True)
class SplitTask:
    """Split `split` of the `count` splits of input file `index` (its position in the run's sorted
    inputs), read by source `source`: the records `range` owns (splits.py)."""

    index: int
    split: int
    path: str
    source: int
    range: SplitRange = WHOLE
    count: int = 1


def node_id() -> str:
    import ray

    return ray.get_runtime_context().get_node_id() if ray.is_initialized() else "local"


def worker_id() -> str:
    """The Ray actor running this call (a restarted actor keeps its id), or "local"."""
    import ray

    return (ray.get_runtime_context().get_actor_id() or "local") if ray.is_initialized() else "local"


class SplitWorker:
    """Reads, scores, decides and writes input splits; `process` returns each one's completion record."""

    def __init__(self, sources: list, stages: list[Stage], work_dir: str, batch_size: int, batch_bytes: int,
                 rows_per_file: int = ROWS_PER_FILE):
        self.sources, self.stages, self.work_dir = sources, stages, Path(work_dir)
        self.batch_size, self.batch_bytes, self.rows_per_file = batch_size, batch_bytes, rows_per_file

    def process(self, task: SplitTask) -> str:
        fault_point("read")
        outputs = SplitOutputs(self.work_dir, task.index, task.split, task.path, self.rows_per_file)
        outputs.clear()
        for stage in self.stages:
            stage.stats = StageStats(stage.name)
        read = StageStats(SOURCE_STAGE, rows_in=1)
        report = SplitReport()
        batches = batched(self.sources[task.source].rows(task.path, task.range, report), self.batch_size, self.batch_bytes)
        while True:
            started = time.perf_counter()
            batch = next(batches, None)
            read.seconds += time.perf_counter() - started
            if batch is None:
                break
            read.rows_out += batch.num_rows
            read.batches += 1
            read.counts["records_read"] += batch.num_rows
            for stage in self.stages:
                fault_point(f"stage:{stage.name}")
                batch = stage(batch)
                release_memory()  # what a stage freed (a big page's scratch) is not left under the next one's peak
            outputs.write(batch)
            fault_point("write:batch")
        read.counts["files"] += task.split == 0  # a file counts once, however many splits it has
        record = outputs.finish([read, *(stage.stats for stage in self.stages)], node=node_id(),
                                split={"count": task.count, "worker": worker_id(), **report.to_dict()})
        fault_point("write:input")
        return record
