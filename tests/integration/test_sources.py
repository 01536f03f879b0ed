"""Inputs beyond WARC: JSONL (plain, gz, zst), Parquet, WET; bad input quarantined with a reason;
datatrove's own outputs read as they are; score-only mode."""

from __future__ import annotations

import gzip
import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard
from warcio.warcwriter import WARCWriter

from gristmill import JsonlSource, ParquetSource, Pipeline, WetSource, default_stages
from gristmill.pipeline.engine.api import run
from gristmill.pipeline.sources.base import generated_id
from gristmill.schemas import columns as C
from gristmill.schemas.job import load_job

from support.repo import REPO

ARTICLE = (
    "The mill stood at the bend of the river, where the water ran fast enough to turn the wheel all year. "
    "Farmers brought their grain in carts and waited with the miller while the stones did their work. "
    "In winter the pond froze at the edges, and the children of the village skated there after school. "
    "The miller kept a ledger of every sack, and that ledger is now in the museum beside the old scales. "
    "When the railway arrived, cheaper flour came from the city and the wheel slowly fell silent. "
    "A local society restored the building in 1987, and on summer weekends it grinds wholemeal again. "
    "Visitors can watch the gears turn, buy a small bag of flour, and read about the families who worked here. "
    "Most of them say the sound of the water is what they remember best about the visit."
)
RECORDS = [
    {"text": ARTICLE, "id": "doc-a", "metadata": {"url": "http://mill.test/a", "dump": "CC-MAIN-2024-22"}, "lang": "en"},
    {"text": ARTICLE.replace("mill", "forge"), "metadata": {"url": "http://mill.test/b"}},  # no id
]


def _jsonl(records) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in records).encode()


@pytest.mark.parametrize("suffix,compress", [(".jsonl", bytes), (".jsonl.gz", gzip.compress),
                                             (".jsonl.zst", zstandard.ZstdCompressor().compress)])
def test_jsonl_plain_and_compressed(tmp_path, suffix, compress):
    path = tmp_path / f"docs{suffix}"
    path.write_bytes(compress(_jsonl(RECORDS)))
    rows = JsonlSource([str(path)], metadata_keys=["lang"]).read(str(path)).to_pylist()
    assert [r[C.TEXT] for r in rows] == [RECORDS[0]["text"], RECORDS[1]["text"]]
    assert rows[0][C.ID] == "doc-a" and rows[1][C.ID] == generated_id(str(path), 1)
    assert [r[C.URL] for r in rows] == ["http://mill.test/a", "http://mill.test/b"]
    assert json.loads(rows[0][C.METADATA]) == {"dump": "CC-MAIN-2024-22", "lang": "en", "url": "http://mill.test/a"}
    assert all(r[C.QUARANTINE_REASON] is None and r[C.SKIP_REASON] is None for r in rows)


