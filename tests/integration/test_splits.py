"""Splitting big input files (issue 21): a file over `split_bytes` is read by several workers, each owning
a range of its records, with provenance, outcomes and shards exactly those of the unsplit file.

Reader level (no Ray): for gzip WARC, plain WARC, plain JSONL and Parquet, the rows of the splits, in split
order, equal the whole file's rows, and their reports chain up; a single-member gzip and a compressed JSONL
file are one split. Run level (real local Ray): split sizes change no row of curated/, rejected/ or
quarantine/ (read in part-name order) and no byte of shards/; 1 and 2 workers give byte-identical splits;
a corrupt member in the middle of a split file makes the run read it whole, with the unsplit outcome; a
resumed run skips finished splits and refuses a changed split_bytes by name.
"""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from gristmill.pipeline.engine.api import run
from gristmill.pipeline.sources.base import WHOLE, SplitRange, SplitReport
from gristmill.pipeline.sources.documents import JsonlSource, ParquetSource
from gristmill.pipeline.sources.warc import WarcSource
from gristmill.pipeline.engine.splits import check_chain, plan_splits
from gristmill.schemas.job import JobError, load_job

from support.reliability import DEMO, assert_same_outputs, gristmill_run, small_job

OUTPUTS = ("curated", "rejected", "quarantine")


def _read_in_splits(source, path: str, split_bytes: int) -> tuple[list[dict], list[SplitRange], str | None]:
    ranges = plan_splits(path, source.type, split_bytes)
    rows, reports = [], []
    for split in ranges:
        report = SplitReport()
        rows += list(source.rows(path, split, report))
        reports.append(report.to_dict())
    return rows, ranges, check_chain(reports)


