"""Handing freed memory back to the operating system, for long-lived worker processes.

A worker that has just scored a page near max_page_bytes holds tens of MB it has freed: glibc keeps freed
heap pages (its mmap threshold grows after big frees, so later big buffers come from the heap too) and
Arrow's mimalloc pool keeps its segments. Left resident, they stack under the next stage's own peak.
`release_memory()` returns them: under a millisecond on a worker's heap (bench/big_page.py), so the split
worker calls it after every stage. A full garbage collection costs ~50 ms there and frees nothing (the
scorers make no cycles), so it is asked for only where cycles are expected (the dedup shuffle's tasks).
"""

from __future__ import annotations

import ctypes
import gc

import pyarrow as pa

try:
    _malloc_trim = ctypes.CDLL("libc.so.6").malloc_trim
except (OSError, AttributeError):  # not glibc
    _malloc_trim = None


def release_memory(collect_garbage: bool = False) -> None:
    """Return freed pages of Arrow's pool and of the C heap to the OS (after a cycle collection if asked)."""
    if collect_garbage:
        gc.collect()
    pa.default_memory_pool().release_unused()
    if _malloc_trim is not None:
        _malloc_trim(0)
