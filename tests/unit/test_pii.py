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
from gristmill.pipeline.stages.decide import decide
from gristmill.pipeline.stages.pii import RedactPII, pii_stats
from gristmill.schemas import columns as C
from gristmill.schemas.job import JobError, PiiConfig
from gristmill.schemas.shards import PII_PLACEHOLDERS
from gristmill.schemas.stats import StageStats

from support.repo import REPO
from support.pii_corpus import SEEDED, as_written, mention


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

    from gristmill.pipeline.steps.tokenize import check_placeholders, load_tokenizer_with_added

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


# --- formats the world writes (issue 24): per family, positives and hard negatives ---

@pytest.mark.parametrize("text,value", [
    # international, with and without spaces, '00', '(0)', extensions, RFC 3966
    ("Office: +41 (0)44 668 18 00", "+41 (0)44 668 18 00"),
    ("Emergency line: +44 20 7946 0958 ext. 12", "+44 20 7946 0958 ext. 12"),
    ("Reception desk 0049 30 901820 45", "0049 30 901820 45"),
    ("Customer service: +81 3-1234-5678.", "+81 3-1234-5678"),
    ("WhatsApp-free desk: +5511961234567", "+5511961234567"),
    ("Link: tel:+33-1-42-68-53-00", "+33-1-42-68-53-00"),
    # national formats of regions outside presidio's eight, no context word needed when valid as written
    ("Our office: 0412 345 678", "0412 345 678"),  # AU mobile
    ("Reception desk 06 12 34 56 78", "06 12 34 56 78"),  # FR
    ("Customer service: 020 7946 0958", "020 7946 0958"),  # GB
    ("Office: (11) 96123-4567", "(11) 96123-4567"),  # BR
    ("Reception desk 011 2345-6789", "011 2345-6789"),  # AR with its area code '011'
    ("Front desk: (212) 736-4100 x204", "(212) 736-4100 x204"),  # US with an extension
    # not valid for the plan, bare or in another grouping: counts next to a context word, in several languages
    ("Call 345-899-3560x4587 after six.", "345-899-3560x4587"),
    ("Telefon: 0688 872 49 99", "0688 872 49 99"),
    ("Pour réserver, appelez le 0490754081.", "0490754081"),
    ("Наш телефон: 029-757 09 35", "029-757 09 35"),
    ("お問い合わせ 電話 03-1234-5678", "03-1234-5678"),
    ("Free hotline: 0800 - 123 456", "0800 - 123 456"),  # spaced dashes: the screen must let it through
])
def test_phones_in_the_formats_of_many_regions(analyzer, text, value):
    assert (value, "PHONE_NUMBER") in found(analyzer, text)


@pytest.mark.parametrize("text", [
    "Updated on 03/03/2014 - 12:08, submitted on 20/02/2014 - 14:28.",  # dates with hours
    "The order ORD-4471-2290 shipped 2024-03-15 and version 10.4.17 followed in 2019.3.2.",
    "Prices start at €1,299.99; the premium model costs 12 499,00 kr.",
    "ISBN 978-3-16-148410-0, ISSN 0810-8889, ISBN 0-618-51177-6.",
    "Coordinates 40.712776, -74.005974 mark the start of the route.",
    "Tracking number 9400 1000 0000 0000 0000 00 and 1Z999AA10123456784, FedEx 123456789012.",
    "Final score 102-98 after overtime; 45,312 fans; the band's best years were 1999-2003.",
    "The total population was 19 082 000 in 2010, 10.423.242 page hits since.",
    "Room 1204 on floor 12, postcode 94105-1234, 〒101-0032 Tokyo.",
    "Order #4471229012 was placed yesterday.",  # a bare long id: not a phone without a context word
])
def test_phone_look_alikes_are_not_phones(analyzer, text):
    assert [h for h in found(analyzer, text) if h[1] == "PHONE_NUMBER"] == []


def test_a_context_word_labels_only_the_number_next_to_it(analyzer):
    # 'Telephone' labels 01507 529529, not the company number after it.
    text = "Telephone: 01507 529529 | Company No. 3676192 | VAT 716632831"
    assert [h for h in found(analyzer, text) if h[1] == "PHONE_NUMBER"] == [("01507 529529", "PHONE_NUMBER")]


def test_numbers_in_a_row_are_each_found(analyzer):
    text = "Dow Jones Newswires, 201-938-5500 201-938-5501 201-938-5502."
    assert [h[0] for h in found(analyzer, text)] == ["201-938-5500", "201-938-5501", "201-938-5502"]


