"""PII detection and redaction (filters/pii.py), the RedactPII stage and its rule, the placeholders in
the tokenizer: real presidio recognizers, no mocks. The full-run leak test is test_pii_leak.py."""

from __future__ import annotations

import json
import random
from collections import Counter

import pyarrow as pa
import pytest

from gristmill.filters.pii import (
    NER_ENTITIES, STRUCTURED_ENTITIES, PiiAnalyzer, PiiSpan, find_ner_model, needs_analysis, placeholder, redact,
    resolve_overlaps,
)
from gristmill.pipeline.decide import decide
from gristmill.pipeline.stages.pii import RedactPII, pii_stats
from gristmill.schemas import columns as C
from gristmill.schemas.job import JobError, PiiConfig
from gristmill.schemas.shards import PII_PLACEHOLDERS
from gristmill.schemas.stats import StageStats

from conftest import REPO
from pii_corpus import SEEDED, as_written, mention


@pytest.fixture(scope="module")
def analyzer():
    return PiiAnalyzer()


def found(analyzer, text):
    return [(text[s.start:s.end], s.entity) for s in analyzer.analyze(text)]


def test_every_seeded_format_is_found_with_its_type(analyzer):
    for entity, value in SEEDED:
        text = mention(entity, value)
        hits = found(analyzer, text)
        expected = value if entity != "URL_CREDENTIALS" else value
        assert (expected, entity) in hits, (entity, value, hits)


@pytest.mark.parametrize("text,expected", [
    ("write to john at example dot com today", "john at example dot com"),
    ("write to j.doe [at] mail [dot] co [dot] uk.", "j.doe [at] mail [dot] co [dot] uk"),
    ("mail x(at)site.org, thanks", "x(at)site.org"),
    ("ask iasupport AT archive DOT org please", "iasupport AT archive DOT org"),
])
def test_obfuscated_emails(analyzer, text, expected):
    assert found(analyzer, text) == [(expected, "EMAIL_ADDRESS")]


@pytest.mark.parametrize("text", [
    "Look at google.com for the schedule.",
    "We met at noon dot the station.",  # 'noon dot the' has no real TLD
    "The test card 4111 1111 1111 1112 fails its checksum.",
    "Order 2024-03-15 14:32:07, ISBN 0-618-51177-6, ISBN 978-3-16-148410-0, version 2.14.3.",
    "Row | 46 | 17883 | 31/01/2014 | 6148034243 |",
    "commit 9fceb02d0ae598e95dc970b74767f19372d61af8 and id 550e8400-e29b-41d4-a716-446655440000",
    "SSN 078-05-1120 is the famous invalid one, 000-12-3456 too.",
])
def test_look_alikes_are_not_pii(analyzer, text):
    assert [h for h in found(analyzer, text) if h[1] != "PHONE_NUMBER" or "078-05-1120" not in h[0]] == []


def test_url_credentials_keep_scheme_and_host(analyzer):
    text = "DATABASE_URL=postgres://app:s3cr3t@db.example.com:5432/prod"
    spans = analyzer.analyze(text)
    assert redact(text, spans) == "DATABASE_URL=postgres://|||URL_CREDENTIALS|||@db.example.com:5432/prod"


def test_overlaps_merge_so_no_part_survives():
    spans = [PiiSpan(0, 10, "PHONE_NUMBER", 0.4), PiiSpan(5, 20, "CREDIT_CARD", 1.0), PiiSpan(30, 35, "IP_ADDRESS", 0.6)]
    assert resolve_overlaps(spans) == [PiiSpan(0, 20, "CREDIT_CARD", 1.0), PiiSpan(30, 35, "IP_ADDRESS", 0.6)]
    # A rule on the spans alone: the same spans in any order give the same result.
    assert resolve_overlaps(list(reversed(spans))) == resolve_overlaps(spans)


def test_redaction_is_deterministic_and_independent_of_order(analyzer):
    texts = [mention(e, as_written(e, v)) for e, v in SEEDED]
    forward = [redact(t, s) for t, s in zip(texts, analyzer.analyze_batch(texts))]
    order = list(range(len(texts)))
    random.Random(3).shuffle(order)
    shuffled = analyzer.analyze_batch([texts[i] for i in order])
    assert [redact(texts[i], s) for i, s in zip(order, shuffled)] == [forward[i] for i in order]
    assert all("|||" in t for t in forward)


def test_screen_passes_every_seeded_text_and_skips_plain_prose(analyzer):
    assert all(needs_analysis(mention(e, as_written(e, v))) for e, v in SEEDED)
    assert not needs_analysis("The miller opened the sluice at dawn and the wheel turned all day long.")


def test_placeholders_are_the_reserved_special_tokens():
    assert {placeholder(e) for e in (*STRUCTURED_ENTITIES, *NER_ENTITIES)} == set(PII_PLACEHOLDERS)


def _table(texts, skip=None, urls=None, metadata=None, quarantine=None):
    n = len(texts)
    return pa.table({
        C.ID: pa.array([str(i) for i in range(n)], C.TYPES[C.ID]),
        C.URL: pa.array(urls or [None] * n, C.TYPES[C.URL]),
        C.TEXT: pa.array(texts, C.TYPES[C.TEXT]),
        C.METADATA: pa.array(metadata or [None] * n, C.TYPES[C.METADATA]),
        C.SKIP_REASON: pa.array(skip or [None] * n, C.TYPES[C.SKIP_REASON]),
        C.QUARANTINE_REASON: pa.array(quarantine or [None] * n, C.TYPES[C.QUARANTINE_REASON]),
    })


