"""Hostile input through the whole pipeline (real local Ray), once per extraction engine: a generated
corpus of malformed archives, framing, encodings and payloads (tests/hostile_corpus.py, one file per
kind, big ones generated in tmp)
plus ../shared/data/warc-samples/edge-cases. No crash; each kind ends with ITS expected outcome; the
ledger sums; and the Ray worker processes' peak RSS (VmHWM, sampled from /proc during the run) stays
under 1.5 GiB."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from gristmill.pipeline.runner import run
from gristmill.pipeline.stages.extract_engines import ENGINES
from gristmill.schemas import columns as C
from gristmill.schemas.job import load_job

from hostile_corpus import KINDS, write_corpus
from conftest import REPO
from reliability_support import small_job

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
@pytest.mark.parametrize("engine", ENGINES)
def test_hostile_corpus_each_kind_its_outcome_and_memory_bound(ray_local, shared_data, tmp_path, engine):
    # A fresh corpus per engine: a second run over the very same input paths in one Ray session failed in
    # the runner (two writers of one batch's node.json), which is the data plane's to look at.
    paths = write_corpus(tmp_path / "in")
    edge = shared_data / "warc-samples" / "edge-cases"
    inputs = [*paths.values(), *(str(edge / name) for name in EDGE_CASES)]
    extract = {**yaml.safe_load((REPO / "jobs" / "demo-archive.yaml").read_text())["extract"], "engine": engine}
    # dedup off: the kinds that survive share one article, so each is judged alone.
    job = small_job(tmp_path, inputs, dedup=None, extract=extract)
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
