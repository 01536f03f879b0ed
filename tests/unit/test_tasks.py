"""engine.tasks.map_tasks: every result folded once, in call order, with the running tasks and the held
results bounded by the window however slow the first call is. Ray's scheduling is replaced by a stand-in
(named as such) that finishes the newest task first and call 0 last: the order a real cluster can produce
and a 2-CPU test cluster hardly ever does."""

from __future__ import annotations

import sys
import types

import pytest

import gristmill.pipeline.engine.cluster as cluster
from gristmill.pipeline.engine.tasks import map_tasks


class _StandInRay(types.ModuleType):
    """A stand-in for ray's remote/wait/get, enough for map_tasks: results are computed at submission and
    handed back newest first, call 0 only when nothing else runs."""

    def __init__(self):
        super().__init__("ray")
        self.running: dict[int, object] = {}  # ref → result
        self.submitted = 0
        self.folded = 0
        self.peak_unfolded = 0

    def is_initialized(self) -> bool:
        return True

    def remote(self, fn):
        ray = self

        class Remote:
            def options(self, **_):
                return self

            def remote(self, *args):
                ref = ray.submitted
                ray.submitted += 1
                ray.running[ref] = fn(*args)
                ray.peak_unfolded = max(ray.peak_unfolded, ray.submitted - ray.folded)
                return ref

        return Remote()

    def wait(self, refs, num_returns=1):
        others = [r for r in refs if r != 0]
        return [max(others) if others else refs[0]], []

    def get(self, ref):
        return self.running.pop(ref)


@pytest.mark.parametrize("workers", [1, 2, 5])
def test_results_are_folded_in_call_order_and_the_window_bounds_what_is_held(monkeypatch, workers):
    ray = _StandInRay()
    monkeypatch.setitem(sys.modules, "ray", ray)
    monkeypatch.setattr(cluster, "task_cpus", lambda w: (w, 1.0))
    folded = []

    def fold(i, result):
        folded.append((i, result))
        ray.folded += 1

    map_tasks(lambda x: x * x, [(x,) for x in range(50)], fold, workers=workers)
    assert folded == [(x, x * x) for x in range(50)]
    assert ray.peak_unfolded <= 4 * workers
    assert not ray.running


def test_without_ray_the_calls_run_here_in_order(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", types.SimpleNamespace(is_initialized=lambda: False))
    folded = []
    map_tasks(lambda a, b: a + b, [(1, 2), (3, 4)], lambda i, r: folded.append((i, r)))
    assert folded == [(0, 3), (1, 7)]
