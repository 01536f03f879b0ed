"""The data plane (issue 20): workers read their input as bounded batches and write their own part files;
the driver receives completion records and nothing with text.

- A byte bound below every page forces batches of one record each; the outputs are the same rows.
- Everything the driver takes from Ray during a run (every `ray.get` result) is free of the documents'
  text, and stats.json reports how many bytes that was.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import yaml

from gristmill.pipeline.engine.api import run
from gristmill.pipeline.sources.base import batched
from gristmill.pipeline.sources.warc import WarcSource
from gristmill.schemas import columns as C
from gristmill.schemas.job import load_job

from support.reliability import DEMO, small_job

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


def test_a_wet_record_over_the_cap_is_quarantined(tmp_path):
    import io

    from warcio.warcwriter import WARCWriter

    path = tmp_path / "big.warc.wet.gz"
    with open(path, "wb") as out:
        writer = WARCWriter(out, gzip=True)
        for url, text in (("http://a.test/", b"short text " * 10), ("http://b.test/", b"long text " * 300_000)):
            writer.write_record(writer.create_warc_record(url, "conversion", payload=io.BytesIO(text),
                                                          warc_content_type="text/plain"))
    rows = list(WarcSource([str(path)], max_page_bytes=1_000_000).rows(str(path)))
    assert rows[0][C.TEXT].startswith("short text") and rows[1][C.TEXT] is None
    assert rows[1][C.QUARANTINE_REASON].startswith("record too large: a WET conversion record over the 1000000-byte cap")


def _gathered_rows() -> "pa.Table":
    import pyarrow as pa

    long_text = "".join(f"A paragraph that repeats, café ({k}).\n" for k in range(20_000))
    texts = [long_text if i % 7 == 3 else (None if i % 5 == 0 else f"text {i} é") for i in range(40)]
    return pa.table({
        "text": pa.array(texts, pa.large_string()),
        "edits": pa.array([None if i % 4 else [{"kind": "pii", "start": i, "end": i + 2}] for i in range(40)],
                          pa.list_(pa.struct([("kind", pa.string()), ("start", pa.int64()), ("end", pa.int64())]))),
        "score": pa.array([float("nan") if i % 9 == 0 else i / 3 for i in range(40)], pa.float64()),
        "keep": pa.array([None if i % 6 == 0 else i % 2 == 0 for i in range(40)], pa.bool_()),
        "minhash": pa.array([bytes([i]) * 8 for i in range(40)], pa.binary()),
    })


def test_pending_row_groups_are_held_compressed_and_write_the_same_bytes(tmp_path, monkeypatch):
    """The rows a part file's row group gathers are held as a compressed Arrow stream until it is written
    (a page near max_page_bytes waited there uncompressed), and the part files are byte for byte the ones
    the rows held as they are make, row groups cut by rows and by bytes alike (here every slice is held,
    however small)."""
    from gristmill.pipeline.engine import writers

    table = _gathered_rows()
    monkeypatch.setattr(writers, "HOLD_COMPRESSED_BYTES", 0)  # every slice, small ones included

    def write(folder, **group) -> list[bytes]:
        out = writers._RollingParquet(tmp_path / folder, "part", rows_per_file=25, **group)
        for start, size in ((0, 3), (3, 1), (4, 9), (13, 2), (15, 25)):  # batches of several sizes, as a run writes
            out.write(table.slice(start, size))
            if folder.startswith("held"):
                held = [rows for rows in out.pending if not isinstance(rows, type(table))]
                assert len(held) == len(out.pending)  # every pending slice is held compressed
        out.close()
        return [path.read_bytes() for path, _ in out.written]

    held = {name: write(f"held-{name}", **group) for name, group in
            (("rows", {"rows_per_group": 4}), ("bytes", {"group_bytes": 1 << 20}))}
    monkeypatch.setattr(writers, "_held", lambda rows: rows)
    assert write("plain-rows", rows_per_group=4) == held["rows"]
    assert write("plain-bytes", group_bytes=1 << 20) == held["bytes"]
    # the byte bound cut a row group (two long texts of ~0.8 MB) before the 25-row file ended
    import pyarrow as pa

    assert [pq.ParquetFile(pa.BufferReader(data)).num_row_groups for data in held["bytes"]] == [2, 1]


def test_a_row_group_holds_one_big_slice_at_most(tmp_path, monkeypatch):
    """Slices of BIG_SLICE_BYTES or more (a batch with a page near max_page_bytes) never share a row group
    with another: writing a group decodes and encodes all its rows at once. The rows are the same."""
    from gristmill.pipeline.engine import writers

    table = _gathered_rows()
    batches = [table.slice(start, size) for start, size in ((0, 3), (3, 1), (4, 9), (13, 2), (15, 25))]
    assert [b.nbytes >= 800_000 for b in batches] == [False, True, True, False, True]  # long texts in 3 of them
    monkeypatch.setattr(writers, "BIG_SLICE_BYTES", 800_000)
    out = writers._RollingParquet(tmp_path / "big", "part", rows_per_file=100)
    for batch in batches:
        out.write(batch)
    out.close()
    (path, rows), = out.written
    groups = [g.num_rows for g in (pq.ParquetFile(path).metadata.row_group(k) for k in range(pq.ParquetFile(path).num_row_groups))]
    assert groups == [3 + 1, 9 + 2, 25]  # a new group at each big slice after the first
    read = pq.read_table(path)
    for name in ("text", "keep", "minhash"):
        assert read[name].combine_chunks().equals(table[name].combine_chunks()), name


def test_a_long_repetitive_text_is_held_in_a_fraction_of_its_size():
    """Rows over HOLD_COMPRESSED_BYTES (a page near max_page_bytes) are held compressed; an ordinary
    batch's few KB are kept as they are."""
    import pyarrow as pa

    from gristmill.pipeline.engine.writers import HOLD_COMPRESSED_BYTES, _held, _unheld

    rows = _gathered_rows().slice(3, 1)  # the long text, ~0.8 MB
    rows = pa.concat_tables([rows, rows]).combine_chunks()
    assert rows.nbytes >= HOLD_COMPRESSED_BYTES
    held = _held(rows)
    assert held.size < rows.nbytes / 4
    assert _unheld(held).equals(rows)
    small = _gathered_rows().slice(0, 3)
    assert _held(small) is small


