"""Reading a run's own Parquet files (curated/, rejected/) in bounded memory.

pyarrow's `ParquetFile.iter_batches` reads ahead across row groups: on a 50,000-row part of 3 KB
documents it held the whole 165 MB text column at once. The run writer writes row groups of at most
writers.ROWS_PER_GROUP rows (about GROUP_BYTES of Arrow data at most), so decoding one row group at a time
bounds memory by a row group. (Inputs written by others may have
row groups of any size: sources keep iter_batches.)
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq


def batches(parquet: pq.ParquetFile | str | Path, batch_rows: int, columns: list[str] | None = None) -> Iterator[pa.RecordBatch]:
    """The file's rows, in order, in batches of at most `batch_rows`, one row group decoded at a time."""
    if not isinstance(parquet, pq.ParquetFile):
        parquet = pq.ParquetFile(parquet)
    for group in range(parquet.metadata.num_row_groups):
        yield from parquet.read_row_group(group, columns=columns).to_batches(max_chunksize=batch_rows)


def groups_of(sizes: list[int], limit: int) -> list[list[int]]:
    """Consecutive indices grouped so that each group's sizes sum to at most `limit` (or one index): how
    the global steps cut a run's part files into tasks."""
    groups: list[list[int]] = []
    total = limit + 1
    for index, size in enumerate(sizes):
        if total + size > limit:
            groups.append([])
            total = 0
        groups[-1].append(index)
        total += size
    return groups
