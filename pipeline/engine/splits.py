"""Planning the splits of an input file, so one big file runs on every worker (issue 21).

An input larger than `split_bytes` (a job setting) is cut into splits that different actors process;
each split owns a range of the file's records (sources/base.py `SplitRange`), and its reader reports
where its record chain began and where it crossed its end (`SplitReport`). The runner checks that the
chain of every split file is unbroken (`check_chain`): split k+1 synced exactly where split k's chain
crossed its end, so no record is lost or read twice. A file whose chain does not hold, or whose reader
met a break (a corrupt member, an unparseable record), is processed again as one split, exactly as an
unsplit file is: whether a file is split never changes its outcome.

How each kind of file is cut:
- gzip WARC / WET / ARC with one member per record (Common Crawl's layout): byte ranges of
  `split_bytes`; split k seeks to its start and syncs on the next gzip member that inflates to a record
  header. A file whose first member does not end within its first MiB (one member for the whole file,
  as `gzip file.warc` writes it) is one split: nothing inside it can be seeked to.
- plain WARC: at record starts found by a header-chain pass (each header's Content-Length, seeked over;
  never a scan for "WARC/", which a page can contain); a header the pass cannot parse: one split.
- plain JSONL: byte ranges; a split owns the lines whose first byte it holds. Each split's first line
  number comes from a newline count of the ranges before it (one pass over the file, in the planning
  task), so line numbers and generated ids are the unsplit file's.
- compressed JSONL (.gz, .zst, …): one split (a compressed stream has no seekable record boundaries).
- Parquet: runs of whole row groups of about `split_bytes` compressed, from the footer alone.
"""

from __future__ import annotations

import math
import re
import zlib

from gristmill.pipeline.sources.base import WHOLE, SplitRange, open_input

_FIRST_MEMBER_BYTES = 1 << 20
_HEADER_PEEK = 1 << 11  # grown ×8 while no header end is found
_CONTENT_LENGTH = re.compile(rb"(?im)^content-length:[ \t]*(\d+)[ \t]*\r?$")
COMPRESSED_SUFFIXES = (".gz", ".bz2", ".xz", ".lzma", ".zst", ".zstd", ".lz4", ".zip", ".snappy")


def file_size(path: str) -> int:
    import fsspec

    fs, stripped = fsspec.core.url_to_fs(path)
    return int(fs.size(stripped))


def plan_splits(path: str, source_type: str, split_bytes: int) -> list[SplitRange]:
    """The splits of one input file, in file order; [WHOLE] when it is not to be split (the runner calls
    this in Ray tasks, runner.plan_tasks)."""
    size = file_size(path)
    if size <= split_bytes:
        return [WHOLE]
    if source_type in ("warc", "wet"):
        with open_input(path) as handle:
            head = handle.read(2)
            if head == b"\x1f\x8b":
                return _byte_ranges(size, split_bytes) if _many_members(handle) else [WHOLE]
            return _plain_warc_ranges(handle, size, split_bytes)
    if source_type == "jsonl":
        if path.lower().endswith(COMPRESSED_SUFFIXES):
            return [WHOLE]
        ranges = _byte_ranges(size, split_bytes)
        counts = _count_newlines(path, ranges[:-1])
        firsts = [0]
        for count in counts:
            firsts.append(firsts[-1] + count)
        return [SplitRange(r.start, r.end, first) for r, first in zip(ranges, firsts)]
    if source_type == "parquet":
        return _row_group_ranges(path, split_bytes)
    return [WHOLE]


def _byte_ranges(size: int, split_bytes: int) -> list[SplitRange]:
    n = math.ceil(size / split_bytes)
    return [SplitRange(k * split_bytes, (k + 1) * split_bytes if k < n - 1 else None) for k in range(n)]


def _many_members(handle) -> bool:
    """True if the first gzip member ends within the file's first MiB and more bytes follow it."""
    handle.seek(0)
    data = handle.read(_FIRST_MEMBER_BYTES)
    inflater = zlib.decompressobj(31)
    try:
        while not inflater.eof and data:
            inflater.decompress(data, 1 << 20)
            data = inflater.unconsumed_tail
    except zlib.error:
        return False
    return inflater.eof and bool(inflater.unused_data)


def _plain_warc_ranges(handle, size: int, split_bytes: int) -> list[SplitRange]:
    """Record starts by following each header's Content-Length; [WHOLE] at the first header it cannot read."""
    starts, position = [], 0
    next_boundary = split_bytes
    while position < size:
        handle.seek(position)
        head = handle.read(_HEADER_PEEK)
        blank = len(head) - len(head.lstrip(b"\r\n"))
        head, position = head[blank:], position + blank
        if not head:
            break
        end, peek = head.find(b"\r\n\r\n"), _HEADER_PEEK
        while end < 0 and peek < (1 << 17) and head.startswith(b"WARC/"):  # a long header: read more of it
            peek *= 8
            handle.seek(position)
            head = handle.read(peek)
            end = head.find(b"\r\n\r\n")
        match = _CONTENT_LENGTH.search(head, 0, end) if end >= 0 else None
        if not head.startswith(b"WARC/") or match is None:
            return [WHOLE]
        if position >= next_boundary:
            starts.append(position)
            next_boundary = (position // split_bytes + 1) * split_bytes
        position += end + 4 + int(match.group(1))
    bounds = [0, *starts, None]
    return [SplitRange(bounds[k], bounds[k + 1]) for k in range(len(bounds) - 1)] if starts else [WHOLE]


def _count_newlines(path: str, ranges: list[SplitRange]) -> list[int]:
    """Newlines in each of the consecutive byte ranges from the start of the file: one pass."""
    counts = []
    with open_input(path) as handle:
        for split in ranges:
            count, position = 0, split.start
            handle.seek(split.start)
            while position < split.end:
                chunk = handle.read(min(1 << 20, split.end - position))
                if not chunk:
                    break
                count += chunk.count(b"\n")
                position += len(chunk)
            counts.append(count)
    return counts


def _row_group_ranges(path: str, split_bytes: int) -> list[SplitRange]:
    import pyarrow.parquet as pq

    with open_input(path) as handle:
        meta = pq.ParquetFile(handle).metadata
    ranges, start, first, row, size = [], 0, 0, 0, 0
    for group in range(meta.num_row_groups):
        rg = meta.row_group(group)
        size += sum(rg.column(c).total_compressed_size for c in range(rg.num_columns))
        row += rg.num_rows
        if size >= split_bytes and group + 1 < meta.num_row_groups:
            ranges.append(SplitRange(start, group + 1, first))
            start, first, size = group + 1, row, 0
    ranges.append(SplitRange(start, None, first))
    return ranges if len(ranges) > 1 else [WHOLE]


def check_chain(reports: list[dict]) -> str | None:
    """Why the splits' reports (in split order) do not make one unbroken chain; None when they do: split
    0 starts at the beginning, each next split that owns records synced where the one before crossed its
    end, the last one reached the end of the file, and no split met a break."""
    if any(r["broke"] for r in reports):
        return "a split met a break in the file"
    expected = 0  # where the next owned record must start; None once a split reached the end
    for k, report in enumerate(reports):
        if report["sync"] is None:
            continue  # owns no record
        if report["sync"] != expected:
            return f"split {k} starts at {report['sync']}, the chain before it at {expected}"
        expected = None if report["reached_end"] else report["crossed"]
    if expected is not None:
        return f"no split read to the end of the file (the chain stopped at {expected})"
    return None