def test_jsonl_bad_records_are_quarantined_and_the_rest_read(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(
        json.dumps({"text": "fine"}) + "\n"
        + "{not json\n"
        + json.dumps({"body": "no text key"}) + "\n"
        + json.dumps({"text": 42}) + "\n"
        + "\n"
        + json.dumps(["a", "list"]) + "\n"
        + json.dumps({"content": "custom key"}) + "\n"
    )
    rows = JsonlSource([str(path)]).read(str(path)).to_pylist()
    reasons = [r[C.QUARANTINE_REASON] for r in rows]
    assert reasons[0] is None and rows[0][C.TEXT] == "fine"
    assert "not JSON" in reasons[1] and "no 'text' field" in reasons[2] and "is a int, not a string" in reasons[3]
    assert "empty line" in reasons[4] and "not an object" in reasons[5] and "no 'text' field" in reasons[6]
    assert len({r[C.ID] for r in rows}) == len(rows) == 7
    custom = JsonlSource([str(path)], text_key="content").read(str(path)).to_pylist()
    assert custom[6][C.TEXT] == "custom key"


def test_empty_and_truncated_files_are_quarantined(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    assert JsonlSource([str(empty)]).read(str(empty)).to_pylist()[0][C.QUARANTINE_REASON] == "empty file: no records"
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(gzip.compress(_jsonl(RECORDS * 50))[:-40])
    rows = JsonlSource([str(cut)]).read(str(cut)).to_pylist()
    assert rows[-1][C.QUARANTINE_REASON].startswith("unreadable from line") and sum(r[C.TEXT] is not None for r in rows) >= 90


def test_parquet_in_datatrove_layout_and_a_corrupt_file(tmp_path):
    path = tmp_path / "docs.parquet"
    pq.write_table(pa.Table.from_pylist(RECORDS), path)
    rows = ParquetSource([str(path)]).read(str(path)).to_pylist()
    assert [r[C.TEXT] for r in rows] == [RECORDS[0]["text"], RECORDS[1]["text"]]
    assert rows[0][C.ID] == "doc-a" and rows[1][C.URL] == "http://mill.test/b"
    corrupt = tmp_path / "corrupt.parquet"
    corrupt.write_bytes(path.read_bytes()[:100] + b"garbage" * 20)
    rows = ParquetSource([str(corrupt)]).read(str(corrupt)).to_pylist()
    assert len(rows) == 1 and rows[0][C.QUARANTINE_REASON].startswith("unreadable Parquet")
    assert ParquetSource([str(path)], text_key="missing").read(str(path)).to_pylist()[0][C.QUARANTINE_REASON]


def _wet(path, texts):
    with open(path, "wb") as handle:
        writer = WARCWriter(handle, gzip=True)
        writer.write_record(writer.create_warcinfo_record("x.wet.gz", {"software": "test"}))
        for i, text in enumerate(texts):
            record = writer.create_warc_record(f"http://wet.test/{i}", "conversion", payload=io.BytesIO(text.encode()),
                                               warc_content_type="text/plain")
            writer.write_record(record)


def test_wet_conversion_records_carry_text(tmp_path):
    path = tmp_path / "x.warc.wet.gz"
    _wet(path, [ARTICLE, ""])
    rows = WetSource([str(path)]).read(str(path)).to_pylist()
    assert [r[C.WARC_TYPE] for r in rows] == ["warcinfo", "conversion", "conversion"]
    assert rows[1][C.TEXT] == ARTICLE and rows[1][C.URL] == "http://wet.test/0"
    assert rows[2][C.SKIP_REASON] == "empty_payload" and rows[0][C.SKIP_REASON] == "not_response"


def _job(tmp_path, source_yaml: str, extra: str = "") -> str:
    job = tmp_path / "job.yaml"
    # dedup off: these fixtures repeat one article on purpose.
    job.write_text(f"name: t\nsources:\n{source_yaml}\ntokenize: {{vocab_size: 300, val_fraction: 0}}\ndedup: null\n{extra}")
    return load_job(job)


def test_datatrove_jsonl_writer_output_runs_end_to_end(ray_local, tmp_path):
    from datatrove.data import Document
    from datatrove.pipeline.writers import JsonlWriter

    docs = [Document(text=ARTICLE + f" Note {i}.", id=f"dt-{i}", metadata={"url": f"http://dt.test/{i}"}) for i in range(5)]
    docs.append(Document(text="The mill is closed today.", id="dt-short", metadata={}))
    with JsonlWriter(str(tmp_path / "dt"), output_filename="part.jsonl.gz") as writer:
        for doc in docs:
            writer.write(doc)
    job = _job(tmp_path, f"  - {{type: jsonl, paths: ['{tmp_path}/dt/*.jsonl.gz']}}")
    result = run(job, output=tmp_path / "out", log=lambda m: None)
    curated = pq.read_table(tmp_path / "out" / "curated").to_pylist()
    assert [r[C.ID] for r in curated] == [f"dt-{i}" for i in range(5)]
    assert curated[0][C.URL] == "http://dt.test/0" and curated[0][C.TEXT] == docs[0].text
    assert result.ledger.input == 6 and sum(result.ledger.dropped.values()) == 1  # the one-line document


@pytest.mark.shared_data
def test_common_crawl_wet_sample_runs_end_to_end(ray_local, shared_data, tmp_path):
    wet = shared_data / "warc-samples" / "commoncrawl-whirlwind.warc.wet.gz"
    job = _job(tmp_path, f"  - {{type: wet, paths: ['{wet}']}}", "language: {keep: [an, es]}\ndecide: {mode: annotate}\n")
    result = run(job, output=tmp_path / "out", log=lambda m: None)
    assert result.ledger.input == 2 and result.ledger.kept == 1 and result.ledger.dropped == {"not_response": 1}
    row = pq.read_table(tmp_path / "out" / "curated").to_pylist()[0]
    assert row[C.URL] == "https://an.wikipedia.org/wiki/Escopete" and "Escopete" in row[C.TEXT]
    assert json.loads(row[C.METADATA]) == {"warc_language": "spa"}


def test_score_only_mode_keeps_every_document_with_its_scores(ray_local, tmp_path):
    job = load_job(REPO / "jobs" / "demo-archive.yaml")
    annotate = Pipeline(sources=Pipeline.from_job(job).sources, stages=default_stages(job), tokenize=job.tokenize,
                        decide_mode="annotate")
    result = annotate.run(tmp_path / "annotate", log=lambda m: None)
    ledger = result.ledger
    non_documents = sum(n for reason, n in ledger.dropped.items()
                        if reason in ("not_response", "not_html", "http_status_not_ok", "revisit", "empty_payload", "no_main_text"))
    curated = pq.read_table(tmp_path / "annotate" / "curated")
    assert curated.num_rows == ledger.input - ledger.quarantined - non_documents
    assert sum(ledger.dropped.values()) == non_documents  # no threshold dropped anything
    assert None not in curated[C.WORD_COUNT].to_pylist() and None not in curated[C.LANGUAGE_SCORE].to_pylist()
    assert min(curated[C.WORD_COUNT].to_pylist()) < 50  # documents the filter mode drops are here, scored


def test_uri_inputs_through_fsspec(tmp_path):
    """Inputs as URIs: fsspec's in-memory filesystem stands in for an object store here (it cannot be
    seen by other processes, so this exercises globbing and reading, not a Ray run)."""
    import fsspec

    from gristmill.pipeline.engine.runner import expand_inputs

    memory = fsspec.filesystem("memory")
    memory.pipe("/bucket/crawl/a.jsonl.gz", gzip.compress(_jsonl(RECORDS)))
    memory.pipe("/bucket/crawl/b.jsonl", _jsonl(RECORDS[:1]))
    files = expand_inputs(["memory://bucket/crawl/*.jsonl*"])
    assert files == ["memory:///bucket/crawl/a.jsonl.gz", "memory:///bucket/crawl/b.jsonl"]  # fsspec's canonical form
    rows = JsonlSource(files).read(files[0]).to_pylist()
    assert [r[C.TEXT] for r in rows] == [r["text"] for r in RECORDS] and rows[0][C.SOURCE_FILE] == files[0]
    local = tmp_path / "c.jsonl"
    local.write_bytes(_jsonl(RECORDS))
    assert expand_inputs([f"file://{local}"]) == [str(local)]
    with pytest.raises(Exception, match="matches no file"):
        expand_inputs(["memory://bucket/nothing/*.jsonl"])
