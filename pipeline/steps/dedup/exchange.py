"""A hash shuffle on plain Ray tasks. A step is a set of tasks; each task receives a list of pieces (object
references resolved by Ray), returns small stats (fetched by the driver) and one piece per partition of
the next step (left in the object store). Piece i of every task of one step is the input of task i of
the next. Memory per task: its inputs and outputs; the driver holds references and stats only.

Every reduce is a function of the SET of rows it receives (each sorts its input first), so the outcome
does not depend on the partition count or on which worker ran what.
"""

from __future__ import annotations

import ray

from gristmill.pipeline.engine.process import release_memory


# Ray returns a task output under max_direct_call_object_size (100 KB) inline to its owner, the driver,
# which then holds it in its own memory. A shuffle's pieces shrink as the partition counts grow, so at
# 1M documents the driver held many of them (VmHWM 200 → 239 MB from 100k to 1M). The setting is read by
# the process that runs the task, so the dedup tasks get their own workers with it lowered: every piece
# goes to the object store, on a local Ray and on a cluster alike, and the driver holds references only.
INLINE_BYTES = 1024
_RUNTIME_ENV = {"env_vars": {"RAY_max_direct_call_object_size": str(INLINE_BYTES)}}


@ray.remote
def _step(fn, partitions: int, extra, *pieces):
    stats, outputs = fn(extra, list(pieces))
    del pieces
    release_memory(collect_garbage=True)  # worker processes are reused: hand freed pages back so peaks do not pile up
    if len(outputs) != partitions:
        raise AssertionError(f"step returned {len(outputs)} pieces for {partitions} partitions")
    return (stats, *outputs) if partitions else stats


class Exchange:
    def __init__(self, cpus_per_task: float = 1.0):
        self.cpus = cpus_per_task

    def step(self, fn, extras: list, inputs: list[list] | None, partitions: int) -> tuple[list, list[list]]:
        """Run `fn(extra, pieces) -> (stats, [piece per partition])` once per extra.

        `inputs[t]` are the pieces of task t (None: no pieces). Returns (stats per task, out[t][partition]).
        """
        refs = []
        for t, extra in enumerate(extras):
            pieces = inputs[t] if inputs is not None else []
            ref = _step.options(num_returns=partitions + 1, num_cpus=self.cpus, runtime_env=_RUNTIME_ENV).remote(
                fn, partitions, extra, *pieces)
            refs.append(ref if partitions else [ref])
        stats = ray.get([r[0] for r in refs])
        return stats, [list(r[1:]) for r in refs]

    @staticmethod
    def transpose(outputs: list[list], partitions: int) -> list[list]:
        """out[task][partition] → the input pieces of each task of the next step."""
        return [[task_out[p] for task_out in outputs] for p in range(partitions)]