# '0931982931' is valid in no plan of PHONE_REGIONS as written (bare digits): it counts only next to a
# context word, so each case below checks one word.
@pytest.mark.parametrize("text", [
    "Reception 0931982931", "Kundenservice: 0931982931", "Service client : 0931982931",
    "Atención al cliente 0931982931", "You can reach our team at 0931982931.", "My number is 0931982931.",
    "Booking line: 0931982931", "Support: 0931982931", "Head office 0931982931", "Contato: 0931982931",
    "0931982931, text me when you land.", "Ring 0931982931 today.", "Zadzwoń: 0931982931",
    "0931982931 is the number to dial after hours.",
])
def test_contact_labels_and_calling_words_in_several_languages(analyzer, text):
    assert ("0931982931", "PHONE_NUMBER") in found(analyzer, text)


def test_a_contact_label_counts_only_before_the_number(analyzer):
    assert found(analyzer, "| 31/01/2014 | 481702879 | | Home Office (publisher)") == []
    assert found(analyzer, "Dispatch 0931982931") == []  # and the number alone does not count


@pytest.mark.parametrize("text", [
    "Serial SN 0720-7077-9756, model GC-4706.", "Contact reference 0454-4190-754 in the minutes.",
    "Support ticket 0931982931 was closed.", "Order no. 0931 982 931 shipped.", "Call us about case #0931982931.",
    "Customer ID: 05537305207", "Bestellnummer 0931982931",
    "Serial 8221-8774-1192-0579, model MF-2378.",  # RuPay range, Luhn-valid: a card shape, labeled a serial
    "Invoice 4111 1111 1111 1111 was paid.",
])
def test_an_id_label_right_before_a_number_rules_out_phone_and_card(analyzer, text):
    assert [h for h in found(analyzer, text) if h[1] in ("PHONE_NUMBER", "CREDIT_CARD")] == []


def test_extensions_are_phone_evidence(analyzer):
    # A written-out extension word is a context word: '+1 356' is no area code, but 'ext.' says phone.
    assert found(analyzer, "Dispatch: +1-356-563-0786 ext. 461") == [("+1-356-563-0786 ext. 461", "PHONE_NUMBER")]
    assert found(analyzer, "Dispatch: +1-356-563-0786x461") == []  # 'x' alone is not a word
    # LV writes '21 239 609', the shape of a thousands-separated amount; with an extension it is a phone.
    assert found(analyzer, "Dispatch: 21 239 609 x317") == [("21 239 609 x317", "PHONE_NUMBER")]
    assert found(analyzer, "Dispatch: 21 239 609") == []


def test_an_email_at_a_public_suffix_host(analyzer):
    assert found(analyzer, "Write to paliiboryslav@gov.ua today.") == [("paliiboryslav@gov.ua", "EMAIL_ADDRESS")]


