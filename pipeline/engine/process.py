"""What a long-lived process (the driver, a reused Ray worker) does about its own memory: hand freed pages
back between tasks, and read its peak resident memory for the run's stats."""

from __future__ import annotations

import ctypes
import gc
import json
import os

import pyarrow as pa


try:
    _libc = ctypes.CDLL("libc.so.6")
    _malloc_trim, _mallopt = _libc.malloc_trim, _libc.mallopt
except (OSError, AttributeError):  # not glibc
    _malloc_trim = _mallopt = None


# Arrow's allocator for every process of a run, unless the user names one in this variable (Arrow reads it
# when pyarrow is imported). The C heap's: on a worker that scores a page near max_page_bytes, mimalloc
# (pyarrow's default) kept 15-25 MiB more resident than glibc's malloc or jemalloc at the same CPU time
# (bench/RESULTS.md, "One big file split over the workers"), and glibc's is there on every platform.
MEMORY_POOL_ENV = "ARROW_DEFAULT_MEMORY_POOL"
DEFAULT_MEMORY_POOL = "system"
_POOLS = {"system": pa.system_memory_pool, "jemalloc": pa.jemalloc_memory_pool, "mimalloc": pa.mimalloc_memory_pool}

# glibc serves a block of this many bytes or more with its own mmap, handed back to the OS when freed.
# Left to itself glibc raises the threshold to the largest block freed so far (up to 32 MiB), so after a
# page near max_page_bytes every later scratch of a few MB stays in the heap, resident under the next
# stage's peak; fixed, a stage's peak on such a page fell 3-18 MiB and the worker's RSS after it 30 MiB,
# at the same stage times (bench/big_page.py, bench/RESULTS.md). Read by glibc at process start.
MMAP_THRESHOLD_ENV = "MALLOC_MMAP_THRESHOLD_"
MMAP_THRESHOLD_BYTES = 128 * 1024
_M_MMAP_THRESHOLD = -3  # mallopt's parameter number (malloc.h)


def memory_pool_name() -> str:
    """The Arrow allocator this run uses: the user's ARROW_DEFAULT_MEMORY_POOL, else DEFAULT_MEMORY_POOL."""
    return os.environ.get(MEMORY_POOL_ENV) or DEFAULT_MEMORY_POOL


# Set by `ray job submit` in the driver's environment: the submitted job's config, runtime_env included.
_SUBMITTED_JOB_CONFIG_ENV = "RAY_JOB_CONFIG_JSON_ENV_VAR"


def worker_env() -> dict[str, str]:
    """The environment every worker process of a run starts with (the job's Ray runtime_env): Arrow's pool
    and glibc's mmap threshold, each as the user set it in this process's environment, else ours. A
    variable the submitted job's runtime_env already sets (`ray job submit --runtime-env-json`) is left
    to it: Ray refuses a ray.init that sets the same key again."""
    env = {MEMORY_POOL_ENV: memory_pool_name(),
           MMAP_THRESHOLD_ENV: os.environ.get(MMAP_THRESHOLD_ENV) or str(MMAP_THRESHOLD_BYTES)}
    try:
        submitted = json.loads(os.environ.get(_SUBMITTED_JOB_CONFIG_ENV) or "{}")
        taken = (submitted.get("runtime_env") or {}).get("env_vars") or {}
    except (ValueError, AttributeError):
        taken = {}
    return {key: value for key, value in env.items() if key not in taken}


def sandbox_env() -> dict[str, str]:
    """This process's environment without the variables `worker_env` sets: a child that runs untrusted input
    under an address-space limit (the extraction sandbox) allocates with glibc's and Arrow's defaults, so
    whether a page at that limit is extracted does not depend on the worker's allocator settings."""
    return {key: value for key, value in os.environ.items() if key not in (MEMORY_POOL_ENV, MMAP_THRESHOLD_ENV)}


def tune_this_process() -> None:
    """What `worker_env` gives a worker, for a process already running (the driver): its Arrow pool from
    now on, and glibc's fixed mmap threshold."""
    use_memory_pool()
    if _mallopt is not None and not os.environ.get(MMAP_THRESHOLD_ENV):
        _mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)


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
