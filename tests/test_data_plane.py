"""The data plane (issue 20): workers read their input as bounded batches and write their own part files;
the driver receives completion records and nothing with text.

- A record bigger than the cap (a JSONL line plain, .gz or .zst; a Parquet text cell) is quarantined as
  it is read, never held: a fresh process reading a file with a 200 MB record peaks within 100 MiB of
  the same process reading a small file (VmHWM).
- A byte bound below every page forces batches of one record each; the outputs are the same rows.
- Everything the driver takes from Ray during a run (every `ray.get` result) is free of the documents'
  text, and stats.json reports how many bytes that was.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
import zstandard

from gristmill.pipeline.runner import run
from gristmill.pipeline.sources.base import batched
from gristmill.pipeline.sources.documents import JsonlSource, ParquetSource
from gristmill.pipeline.sources.warc import WarcSource
from gristmill.schemas import columns as C
from gristmill.schemas.job import load_job

from conftest import REPO
from reliability_support import DEMO, small_job

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


def test_batches_are_bounded_by_rows_and_bytes_and_a_heavy_record_is_its_own_batch():
    rows = WarcSource([str(DEMO)]).rows(str(DEMO))
    sizes = []
    for table in batched(rows, 64, 8_000):  # three pages weigh more than 8,000
        weights = [len(c or b"") + len(t or "") for c, t in zip(table[C.CONTENT].to_pylist(), table[C.TEXT].to_pylist())]
        assert table.num_rows <= 64 and (sum(weights) <= 8_000 or table.num_rows == 1)
        sizes.append(table.num_rows)
    assert sizes.count(1) >= 3 and max(sizes) > 1 and sum(sizes) == 276


def _job_with(tmp_path: Path, inputs: list, **overrides) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    job = yaml.safe_load(small_job(tmp_path, inputs).read_text())
    job.update(overrides)
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(job))
    return path


def _rows(output: Path) -> dict[str, list]:
    return {name: pq.read_table(output / name).sort_by([(C.SOURCE_FILE, "ascending"), (C.RECORD_OFFSET, "ascending")]).to_pylist()
            for name in ("curated", "rejected", "quarantine") if list((output / name).glob("*.parquet"))}


def test_one_record_batches_under_a_tiny_byte_bound_give_the_same_rows(ray_local, tmp_path):
    normal = run(load_job(_job_with(tmp_path / "a", [DEMO])), output=tmp_path / "normal", log=lambda m: None)
    tiny = run(load_job(_job_with(tmp_path / "b", [DEMO], batch_bytes=1024)), output=tmp_path / "tiny", log=lambda m: None)
    source = next(s for s in tiny.stats.stages if s.stage == "source")
    pages = sum(1 for r in WarcSource([str(DEMO)]).rows(str(DEMO)) if len(r[C.CONTENT] or b"") > 1024)
    assert pages >= 50 and source.batches == len(list(batched(WarcSource([str(DEMO)]).rows(str(DEMO)), 64, 1024)))
    assert source.batches >= pages  # every page over 1 KiB was a batch of its own
    assert next(s for s in normal.stats.stages if s.stage == "source").batches < 10  # by rows alone
    assert _rows(tmp_path / "tiny") == _rows(tmp_path / "normal")
    assert tiny.ledger.to_dict() == normal.ledger.to_dict()


def test_no_text_reaches_the_driver(ray_local, tmp_path, monkeypatch):
    """Every object the driver gets from Ray in a whole run (the splits' records, dedup's tasks, …) is
    free of the documents' text and of any text or content column."""
    import pickle

    import ray

    received = []
    real_get = ray.get

    def recording_get(refs, *args, **kwargs):
        value = real_get(refs, *args, **kwargs)
        received.append(pickle.dumps(value))
        return value

    monkeypatch.setattr(ray, "get", recording_get)
    result = run(load_job(_job_with(tmp_path, [DEMO])), output=tmp_path / "out", log=lambda m: None)
    monkeypatch.undo()
    assert result.ledger.kept > 30
    assert sum(b'"ledger"' in blob for blob in received) == 1  # the completion record went through ray.get
    texts = [t for folder in ("curated", "rejected") for t in pq.read_table(tmp_path / "out" / folder, columns=[C.TEXT])[C.TEXT].to_pylist() if t]
    snippets = {t[len(t) // 2:len(t) // 2 + 40].encode() for t in texts if len(t) >= 80}
    assert len(snippets) > 30
    for blob in received:
        assert not any(snippet in blob for snippet in snippets)
        for column in (C.TEXT, C.CONTENT):
            assert f'"{column}":'.encode() not in blob
    stats = json.loads((tmp_path / "out" / "stats.json").read_text())
    assert 0 < stats["run"]["driver_received_bytes"] < 50_000