def _luhn(body: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return body + str((10 - total % 10) % 10)


@pytest.mark.parametrize("prefix,length", [
    ("4", 13), ("4", 16), ("4", 19), ("51", 16), ("55", 16), ("2221", 16), ("2720", 16), ("34", 15), ("37", 15),
    ("6011", 16), ("65", 16), ("644", 19), ("62", 16), ("62", 19), ("3528", 16), ("3589", 19), ("2131", 15),
    ("1800", 15), ("300", 14), ("36", 14), ("5018", 12), ("6304", 19), ("2200", 16), ("9792", 16),
])
def test_cards_of_every_major_range_grouped_or_plain(analyzer, prefix, length):
    number = _luhn((prefix + "7" * length)[:length - 1])
    groups = " ".join(number[i:i + 4] for i in range(0, length, 4))
    for text in (f"I paid with card {number} yesterday.", f"Billing: {groups} exp 04/29"):
        value = number if number in text else groups
        assert (value, "CREDIT_CARD") in found(analyzer, text), (prefix, length, text)


def test_plain_short_card_numbers_need_a_card_word(analyzer):
    amex = _luhn("37" + "4" * 12)  # 15 digits, Luhn-valid
    assert (amex, "CREDIT_CARD") in found(analyzer, f"Amex {amex} was declined.")
    assert found(analyzer, f"Reference {amex} in the ledger.") == []
    maestro = _luhn("6304" + "2" * 7)  # 12 digits
    assert (maestro, "CREDIT_CARD") in found(analyzer, f"Maestro card {maestro}")
    assert [h for h in found(analyzer, f"Shipment {maestro} left the depot.") if h[1] == "CREDIT_CARD"] == []
    # Sixteen digits with an issuer range and the checksum count without a word; without them, never.
    assert [h[1] for h in found(analyzer, "Token 4111111111111111 stored.")] == ["CREDIT_CARD"]
    assert found(analyzer, "Token 4111111111111112 stored, id 9111111111111111 too.") == []


@pytest.mark.parametrize("text", [
    "The dump had 378282246310005 with its expiry date.", "Dump: 378282246310005 exp 04/29",
    "Dump: 378282246310005 gültig bis 05/27", "Dump: 378282246310005 CVV: 123",
    "Please refund the purchase made with 378282246310005.", "Cardholder: 378282246310005",
])
def test_card_fields_and_payment_words_label_a_plain_short_card(analyzer, text):
    assert ("378282246310005", "CREDIT_CARD") in found(analyzer, text)
    assert found(analyzer, "The dump had 378282246310005 in it.") == []


@pytest.mark.parametrize("text,value", [
    ("Card: 4111 1111 1111 1111 09/26 ***", "4111 1111 1111 1111"),  # the month is not a fifth group
    ("4111111111111111 09/2026 ***", "4111111111111111"),
    ("Payment details: 3782 822463 10005, expiry 08/27", "3782 822463 10005"),  # Amex 4-6-5
])
def test_a_card_followed_by_its_expiry_date(analyzer, text, value):
    assert (value, "CREDIT_CARD") in found(analyzer, text)


@pytest.mark.parametrize("make", [
    lambda v: "payload=" + "a=1&" * 1250 + v + "&b=2" * 1250,  # in a 10,000-character run without whitespace
    lambda v: "x" * 6000 + "/" + v + "/" + "y" * 4000,
    lambda v: v.replace("@", "\u200b@").replace(".", ".\u200b", 1),  # zero-width characters inside
    lambda v: "https://news.mill.org/unsubscribe?user=" + v.replace("@", "%40") + "&list=7",  # URL-encoded
    lambda v: v.replace("@", "&#64;"),  # a numeric character reference
    lambda v: v.translate({ord(c): ord(c) + 0xFEE0 for c in "abcdefghijklmnopqrstuvwxyz.@"}),  # full-width
])
def test_email_evasions_are_found_and_the_whole_original_span_redacted(analyzer, make):
    text = "Write to " + make("jane.roe@example.com") + " today."
    spans = analyzer.analyze(text)
    assert [s.entity for s in spans] == ["EMAIL_ADDRESS"]
    redacted = redact(text, spans)
    assert redacted.count("|||EMAIL_ADDRESS|||") == 1
    for piece in ("jane", "roe", "example", "%40", "\u200b", "&#64;", "ｊａｎｅ"):
        assert piece not in redacted


def test_card_in_full_width_digits_is_found_and_redacted_whole(analyzer):
    card = "４５３９　１４８８　０３４３　６４６７"  # full-width digits and ideographic spaces, as CJK pages write them
    text = f"信用卡号码：{card}，请勿泄露。"
    spans = analyzer.analyze(text)
    assert [(text[s.start:s.end], s.entity) for s in spans] == [(card, "CREDIT_CARD")]
    assert redact(text, spans) == "信用卡号码：|||CREDIT_CARD|||，请勿泄露。"


def test_phone_in_arabic_indic_digits(analyzer):
    text = "هاتف: +٩٧١ ٥٠ ١٢٣ ٤٥٦٧"
    assert [s.entity for s in analyzer.analyze(text)] == ["PHONE_NUMBER"]


def test_normalized_view_maps_every_span_back():
    from gristmill.filters.pii import NormalizedText

    original = "a\u200bb ＡＢ ﬁ ?u=x%40y &#64; é"
    view = NormalizedText(original)
    assert view.text == "ab AB fi ?u=x@y @ é"
    for needle, source in [("ab", "a\u200bb"), ("AB", "ＡＢ"), ("fi", "ﬁ"), ("x@y", "x%40y"), ("@ é", "&#64; é")]:
        start = view.text.index(needle)
        begin, end = view.original(start, start + len(needle))
        assert original[begin:end] == source
    plain = NormalizedText("nothing to change here")
    assert plain.text == "nothing to change here" and plain.original(3, 7) == (3, 7)
    # A '%' outside a URL is left alone: '100%40' is a percentage next to a number.
    assert NormalizedText("grew 100%40 times").text == "grew 100%40 times"


def test_every_seeded_evasion_is_redacted(analyzer):
    from support.pii_corpus import EVASIONS

    for entity, written, needle in EVASIONS:
        text = f"One page carried {written} near its footer."
        spans = analyzer.analyze(text)
        redacted = redact(text, spans)
        assert entity in {s.entity for s in spans} and needle not in redacted, (entity, needle, redacted[:200])


@pytest.mark.parametrize("text,value,entity", [
    ("お問い合わせは電話03-1234-5678までお願いします。", "03-1234-5678", "PHONE_NUMBER"),
    ("电话：+86 10 6552 9988，传真另询。", "+86 10 6552 9988", "PHONE_NUMBER"),
    ("メールはjane.roe@example.comまでご連絡ください。", "jane.roe@example.com", "EMAIL_ADDRESS"),
    ("信用卡4539148803436467已被冻结。", "4539148803436467", "CREDIT_CARD"),
    ("전화 02-312-3456 으로 연락주세요", "02-312-3456", "PHONE_NUMBER"),
])
def test_values_inside_cjk_text_without_spaces(analyzer, text, value, entity):
    assert (value, entity) in found(analyzer, text)


def test_ids_glued_to_latin_letters_are_not_phones(analyzer):
    assert found(analyzer, "Part ID12345678 and SKU-AB98765432 ship today.") == []