def test_every_worker_and_the_driver_allocate_as_the_run_says(ray_local):
    """init_ray gives the job's workers (through the job's runtime_env, so on every node) and the driver
    the Arrow allocator and glibc mmap threshold chosen by measurement (engine/process.py), or the ones
    the user names in the environment."""
    import os

    import pyarrow as pa

    from gristmill.pipeline.engine.process import MMAP_THRESHOLD_ENV, memory_pool_name, worker_env

    @ray_local.remote
    def allocation() -> tuple[str, str | None]:
        return pa.default_memory_pool().backend_name, os.environ.get(MMAP_THRESHOLD_ENV)

    expected = (memory_pool_name(), worker_env()[MMAP_THRESHOLD_ENV])
    assert ray_local.get([allocation.remote() for _ in range(4)]) == [expected] * 4
    assert pa.default_memory_pool().backend_name == expected[0]


def test_the_user_names_the_arrow_pool_and_the_mmap_threshold(monkeypatch):
    import pyarrow as pa

    from gristmill.pipeline.engine.process import memory_pool_name, use_memory_pool, worker_env

    before = pa.default_memory_pool()
    try:
        monkeypatch.setenv("ARROW_DEFAULT_MEMORY_POOL", "mimalloc")
        monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "65536")
        assert memory_pool_name() == "mimalloc"
        assert worker_env() == {"ARROW_DEFAULT_MEMORY_POOL": "mimalloc", "MALLOC_MMAP_THRESHOLD_": "65536"}
        assert use_memory_pool() == "mimalloc"
        assert use_memory_pool("no-such-pool") == "mimalloc"  # an unknown name leaves the pool as it is
        assert use_memory_pool("system") == "system"
        monkeypatch.delenv("ARROW_DEFAULT_MEMORY_POOL")
        monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_")
        assert worker_env() == {"ARROW_DEFAULT_MEMORY_POOL": "system", "MALLOC_MMAP_THRESHOLD_": "131072"}
    finally:
        pa.set_memory_pool(before)


def test_a_submitted_jobs_own_env_vars_are_left_to_it(monkeypatch):
    """`ray job submit --runtime-env-json` sets the job's env_vars; ray.init may not set the same keys again
    (Ray raises), so worker_env leaves those to the submitted job. The extraction sandbox gets neither."""
    import json

    from gristmill.pipeline.engine.process import sandbox_env, worker_env

    monkeypatch.setenv("RAY_JOB_CONFIG_JSON_ENV_VAR", json.dumps({"runtime_env": {"env_vars": {"MALLOC_MMAP_THRESHOLD_": "1"}}}))
    assert worker_env() == {"ARROW_DEFAULT_MEMORY_POOL": "system"}
    monkeypatch.setenv("ARROW_DEFAULT_MEMORY_POOL", "system")
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "131072")
    env = sandbox_env()
    assert "ARROW_DEFAULT_MEMORY_POOL" not in env and "MALLOC_MMAP_THRESHOLD_" not in env and "PATH" in env
