"""What a long-lived process (the driver, a reused Ray worker) does about its own memory: hand freed pages
back between tasks, and read its peak resident memory for the run's stats."""

from __future__ import annotations

import ctypes
import gc
import os

import pyarrow as pa


try:
    _malloc_trim = ctypes.CDLL("libc.so.6").malloc_trim
except (OSError, AttributeError):  # not glibc
    _malloc_trim = None


# Arrow's allocator for every process of a run, unless the user names one in this variable (Arrow reads it
# when pyarrow is imported). The C heap's: on a worker that scores a page near max_page_bytes, mimalloc
# (pyarrow's default) kept 15-25 MiB more resident than glibc's malloc or jemalloc at the same CPU time
# (bench/RESULTS.md, "One big file split over the workers"), and glibc's is there on every platform.
MEMORY_POOL_ENV = "ARROW_DEFAULT_MEMORY_POOL"
DEFAULT_MEMORY_POOL = "system"
_POOLS = {"system": pa.system_memory_pool, "jemalloc": pa.jemalloc_memory_pool, "mimalloc": pa.mimalloc_memory_pool}


def memory_pool_name() -> str:
    """The Arrow allocator this run uses: the user's ARROW_DEFAULT_MEMORY_POOL, else DEFAULT_MEMORY_POOL."""
    return os.environ.get(MEMORY_POOL_ENV) or DEFAULT_MEMORY_POOL


def use_memory_pool(name: str | None = None) -> str:
    """Make `name` (default: `memory_pool_name()`) this process's Arrow allocator for what it allocates from
    now on; a backend this pyarrow build lacks leaves the pool as it is. Returns the backend in use."""
    make = _POOLS.get(name or memory_pool_name())
    if make is not None:
        try:
            pool = make()
        except NotImplementedError:  # not built into this pyarrow
            pool = None
        if pool is not None and pool.backend_name != pa.default_memory_pool().backend_name:
            pa.set_memory_pool(pool)
    return pa.default_memory_pool().backend_name


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
