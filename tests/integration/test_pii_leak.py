"""The leak guarantee: seeded PII goes through a full run (WARC + JSONL sources, a real local Ray,
extraction, language, quality, PII, dedup, decide, writers, tokenize) and not one seeded value is left in
any file under the run folder: curated/, rejected/, quarantine/ Parquet read column by column, the shards
decoded with their tokenizer, the tokenizer itself, stats.json, job.resolved.yaml and anything else.

The seeds sit in kept documents, in documents dropped before the PII stage runs (wrong language, too
few words), in an exact duplicate, in a document with too much PII, in URLs (credentials), metadata, a
non-HTML body, a 404 body, a malformed HTTP status line (its text is the quarantine reason), a broken
JSON line and a record whose text is not a string.
"""

from __future__ import annotations

import json
import re
import unicodedata
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from gristmill.pipeline.engine.api import run
from gristmill.schemas import columns as C
from gristmill.schemas.job import Job
from gristmill.schemas.shards import PII_PLACEHOLDERS, read_shard, verify_shards

from support.pii_corpus import EVASION_NEEDLES, EVASIONS, LABELED, SECRETS, SEEDED, write_jsonl, write_warc_file

MAX_PII_ITEMS = 8


def _compact(text: str) -> str:
    """Only letters and digits, lower case, after NFKC: a value that survives with other separators, with
    zero-width characters inside or in full-width digits still matches."""
    return re.sub(r"[\W_]+", "", unicodedata.normalize("NFKC", text)).lower()


def _needles() -> list[str]:
    return sorted({v for _, v in SEEDED} | set(SECRETS) | set(EVASION_NEEDLES) | {needle for _, _, needle in LABELED})


@pytest.fixture(scope="module")
def leak_run(ray_local, tmp_path_factory):
    inputs = tmp_path_factory.mktemp("pii-inputs")
    fate = write_jsonl(inputs / "docs.jsonl")
    write_warc_file(inputs / "crawl.warc.gz")
    job = Job.model_validate({
        "name": "pii-leak",
        "sources": [{"type": "warc", "paths": [str(inputs / "crawl.warc.gz")]},
                    {"type": "jsonl", "paths": [str(inputs / "docs.jsonl")], "metadata_keys": ["author"]}],
        "pii": {"max_pii_items": MAX_PII_ITEMS},
        "tokenize": {"vocab_size": 400, "shard_tokens": 2048, "val_fraction": 0.2},
    })
    out = tmp_path_factory.mktemp("pii-run")
    return run(job, output=out, log=lambda m: None), fate


def _parquet_text(path: Path) -> str:
    table = pq.read_table(path)
    return json.dumps(table.to_pylist(), ensure_ascii=False, default=str)


def _run_folder_texts(out: Path) -> dict[str, str]:
    """Every file under the run folder as text: Parquet decoded, shards detokenized, the rest as bytes."""
    from tokenizers import Tokenizer

    texts = {}
    tokenizer = Tokenizer.from_file(str(out / "shards" / "tokenizer.json"))
    for path in sorted(p for p in out.rglob("*") if p.is_file()):
        name = str(path.relative_to(out))
        raw = path.read_bytes()
        texts[name] = raw.decode("utf-8", errors="replace")
        if path.suffix == ".parquet":
            texts[name] += _parquet_text(path)
        elif path.suffix == ".bin":
            shard = read_shard(path)
            texts[name] += "\n".join(tokenizer.decode(np.asarray(shard.document(i)).tolist(), skip_special_tokens=False)
                                     for i in range(shard.doc_count))
    return texts


def test_no_seeded_value_in_any_file_of_the_run(leak_run):
    result, _ = leak_run
    texts = _run_folder_texts(result.output)
    assert any(name.endswith(".bin") for name in texts) and any(name.startswith("quarantine/") for name in texts)
    compact = {name: _compact(text) for name, text in texts.items()}
    leaks = [(needle, name) for name, text in texts.items() for needle in _needles()
             if needle in text or _compact(needle) in compact[name]]
    assert leaks == [], leaks


