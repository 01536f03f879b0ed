"""Fault-injection hook, for tests only: kill the current process at a named point of a run.

Off unless `GRISTMILL_FAULT` is set, so a production run pays one dict lookup per point. The variable
names a point and the call at which to fire, `POINT@K` (K counts from 1, per process; `POINT` alone
is `POINT@1`). Several faults: separate them with commas. When the point is reached for the K-th
time, the process SIGKILLs itself — the same death as an OOM kill or a lost node, with no cleanup,
no `finally`, no flush.

`GRISTMILL_FAULT_MARKER` (a folder) makes each fault fire once across all processes and retries: the
first process to reach it creates `<folder>/<POINT@K>` with O_EXCL and dies; every later arrival
(the retried task, the restarted actor, the resumed driver) sees the file and carries on. Without a
marker folder a fault fires every time, which is what a driver-kill test wants for its first run
only (the test unsets the variable for `--resume`).

Points (what a test can name):
    read            a split task, before reading its input split (worker, in the actor)
    stage:NAME      the per-batch stage NAME, before it processes its batch (worker, in the actor)
    write:batch     the worker, after writing a batch to its split's part files (they are open)
    write:input     the worker, after a split's part files and completion record are written, before
                    the driver has it (the retried split rewrites the same files)
    driver:split    the driver, after it received a split's completion record
    dedup:PHASE     the driver, after dedup phase PHASE (bands, buckets, components, members, keepers, rewrite)
    tokenize:tokenizer  the driver, after the tokenizer was trained (or loaded) and recorded
    tokenize:encode     an encode task (worker), after its spill file, before its completion record
    tokenize:encoded    the driver, after it received an encode task's completion record
    tokenize:spill      the driver, after every document was encoded and spilled, before shards are cut
    tokenize:write      a shard-unit task (worker), after a shard file was closed, before the unit's record
    tokenize:shard      the driver, for each shard listed in a shard unit's completion record it received
    finish          the driver, after the outputs are final, before stats.json is written
"""

from __future__ import annotations

import os
import signal
from collections import Counter

ENV = "GRISTMILL_FAULT"
MARKER_ENV = "GRISTMILL_FAULT_MARKER"

_calls: Counter = Counter()


def _targets(spec: str) -> dict[str, int]:
    targets = {}
    for item in filter(None, (s.strip() for s in spec.split(","))):
        point, _, k = item.partition("@")
        targets[point] = int(k or 1)
    return targets


def fault_point(point: str) -> None:
    """Die here if GRISTMILL_FAULT names this point and this is its K-th call in this process."""
    spec = os.environ.get(ENV)
    if not spec:
        return
    k = _targets(spec).get(point)
    if k is None:
        return
    _calls[point] += 1
    if _calls[point] != k:
        return
    marker_dir = os.environ.get(MARKER_ENV)
    if marker_dir:
        os.makedirs(marker_dir, exist_ok=True)
        try:
            fd = os.open(os.path.join(marker_dir, f"{point}@{k}".replace(":", "_")), os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return  # fired already (in this process's previous life, or another process)
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
    os.kill(os.getpid(), signal.SIGKILL)