def test_stage_redacts_every_row_counts_documents_and_drops_too_much_pii():
    stage = RedactPII(PiiConfig(max_pii_items=2))
    stage.setup()
    texts = ["Mail a@example.com or call +44 20 7946 0958 or card 4539 1488 0343 6467.",  # 3 items: too much
             "Only one: b@example.org.",
             "A dropped row still holds c@example.net.",
             None,
             "Nothing here at all."]
    table = _table(texts, skip=[None, None, "not_html", None, None],
                   urls=["https://u:pw123@h.example.com/x", None, None, None, None],
                   metadata=[None, json.dumps({"author": {"mail": "d@example.com"}, "n": 3}), None, None, None],
                   quarantine=[None, None, None, "malformed HTTP status line: 'OK-e@example.com'", None])
    counts = Counter()
    out = stage.process(table, counts)
    rows = out.to_pylist()
    assert rows[0][C.TEXT] == "Mail |||EMAIL_ADDRESS||| or call |||PHONE_NUMBER||| or card |||CREDIT_CARD|||."
    assert rows[2][C.TEXT] == "A dropped row still holds |||EMAIL_ADDRESS|||."  # not a document, still redacted
    assert [r[C.PII_COUNT] for r in rows] == [3, 1, None, None, 0]
    assert rows[0][C.URL] == "https://|||URL_CREDENTIALS|||@h.example.com/x"
    assert json.loads(rows[1][C.METADATA]) == {"author": {"mail": "|||EMAIL_ADDRESS|||"}, "n": 3}
    assert "e@example.com" not in rows[3][C.QUARANTINE_REASON]
    assert [(e["kind"], e["start"], e["end"]) for e in rows[1][C.TEXT_EDITS]] == [("EMAIL_ADDRESS", 10, 23)]
    assert counts["documents_with_pii"] == 2 and counts["by_type:EMAIL_ADDRESS"] == 2
    decided = decide(out, stage.rules())
    assert decided[C.DROP_REASON].to_pylist()[:2] == ["too_much_pii", None]
    stats = pii_stats([stage], [StageStats("pii", counts=counts)])
    assert stats == {"documents_with_pii": 2, "by_type": {
        "EMAIL_ADDRESS": 2, "PHONE_NUMBER": 1, "CREDIT_CARD": 1, "IBAN_CODE": 0, "IP_ADDRESS": 0, "US_SSN": 0,
        "URL_CREDENTIALS": 0, "CRYPTO": 0}}


def test_detect_only_mode_leaves_text():
    stage = RedactPII(PiiConfig(redact=False))
    stage.setup()
    out = stage.process(_table(["Mail a@example.com now."]), Counter())
    assert out[C.TEXT].to_pylist() == ["Mail a@example.com now."] and out[C.PII_COUNT].to_pylist() == [1]


def test_missing_ner_model_is_a_clear_error_or_off():
    with pytest.raises(JobError, match="not installed.*pii-ner"):
        RedactPII(PiiConfig(ner_model="en_core_web_nonexistent"))
    assert find_ner_model("/no/such/model") is None
    stage = RedactPII(PiiConfig(ner_model="auto"))
    assert stage.ner_model == find_ner_model("auto")  # the installed model, or None: NER off, structured on
    assert set(stage.entities) >= set(STRUCTURED_ENTITIES)


@pytest.mark.skipif(find_ner_model("auto") is None, reason="no spaCy model installed (pip install 'gristmill[pii-ner]')")
def test_ner_redacts_people_and_places_in_documents_only():
    stage = RedactPII(PiiConfig(ner_model="auto"))
    stage.setup()
    texts = ["Barack Obama visited Paris with Angela Merkel.", "Barack Obama visited Paris with Angela Merkel."]
    rows = stage.process(_table(texts, skip=[None, "language_not_kept"]), Counter()).to_pylist()
    assert rows[0][C.TEXT] == "|||PERSON||| visited |||LOCATION||| with |||PERSON|||."
    assert rows[1][C.TEXT] == texts[1]  # NER runs on documents only


def test_given_tokenizer_gets_placeholders_recorded(tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers

    from gristmill.pipeline.tokenize import check_placeholders, load_tokenizer_with_added

    bare = Tokenizer(models.WordLevel({"[UNK]": 0, "mail": 1, "me": 2}, unk_token="[UNK]"))
    bare.pre_tokenizer = pre_tokenizers.Whitespace()
    bare.add_special_tokens(["|||EMAIL_ADDRESS|||"])
    bare.save(str(tmp_path / "tokenizer.json"))
    tokenizer, added = load_tokenizer_with_added(str(tmp_path / "tokenizer.json"))
    assert "|||EMAIL_ADDRESS|||" not in added and set(added) == {"<|endoftext|>", *PII_PLACEHOLDERS} - {"|||EMAIL_ADDRESS|||"}
    check_placeholders(tokenizer)  # each one token, alone and inside text
    ids = tokenizer.encode("mail |||PHONE_NUMBER||| me").ids
    assert ids.count(tokenizer.token_to_id("|||PHONE_NUMBER|||")) == 1


def test_quickstart_job_has_pii_on():
    from gristmill.schemas.job import load_job

    job = load_job(REPO / "jobs" / "quickstart.yaml")
    assert job.pii is not None and job.pii.redact and set(job.pii.entities) == set(STRUCTURED_ENTITIES)
