"""Running one function over many calls as Ray tasks, a bounded window at a time, results folded as they end.

The global steps read a run's parts in groups; each group is one call. With Ray initialized the calls run
as tasks, at most a window in flight, so the driver holds a window of references and one result at a
time however many calls a step makes; without Ray they run here, one after the other, with the same
results in the same fold order (calls are folded in call order either way, so a fold that is not
commutative still gives one answer).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable


def map_tasks(fn: Callable, calls: Iterable[tuple], fold: Callable[[int, object], None], workers: int | None = None,
              max_retries: int = 3) -> None:
    """`fold(i, fn(*calls[i]))` for every call, in call order. With Ray: tasks of cpus/workers CPUs each
    (engine.cluster.task_cpus); running tasks and finished results that wait for an earlier call's are at
    most 4 × workers together, so a slow first call holds back new tasks, not memory. A task that dies is
    retried `max_retries` times: `fn` must be safe to run again."""
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
    remote = ray.remote(fn).options(num_cpus=cpus, max_retries=max_retries)
    calls, window = iter(enumerate(calls)), 4 * workers
    running: dict = {}  # ref → call index
    finished: dict[int, object] = {}  # results that wait for an earlier call's
    next_fold = 0
    while True:
        while len(running) + len(finished) < window and (call := next(calls, None)) is not None:
            running[remote.remote(*call[1])] = call[0]
        if not running:
            return  # nothing running: every result issued was folded (finished is empty then)
        done, _ = ray.wait(list(running), num_returns=1)
        for ref in done:
            finished[running.pop(ref)] = ray.get(ref)
        while next_fold in finished:
            fold(next_fold, finished.pop(next_fold))
            next_fold += 1
