"""What a long-lived process (the driver, a reused Ray worker) does about its own memory: hand freed pages
back between tasks, and read its peak resident memory for the run's stats."""

from __future__ import annotations

import ctypes
import gc

import pyarrow as pa


try:
    _malloc_trim = ctypes.CDLL("libc.so.6").malloc_trim
except (OSError, AttributeError):  # not glibc
    _malloc_trim = None


def release_memory(collect_garbage: bool = False) -> None:
    """Return freed pages of Arrow's pool and of the C heap to the OS (after a cycle collection if asked).
    A worker that has just scored a page near max_page_bytes holds tens of MB it has freed: glibc keeps
    freed heap pages and Arrow's pool its segments; left resident, they stack under the next stage's own
    peak. Under a millisecond on a worker's heap (bench/big_page.py), so the split worker calls it after
    every stage; a full garbage collection costs ~50 ms there and frees nothing (the scorers make no
    cycles), so it is asked for only where cycles are expected (the global steps' tasks)."""
    if collect_garbage:
        gc.collect()
    pa.default_memory_pool().release_unused()
    if _malloc_trim is not None:
        _malloc_trim(0)


def peak_rss_mib() -> float | None:
    """This process's peak resident memory so far (VmHWM), in MiB; None where /proc is not there."""
    try:
        with open("/proc/self/status") as handle:
            return round(next(int(line.split()[1]) for line in handle if line.startswith("VmHWM:")) / 1024, 1)
    except (OSError, StopIteration):
        return None