def test_seeds_reached_every_outcome_and_were_redacted(leak_run):
    result, fate = leak_run
    out, ledger = result.output, result.ledger
    # The seeded records really went everywhere: kept, dropped before PII, duplicate, too much PII, quarantine.
    assert ledger.quarantined == 3 and ledger.dropped["exact_duplicate"] == 1
    assert ledger.dropped["too_much_pii"] >= 1 and ledger.dropped["not_html"] == 1
    rejected = {r[C.ID]: r for r in pq.read_table(out / "rejected").to_pylist()}
    for doc_id in ("short", "german"):
        assert rejected[doc_id][C.DROP_REASON] in ("too_few_words", "language_not_kept", "language_score_too_low")
        assert "|||" in rejected[doc_id][C.TEXT]  # redacted although dropped before the PII stage ran
    curated = pq.read_table(out / "curated").to_pylist()
    assert {f"kept-{d}" for d in range(6)} <= {r[C.ID] for r in curated}
    assert all(r[C.PII_COUNT] <= MAX_PII_ITEMS for r in curated)
    # Each redaction is recorded (kind and offsets, never the value), and the text holds its placeholder.
    for row in curated:
        kinds = [e["kind"] for e in row[C.TEXT_EDITS] if e["stage"] == "pii"]
        assert len(kinds) == row[C.PII_COUNT]
        assert all(row[C.TEXT].count(f"|||{kind}|||") >= 1 for kind in kinds)
    # Each evasion (a long run, zero-width characters, full-width digits, percent-encoding) was detected
    # and redacted with its type, wherever the document ended.
    rows = {r[C.ID]: r for r in [*curated, *rejected.values()]}
    evasions = rows["evasions"]
    assert sorted(e["kind"] for e in evasions[C.TEXT_EDITS] if e["stage"] == "pii") == sorted(e for e, _, _ in EVASIONS)
    # So was each value that counts through its context (a label, a card word after it, an extension).
    labeled = rows["labeled"]
    assert sorted(e["kind"] for e in labeled[C.TEXT_EDITS] if e["stage"] == "pii") == sorted(e for e, _, _ in LABELED)
    # Metadata stays JSON with its strings redacted; URL credentials leave scheme and host.
    kept1 = next(r for r in curated if r[C.ID] == "kept-1")
    assert json.loads(kept1[C.METADATA])["author"]["contact"] == "|||EMAIL_ADDRESS|||"
    kept0 = next(r for r in curated if r[C.ID] == "kept-0")
    assert kept0[C.URL] == "https://|||URL_CREDENTIALS|||@site0.example.org/notes/0"


def test_pii_stats_and_placeholder_tokens(leak_run):
    result, _ = leak_run
    out = result.output
    stats = json.loads((out / "stats.json").read_text())
    assert set(stats["pii"]) == {"documents_with_pii", "by_type"}
    assert stats["pii"]["documents_with_pii"] >= 10
    assert all(stats["pii"]["by_type"][entity] >= 2 for entity in {e for e, _ in SEEDED})
    assert "too_much_pii" in next(r for r in stats["funnel"] if r["stage"] == "pii")["dropped"]
    manifest = verify_shards(out / "shards")
    assert set(manifest.special_tokens) >= set(PII_PLACEHOLDERS) and manifest.added_special_tokens == []
    # Placeholders reach the shards as single tokens.
    email_id = manifest.special_tokens["|||EMAIL_ADDRESS|||"]
    total = sum(int((read_shard(out / "shards" / e.file).tokens == email_id).sum()) for e in manifest.shards)
    kept_emails = sum(r[C.TEXT].count("|||EMAIL_ADDRESS|||") for r in pq.read_table(out / "curated").to_pylist())
    assert total == kept_emails > 0
