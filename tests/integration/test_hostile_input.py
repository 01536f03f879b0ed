"""Hostile input through the whole pipeline (real local Ray), once per extraction engine: a generated
corpus of malformed archives, framing, encodings and payloads (tests/support/hostile_corpus.py, one file per
kind, big ones generated in tmp)
plus ../shared/data/warc-samples/edge-cases. No crash; each kind ends with ITS expected outcome; the
ledger sums; and the Ray worker processes' peak RSS (VmHWM, sampled from /proc during the run) stays
under 1.5 GiB. Records over the size cap in every document format (JSONL plain, .gz, .zst; Parquet)
are quarantined as they are read, with the reading process's peak RSS bounded."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from gristmill.pipeline.engine.api import run
from gristmill.pipeline.sources.documents import JsonlSource, ParquetSource
from gristmill.pipeline.stages.extract_engines import ENGINES
from gristmill.schemas import columns as C
from gristmill.schemas.job import load_job

from support.repo import REPO, shipped_job
from support.hostile_corpus import KINDS, write_corpus
from support.reliability import small_job

GIB = 1024 ** 3
EDGE_CASES = {  # shared edge-case file → an outcome it must contain
    "resiliparse-clipped.warc.gz": ("quarantine", "clipped record: 13068 of 88275 bytes missing"),
    "warcio-bad-non-chunked.warc.gz": ("quarantine", "non-chunked gzip"),
    "warcio-example-with-revisit.warc.gz": ("dropped", "revisit"),
    "ukwa-transfer-compression-brotli.warc.gz": ("dropped", None),  # decoded, then judged on its text
    "ukwa-transfer-compression-gzip.warc.gz": ("dropped", None),
    "warcio-iana-chunked.warc": ("dropped", None),
    "warcio-example.arc.gz": ("dropped", None),
}


def _children(root: int) -> list[int]:
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    parents[int(entry)] = int(handle.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    found, frontier = [], [root]
    while frontier:
        pid = frontier.pop()
        kids = [p for p, parent in parents.items() if parent == pid]
        found += kids
        frontier += kids
    return found


class PeakRss(threading.Thread):
    """Peak resident memory (VmHWM) of every Ray worker process descended from this one."""

    def __init__(self):
        super().__init__(daemon=True)
        self.peak: dict[int, tuple[int, str]] = {}
        self.stop = threading.Event()

    def sample(self) -> None:
        for pid in _children(os.getpid()):
            try:
                name = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            if "ray::" not in name and "default_worker" not in name:
                continue
            hwm = int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:"))) * 1024
            self.peak[pid] = max(self.peak.get(pid, (0, name)), (hwm, name))

    def run(self) -> None:
        while not self.stop.wait(0.2):
            self.sample()


def _outcomes(output: Path) -> dict[str, list[tuple[str, str | None]]]:
    by_file: dict[str, list] = {}
    for folder, kind in (("curated", "kept"), ("rejected", "dropped"), ("quarantine", "quarantine")):
        if not list((output / folder).glob("*.parquet")):
            continue
        column = {"kept": C.KEEP, "dropped": C.DROP_REASON, "quarantine": C.QUARANTINE_REASON}[kind]
        table = pq.read_table(output / folder, columns=[C.SOURCE_FILE, column])
        for source, reason in zip(table[C.SOURCE_FILE].to_pylist(), table[column].to_pylist()):
            by_file.setdefault(os.path.basename(source), []).append((kind, None if kind == "kept" else reason))
    return by_file


def _has(outcomes, expected) -> bool:
    kind, reason = expected
    return any(k == kind and (reason is None or (reason in (r or "") if kind == "quarantine" else r == reason))
               for k, r in outcomes)


@pytest.mark.shared_data
@pytest.mark.parametrize("engine, split_bytes", [*((engine, None) for engine in ENGINES), ("trafilatura", 1024)],
                         ids=[*ENGINES, "trafilatura-1KiB-splits"])
def test_hostile_corpus_each_kind_its_outcome_and_memory_bound(ray_local, shared_data, tmp_path, engine, split_bytes):
    """Every extraction engine, unsplit; and with 1 KiB splits every file of more than 1 KiB is cut into splits
    (gzip members synced, plain WARC by its header chain): each kind must still end with its outcome."""
    paths = write_corpus(tmp_path / "in")
    edge = shared_data / "warc-samples" / "edge-cases"
    inputs = [*paths.values(), *(str(edge / name) for name in EDGE_CASES)]
    extract = {**shipped_job("demo-archive.yaml")["extract"], "engine": engine}
    split = {"split_bytes": split_bytes} if split_bytes else {}
    # dedup off: the kinds that survive share one article, so each is judged alone.
    job = small_job(tmp_path, inputs, dedup=None, extract=extract, **split)
    monitor = PeakRss()
    monitor.start()
    try:
        result = run(load_job(job), output=tmp_path / "out", log=lambda m: None)
    finally:
        monitor.stop.set()
        monitor.join()
    assert result.ledger.accounted == result.ledger.input  # nothing lost, nothing twice
    outcomes = _outcomes(tmp_path / "out")
    wrong = {}
    for kind, (_, expected) in KINDS.items():
        got = outcomes.get(os.path.basename(paths[kind]), [])
        print(f"kind {kind}: {sorted(set(got), key=str)}")
        if not _has(got, expected):
            wrong[kind] = (expected, got)
    for name, expected in EDGE_CASES.items():
        if not _has(outcomes.get(name, []), expected):
            wrong[name] = (expected, outcomes.get(name, []))
    for kind, (expected, got) in wrong.items():
        print(f"{kind}: expected {expected}, got {got}")
    assert not wrong, wrong
    assert len(KINDS) >= 30
    peak = max(hwm for hwm, _ in monitor.peak.values())
    print(f"\nhostile corpus: {len(KINDS)} kinds + {len(EDGE_CASES)} edge-case files, {result.ledger.input} rows; "
          f"peak worker RSS {peak / 2**20:.0f} MiB over {len(monitor.peak)} Ray worker processes")
    assert monitor.peak and peak <= 1.5 * GIB
    if split_bytes:
        run_stats = json.loads((tmp_path / "out" / "stats.json").read_text())["run"]
        assert result.stats.stages[0].counts["files"] == len(inputs)
        assert run_stats["split_inputs"] >= 5 and run_stats["splits"] > len(inputs) + 5  # files really were split
        print(f"splits: {run_stats['splits']} over {len(inputs)} files, {run_stats['split_inputs']} split, "
              f"{run_stats['read_whole_after_a_break']} read whole after a break")


# --- records over the size cap (issue 20) ------------------------------------------------------

MIB = 1024 * 1024
BIG = 200 * MIB  # the oversized record
CAP = MIB  # max_record_bytes in these tests
NORMAL = [{"id": "a", "text": "A normal document. " * 20}, {"id": "b", "text": "Another one, also short. " * 20}]


def _write_big_jsonl(path: Path) -> None:
    """NORMAL[0], then one line of BIG bytes (a JSON string), then NORMAL[1]; written in chunks."""
    opener = {".gz": lambda p: gzip.open(p, "wb", compresslevel=1),
              ".zst": lambda p: zstandard.ZstdCompressor(level=1).stream_writer(open(p, "wb"))}.get(path.suffix, lambda p: open(p, "wb"))
    chunk = b"x" * MIB
    with opener(path) as out:
        out.write(json.dumps(NORMAL[0]).encode() + b"\n")
        out.write(b'{"id": "big", "text": "')
        for _ in range(BIG // MIB):
            out.write(chunk)
        out.write(b'"}\n')
        out.write(json.dumps(NORMAL[1]).encode() + b"\n")


def _write_big_parquet(path: Path) -> None:
    """NORMAL[0], the BIG cell, NORMAL[1]: one row group per row, as a writer of huge cells would."""
    table = pa.table({"id": ["a", "big", "b"], "text": [NORMAL[0]["text"], "x" * BIG, NORMAL[1]["text"]]})
    pq.write_table(table, path, row_group_size=1)


PEAK = """
import json, resource, sys
from gristmill.pipeline.sources.documents import JsonlSource, ParquetSource
kind, path, cap = sys.argv[1], sys.argv[2], int(sys.argv[3])
source = (JsonlSource if kind == "jsonl" else ParquetSource)([path], max_record_bytes=cap)
rows = [{k: r[k] for k in ("id", "text", "quarantine_reason")} for r in source.rows(path)]
peak = int(next(l.split()[1] for l in open("/proc/self/status") if l.startswith("VmHWM:"))) * 1024
print(json.dumps({"rows": rows, "peak": peak}))
"""


def _read_in_fresh_process(kind: str, path: Path) -> dict:
    result = subprocess.run([sys.executable, "-c", PEAK, kind, str(path), str(CAP)], capture_output=True, text=True,
                            timeout=300, cwd=REPO)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout)


@pytest.mark.parametrize("name", ["big.jsonl", "big.jsonl.gz", "big.jsonl.zst", "big.parquet"])
def test_a_record_over_the_cap_is_quarantined_without_being_held(tmp_path, name):
    kind = "parquet" if name.endswith(".parquet") else "jsonl"
    big, small = tmp_path / name, tmp_path / f"small{name[3:]}"
    (_write_big_parquet if kind == "parquet" else _write_big_jsonl)(big)
    if kind == "parquet":
        pq.write_table(pa.table({"id": ["a", "b"], "text": [d["text"] for d in NORMAL]}), small, row_group_size=1)
    else:
        with (gzip.open if name.endswith(".gz") else open)(small, "wb") if not name.endswith(".zst") else \
                zstandard.ZstdCompressor().stream_writer(open(small, "wb")) as out:
            out.write(b"".join(json.dumps(d).encode() + b"\n" for d in NORMAL))
    baseline, got = _read_in_fresh_process(kind, small), _read_in_fresh_process(kind, big)
    rows = got["rows"]
    assert [r["text"] for r in rows] == [NORMAL[0]["text"], None, NORMAL[1]["text"]]  # the others are read
    assert rows[1]["quarantine_reason"].startswith(("line 1: record too large", "row 1: record too large"))
    assert f"{CAP}-byte cap" in rows[1]["quarantine_reason"]
    grew = got["peak"] - baseline["peak"]
    print(f"{name}: peak {got['peak'] / MIB:.0f} MiB, {grew / MIB:+.0f} MiB over the small file's")
    assert grew < 100 * MIB  # holding the record once would add at least 200 MiB


def test_a_big_cell_sharing_its_row_group_is_quarantined_too(tmp_path):
    path = tmp_path / "shared.parquet"
    pq.write_table(pa.table({"id": ["a", "big", "b"], "text": [NORMAL[0]["text"], "y" * (3 * CAP), NORMAL[1]["text"]]}), path)
    rows = list(ParquetSource([str(path)], max_record_bytes=CAP).rows(str(path)))
    assert [r[C.TEXT] is not None for r in rows] == [True, False, True]
    assert rows[1][C.QUARANTINE_REASON].startswith("row 1: record too large: 3145728 bytes")


def test_capped_lines_cuts_at_every_newline_and_never_buffers_past_the_cap(tmp_path):
    path = tmp_path / "lines.jsonl"
    path.write_bytes(b'{"text": "one"}\n\n' + b"z" * 5000 + b'\n{"text": "two"}')  # no final newline
    rows = list(JsonlSource([str(path)], max_record_bytes=4096).rows(str(path)))
    assert [r[C.RECORD_OFFSET] for r in rows] == [0, 1, 2, 3]
    assert [r[C.TEXT] for r in rows] == ["one", None, None, "two"]
    assert rows[1][C.QUARANTINE_REASON] == "line 1: empty line"
    assert "record too large: 5000 bytes" in rows[2][C.QUARANTINE_REASON]
