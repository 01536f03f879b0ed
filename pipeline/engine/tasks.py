"""Running one function over many calls as Ray tasks, a bounded window at a time, results folded as they end.

The global steps read a run's parts in groups; each group is one call. With Ray initialized the calls run
as tasks, at most a window in flight, so the driver holds a window of references and one result at a
time however many calls a step makes; without Ray they run here, one after the other, with the same
results in the same fold order (calls are folded in call order either way, so a fold that is not
commutative still gives one answer).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable


def map_tasks(fn: Callable, calls: Iterable[tuple], fold: Callable[[int, object], None], workers: int | None = None) -> None:
    """`fold(i, fn(*calls[i]))` for every call, in call order. With Ray: tasks of cpus/workers CPUs each
    (engine.cluster.task_cpus), at most 4 × workers in flight; a finished result waits for the ones before
    it, so the held results are bounded by the window too."""
    try:
        import ray

        distributed = ray.is_initialized()
    except ImportError:
        distributed = False
    if not distributed:
        for i, args in enumerate(calls):
            fold(i, fn(*args))
        return
    from gristmill.pipeline.engine.cluster import task_cpus

    workers, cpus = task_cpus(workers)
    remote = ray.remote(fn).options(num_cpus=cpus, max_retries=3)
    calls, window = iter(enumerate(calls)), 4 * workers
    running: dict = {}  # ref → call index
    finished: dict[int, object] = {}
    next_fold = 0
    while True:
        for i, args in calls:
            running[remote.remote(*args)] = i
            if len(running) + len(finished) >= window:
                break
        if not running and not finished:
            return
        if running:
            done, _ = ray.wait(list(running), num_returns=1)
            for ref in done:
                finished[running.pop(ref)] = ray.get(ref)
        while next_fold in finished:
            fold(next_fold, finished.pop(next_fold))
            next_fold += 1