@pytest.mark.parametrize("split_bytes", [1024, 9_000, 100_000])
def test_gzip_warc_splits_read_exactly_the_whole_files_rows(split_bytes):
    source = WarcSource([str(DEMO)])
    rows, ranges, problem = _read_in_splits(source, str(DEMO), split_bytes)
    assert len(ranges) == -(-DEMO.stat().st_size // split_bytes) and problem is None
    assert rows == list(source.rows(str(DEMO)))  # same records, offsets, ids, bodies, in order


def test_plain_warc_splits_at_record_starts_from_the_header_chain(tmp_path):
    plain = tmp_path / "demo.warc"
    plain.write_bytes(gzip.decompress(DEMO.read_bytes()))  # concatenated members: one plain WARC
    source = WarcSource([str(plain)])
    rows, ranges, problem = _read_in_splits(source, str(plain), 50_000)
    assert len(ranges) > 10 and problem is None
    starts = {r["record_offset"] for r in source.rows(str(plain))}
    assert all(r.start in starts for r in ranges[1:])  # every split starts at a record, found by the chain
    assert rows == list(source.rows(str(plain)))
    broken = tmp_path / "broken.warc"  # a header the chain pass cannot follow: the file is one split
    broken.write_bytes(plain.read_bytes().replace(b"Content-Length: ", b"Content-Lenght: ", 3))
    assert plan_splits(str(broken), "warc", 50_000) == [WHOLE]


def test_a_single_member_gzip_and_a_compressed_jsonl_are_one_split(tmp_path):
    single = tmp_path / "single.warc.gz"
    single.write_bytes(gzip.compress(gzip.decompress(DEMO.read_bytes())))
    assert single.stat().st_size > 4096 and plan_splits(str(single), "warc", 4096) == [WHOLE]
    packed = tmp_path / "docs.jsonl.gz"
    packed.write_bytes(gzip.compress(b"".join(json.dumps({"text": "x" * i}).encode() + b"\n" for i in range(2000))))
    assert packed.stat().st_size > 1024 and plan_splits(str(packed), "jsonl", 1024) == [WHOLE]


@pytest.mark.parametrize("ending", [b"", b"\n", b"\r\n"], ids=["no-final-newline", "final-newline", "crlf"])
def test_jsonl_splits_keep_line_numbers_and_generated_ids(tmp_path, ending):
    path = tmp_path / "docs.jsonl"
    lines = []
    for i in range(400):
        lines.append(b"" if i % 37 == 5 else b"not json" if i % 41 == 3 else
                     json.dumps({"text": f"document {i} " + "word " * (i % 90)}).encode())
    newline = b"\r\n" if ending == b"\r\n" else b"\n"
    path.write_bytes(newline.join(lines) + ending)
    source = JsonlSource([str(path)], max_record_bytes=300)  # some lines are over the cap
    whole = list(source.rows(str(path)))
    assert [r["record_offset"] for r in whole] == list(range(400))
    for split_bytes in (1024, 1000, 333, 97):  # boundaries fall everywhere, the last split inside the last line too
        rows, ranges, problem = _read_in_splits(source, str(path), split_bytes)
        assert len(ranges) > 20 and problem is None, (split_bytes, problem)
        assert rows == whole  # same line numbers, generated ids, texts and quarantine reasons


def test_gzip_sync_finds_a_member_at_every_position_of_the_scan_window(tmp_path):
    """A member whose magic bytes straddle the scan window's edge is still found (not the one after it)."""
    from gristmill.pipeline.sources.warc import _SYNC_WINDOW, find_member

    members = [gzip.compress(b"WARC/1.1\r\nWARC-Type: resource\r\nContent-Length: 0\r\n\r\n\r\n\r\n" + pad)
               for pad in (random.Random(0).randbytes(100_000), b"", b"")]  # incompressible: a 100 KB member
    data = b"".join(members)
    path = tmp_path / "m.warc.gz"
    path.write_bytes(data)
    second = len(members[0])
    with open(path, "rb") as handle:
        for back in range(_SYNC_WINDOW - 3, _SYNC_WINDOW + 2):
            assert find_member(handle, second - back, None) == second, back
        assert find_member(handle, second + 1, None) == second + len(members[1])
        assert find_member(handle, second + 1, second + len(members[1])) is None  # the next one is past `end`


def test_a_file_that_cannot_be_planned_is_one_split_and_its_reader_quarantines_it(ray_local, tmp_path):
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(bytes(range(256)) * 20)  # not Parquet, larger than split_bytes
    path = tmp_path / "job.yaml"
    job = yaml.safe_load(small_job(tmp_path, []).read_text())
    job.update({"sources": [{"type": "parquet", "paths": [str(bad)]}], "split_bytes": 1024})
    path.write_text(yaml.safe_dump(job))
    result = run(load_job(path), output=tmp_path / "out", log=lambda m: None)
    assert result.ledger.quarantined == result.ledger.input == 1
    reason = pq.read_table(tmp_path / "out" / "quarantine")["quarantine_reason"][0].as_py()
    assert reason.startswith("unreadable Parquet from row 0")


def test_parquet_splits_by_row_groups(tmp_path):
    path = tmp_path / "docs.parquet"
    pq.write_table(pa.table({"text": [f"row {i} " + "x" * 200 for i in range(1000)]}), path, row_group_size=50)
    source = ParquetSource([str(path)])
    rows, ranges, problem = _read_in_splits(source, str(path), 4096)
    assert len(ranges) > 3 and problem is None and rows == list(source.rows(str(path)))


def test_the_chain_check_finds_a_gap_an_overlap_a_short_chain_and_a_break():
    ok = [{"sync": 0, "crossed": 10, "reached_end": False, "broke": False},
          {"sync": None, "crossed": None, "reached_end": False, "broke": False},
          {"sync": 10, "crossed": None, "reached_end": True, "broke": False}]
    assert check_chain(ok) is None
    assert "starts at 12" in check_chain([ok[0], {**ok[2], "sync": 12}])  # a record between them was skipped
    assert "no split read to the end" in check_chain([ok[0], {**ok[2], "reached_end": False, "crossed": 20}])
    assert "break" in check_chain([ok[0], {**ok[2], "broke": True}])


# --- runs ----------------------------------------------------------------------------------------------


def _job(folder: Path, inputs, **overrides) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = small_job(folder, inputs)
    job = yaml.safe_load(path.read_text())
    job.update(overrides)
    path.write_text(yaml.safe_dump(job))
    return path


def _rows_in_part_order(output: Path) -> dict[str, list]:
    return {name: [row for f in sorted((output / name).glob("*.parquet")) for row in pq.read_table(f).to_pylist()]
            for name in OUTPUTS}


def _shards(output: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((output / "shards").iterdir())}


@pytest.fixture(scope="module")
def whole_run(ray_local, tmp_path_factory):
    folder = tmp_path_factory.mktemp("whole")
    return run(load_job(_job(folder, [DEMO], split_bytes=1 << 30)), output=folder / "out", log=lambda m: None).output


def test_split_sizes_change_no_row_and_no_shard_byte(whole_run, tmp_path):
    result = run(load_job(_job(tmp_path, [DEMO], split_bytes=20_000)), output=tmp_path / "out", log=lambda m: None)
    stats = json.loads((tmp_path / "out" / "stats.json").read_text())
    assert stats["run"]["splits"] == 15 and stats["run"]["split_inputs"] == 1 and stats["run"]["read_whole_after_a_break"] == 0
    assert len(list((tmp_path / "out" / "rejected").glob("part-0000000-000*"))) > 1  # parts from several splits
    assert _rows_in_part_order(tmp_path / "out") == _rows_in_part_order(whole_run)
    assert _shards(tmp_path / "out") == _shards(whole_run)
    assert result.ledger.to_dict() == json.loads((whole_run / "stats.json").read_text())["ledger"]


def test_split_runs_are_byte_identical_for_1_and_2_workers(ray_local, tmp_path):
    job = load_job(_job(tmp_path, [DEMO], split_bytes=30_000))
    run(job, output=tmp_path / "one", log=lambda m: None, max_workers=1)
    run(job, output=tmp_path / "two", log=lambda m: None, max_workers=2)
    assert_same_outputs(tmp_path / "one", tmp_path / "two")


def _with_corrupt_middle_member(source: Path, target: Path) -> None:
    """The demo archive with the deflate data of one member near the middle overwritten (its header kept)."""
    data = bytearray(source.read_bytes())
    middle = data.find(b"\x1f\x8b\x08", len(data) // 2)
    data[middle + 30:middle + 90] = b"\x00" * 60
    target.write_bytes(bytes(data))


def test_a_corrupt_member_in_a_split_file_makes_it_read_whole_with_the_unsplit_outcome(ray_local, tmp_path):
    corrupt = tmp_path / "corrupt.warc.gz"
    _with_corrupt_middle_member(DEMO, corrupt)
    whole = run(load_job(_job(tmp_path / "a", [corrupt], split_bytes=1 << 30)), output=tmp_path / "whole", log=lambda m: None)
    logs = []
    run(load_job(_job(tmp_path / "b", [corrupt], split_bytes=20_000)), output=tmp_path / "split", log=logs.append)
    assert any("is read whole instead of in 15 splits" in line for line in logs)
    stats = json.loads((tmp_path / "split" / "stats.json").read_text())
    assert stats["run"]["read_whole_after_a_break"] == 1 and stats["run"]["splits"] == 1
    assert whole.ledger.quarantined >= 1  # the break is quarantined with its reason, as unsplit
    assert_same_outputs(tmp_path / "split", tmp_path / "whole")


def test_a_single_member_gzip_over_split_bytes_runs_as_one_split(ray_local, tmp_path, whole_run):
    single = tmp_path / "single.warc.gz"
    single.write_bytes(gzip.compress(gzip.decompress(DEMO.read_bytes())))
    run(load_job(_job(tmp_path, [single], split_bytes=4096)), output=tmp_path / "out", log=lambda m: None)
    assert json.loads((tmp_path / "out" / "stats.json").read_text())["run"]["splits"] == 1


def test_resume_skips_finished_splits_and_refuses_a_changed_split_bytes(whole_run, tmp_path):
    job = _job(tmp_path / "a", [DEMO], split_bytes=20_000)
    out = tmp_path / "run"
    killed = gristmill_run(job, out, fault="driver:split@4")
    assert killed.returncode == -9, killed.stderr[-2000:]
    done = sorted(p.name for p in (out / ".work" / "done").glob("*.json"))
    assert 4 <= len(done) < 15 and all(name.startswith("0000000-000") for name in done)
    with pytest.raises(JobError, match=r"split_bytes: 20000 → 30000"):
        run(load_job(_job(tmp_path / "b", [DEMO], split_bytes=30_000)), output=out, resume=True, log=lambda m: None)
    resumed = gristmill_run(job, out, resume=True)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    stats = json.loads((out / "stats.json").read_text())
    # finished splits were not redone (a worker of the killed run may have finished one more after the listing)
    assert len(done) <= stats["run"]["splits_skipped"] < 15
    assert stats["run"]["inputs_skipped"] == 0  # the one input was only partly done
    assert _rows_in_part_order(out) == _rows_in_part_order(whole_run) and _shards(out) == _shards(whole_run)
