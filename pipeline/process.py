"""What a long-lived process (the driver, a reused Ray worker) does about its own memory: hand freed pages
back between tasks, and read its peak resident memory for the run's stats."""

from __future__ import annotations


def release_memory() -> None:
    """Collect garbage, return Arrow's unused pool memory and trim glibc's heap: worker processes are
    reused, so without this one task's peak stays resident under the next."""
    import ctypes
    import gc

    import pyarrow as pa

    gc.collect()
    pa.default_memory_pool().release_unused()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


def peak_rss_mib() -> float | None:
    """This process's peak resident memory so far (VmHWM), in MiB; None where /proc is not there."""
    try:
        with open("/proc/self/status") as handle:
            return round(next(int(line.split()[1]) for line in handle if line.startswith("VmHWM:")) / 1024, 1)
    except (OSError, StopIteration):
        return None
