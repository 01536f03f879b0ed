"""A seeded corpus for the PII leak test: known structured PII in varied formats, written into a JSONL
file and a WARC file that a full run reads, in documents that are kept, dropped for their language, for
too few words, as duplicates, for too much PII, in records that are quarantined, in URLs, metadata,
non-HTML bodies and a malformed HTTP status line. Every value is invented (or a published test value:
card test numbers, IBAN examples, documentation IP ranges, well-known demo wallets).
"""

from __future__ import annotations

import json
import random

from support.warc import write_warc

# (entity, value as written in the text). Every value is one that must never appear in a run folder.
SEEDED = [
    ("EMAIL_ADDRESS", "maria.gonzalez84@examplemail.com"),
    ("EMAIL_ADDRESS", "t.nakamura+news@post.example.co.jp"),
    ("EMAIL_ADDRESS", "peter.hansen at fjordpost dot no"),
    ("EMAIL_ADDRESS", "li.wei [at] campusmail [dot] edu [dot] cn"),
    ("EMAIL_ADDRESS", "r.okafor(at)lagosnet.com.ng"),
    ("EMAIL_ADDRESS", "sam.quarry @ stonework . io"),
    ("PHONE_NUMBER", "+44 20 7946 0958"),
    ("PHONE_NUMBER", "+1 (415) 555-2671"),
    ("PHONE_NUMBER", "+49 30 90182045"),
    ("PHONE_NUMBER", "+81 3-1234-5678"),
    ("PHONE_NUMBER", "+33 1 42 68 53 00"),
    ("PHONE_NUMBER", "(212) 736-4100"),
    ("CREDIT_CARD", "4539 1488 0343 6467"),
    ("CREDIT_CARD", "5425-2334-3010-9903"),
    ("CREDIT_CARD", "378282246310005"),
    ("CREDIT_CARD", "6011 1111 1111 1117"),
    ("IBAN_CODE", "DE89 3704 0044 0532 0130 00"),
    ("IBAN_CODE", "GB29NWBK60161331926819"),
    ("IBAN_CODE", "FR14 2004 1010 0505 0001 3M02 606"),
    ("IP_ADDRESS", "203.0.113.77"),
    ("IP_ADDRESS", "2001:db8:4f2a:11::7c"),
    ("IP_ADDRESS", "fe80::1ff:fe23:4567:890a"),
    ("US_SSN", "536-22-8841"),
    ("US_SSN", "412 71 9023"),
    ("URL_CREDENTIALS", "deploy:Tr0ub4dor"),
    ("URL_CREDENTIALS", "analytics:pg-s3cret-77"),
    ("CRYPTO", "1BoatSLRHtKNngkdXEeobR76b53LETtpyT"),
    ("CRYPTO", "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"),
    ("CRYPTO", "0x52908400098527886E0F7030069857D2E4169EE7"),
    # Formats the world writes (issue 24): national formats of many regions, '(0)', extensions, numbers
    # not valid for their plan next to a context word; every card range and length.
    ("PHONE_NUMBER", "+41 (0)44 668 18 00"),
    ("PHONE_NUMBER", "0490 75 40 81"),
    ("PHONE_NUMBER", "+447700 921 916"),
    ("PHONE_NUMBER", "345-899-3560x4587"),
    ("PHONE_NUMBER", "0688 872 49 99"),
    ("PHONE_NUMBER", "(11) 96123-4567"),
    ("CREDIT_CARD", "4131034282458809939"),
    ("CREDIT_CARD", "213176828496175"),
    ("CREDIT_CARD", "630427373398"),
    ("CREDIT_CARD", "6225 0100 1234 5678 92"),
]
# Secrets inside the values above that must not survive on their own either.
SECRETS = ["Tr0ub4dor", "pg-s3cret-77"]

# Evasions that real pages contain: (entity, the value as the page writes it, what must not survive).
# The leak test compares after NFKC and with zero-width characters removed, so a value that survives in
# any of these forms is found.
EVASIONS = [
    ("EMAIL_ADDRESS", "payload=" + "k=v&" * 1250 + "olga.berg@mailhub.example.net" + "&z=1" * 1250,
     "olga.berg@mailhub.example.net"),
    ("EMAIL_ADDRESS", "ivo.\u200bnovak@\u200bpostbox.example.org", "ivo.novak@postbox.example.org"),
    ("CREDIT_CARD", "４５３９　７７２１　０３８８　４２１５", "4539 7721 0388 4215"),
    ("EMAIL_ADDRESS", "https://news.mill.example/unsubscribe?user=jane.roe%40example.com&list=7",
     "jane.roe%40example.com"),
]
EVASION_NEEDLES = [needle for _, _, needle in EVASIONS] + ["jane.roe@example.com", "4539772103884215"]

# Values that count only through what stands around them (issue 24, second round): a contact label in
# another language, 'reach … at', a card word after the number with its expiry date, an Amex grouped
# 4-6-5 before its expiry, an extension that makes LV's '21 239 609' a phone. (entity, as the page writes
# it, what must not survive).
LABELED = [
    ("PHONE_NUMBER", "Kundenservice: 0931982931", "0931982931"),
    ("PHONE_NUMBER", "reach the night porter at 0537 730 5207", "0537 730 5207"),
    ("CREDIT_CARD", "378734493671000 exp 04/29", "378734493671000"),
    ("CREDIT_CARD", "Payment: 3714 496353 98431, expiry 08/27", "3714 496353 98431"),
    ("PHONE_NUMBER", "Dispatch 21 239 609 x317", "21 239 609 x317"),
]


def values(entity: str) -> list[str]:
    return [v for e, v in SEEDED if e == entity]


def as_written(entity: str, value: str) -> str:
    """The value in the form a page shows it (credentials only exist inside a URL)."""
    if entity == "URL_CREDENTIALS":
        return f"https://{value}@git.example.org/mill/tools.git"
    return value


def mention(entity: str, value: str) -> str:
    """A sentence carrying one value, as web pages write them."""
    return {
        "EMAIL_ADDRESS": f"Readers can write to {value} with corrections.",
        "PHONE_NUMBER": f"The front desk answers calls at {value} on weekdays.",
        "CREDIT_CARD": f"One reader pasted the card number {value} into the comment form by mistake.",
        "IBAN_CODE": f"Donations go to the account {value} at the cooperative bank.",
        "IP_ADDRESS": f"The failed logins all came from {value} according to the server log.",
        "US_SSN": f"The leaked form listed the social security number {value} next to a home address.",
        "URL_CREDENTIALS": f"The old script cloned https://{value}@git.example.org/mill/tools.git every night.",
        "CRYPTO": f"Tips are welcome at the wallet {value} if you enjoy these notes.",
    }[entity].replace("https://analytics:pg-s3cret-77@git.example.org/mill/tools.git",
                      "postgres://analytics:pg-s3cret-77@10.20.30.40:5432/warehouse")


_SUBJECTS = ["The miller", "Our neighbour", "A young baker", "The river warden", "An old carpenter", "The schoolteacher",
             "A travelling merchant", "The village council", "My grandmother", "The ferryman", "A quiet shepherd",
             "The harbour master", "Every visitor", "The blacksmith", "A curious child", "The innkeeper"]
_VERBS = ["repaired", "painted", "measured", "carried", "described", "cleaned", "sketched", "ordered", "borrowed",
          "examined", "polished", "photographed", "rebuilt", "weighed", "admired", "inspected"]
_ADJECTIVES = ["wooden", "heavy", "narrow", "ancient", "crooked", "bright", "rusty", "elegant", "humble", "sturdy",
               "painted", "fragile", "enormous", "familiar", "forgotten", "gleaming"]
_NOUNS = ["wheel", "barn", "bridge", "cart", "ladder", "lantern", "fence", "gate", "chimney", "wagon", "basket",
          "bell", "window", "stairway", "orchard", "granary"]
_PLACES = ["behind the chapel", "beside the old quarry", "across from the market", "near the northern meadow",
           "under the linden trees", "along the canal path", "at the edge of town", "below the windmill",
           "inside the stone courtyard", "beyond the apple orchard", "next to the ferry landing", "on the hill road"]
_TIMES = ["before the spring floods", "during the long winter", "after the harvest festival", "on a foggy morning",
          "while the bells were ringing", "when the frost finally broke", "late in the autumn", "early one Sunday",
          "as the tide came in", "after the autumn fair"]


def sentences(rng: random.Random, n: int) -> list[str]:
    out = []
    for _ in range(n):
        out.append(f"{rng.choice(_SUBJECTS)} {rng.choice(_VERBS)} the {rng.choice(_ADJECTIVES)} {rng.choice(_NOUNS)} "
                   f"{rng.choice(_PLACES)} {rng.choice(_TIMES)}, and {rng.choice(_SUBJECTS).lower()} "
                   f"{rng.choice(_VERBS)} a {rng.choice(_ADJECTIVES)} {rng.choice(_NOUNS)} too.")
    return out


def article(seed: int, pii: list[tuple[str, str]], n_sentences: int = 12) -> str:
    """One line per sentence (distinct lines pass the repetition rules), PII sentences spread through."""
    rng = random.Random(seed)
    lines = sentences(rng, n_sentences)
    for k, (entity, value) in enumerate(pii):
        lines.insert(1 + (k * 3) % len(lines), mention(entity, value))
    return "\n".join(lines)


LABELS = {"EMAIL_ADDRESS": "mail", "PHONE_NUMBER": "phone", "CREDIT_CARD": "card", "IBAN_CODE": "IBAN",
          "IP_ADDRESS": "host", "US_SSN": "SSN", "URL_CREDENTIALS": "link", "CRYPTO": "wallet"}

GERMAN = ("Die Mühle am Fluss wurde im letzten Sommer von den Bewohnern des Dorfes gründlich renoviert. "
          "Spenden bitte auf das Konto {iban} bei der Genossenschaftsbank überweisen. "
          "Für Rückfragen erreichen Sie den Verein telefonisch unter {phone} oder schriftlich. "
          "Die Führungen finden jeden Samstag statt und dauern ungefähr zwei Stunden, bei jedem Wetter. "
          "Kinder unter zwölf Jahren zahlen keinen Eintritt, und Hunde sind an der Leine willkommen.")


def write_jsonl(path) -> dict[str, str]:
    """The JSONL input; returns {document id: what should happen to it}."""
    by_entity = {e: values(e) for e, _ in SEEDED}
    kept_pii = [(e, v) for e, vs in by_entity.items() for v in vs]
    docs, fate = [], {}
    # Kept documents: each carries a slice of the seeded values, and the URL and metadata carry some too.
    for d in range(6):
        chunk = kept_pii[d::6]
        docs.append({"id": f"kept-{d}", "text": article(100 + d, chunk),
                     "url": f"https://deploy:Tr0ub4dor@site{d}.example.org/notes/{d}" if d == 0 else f"https://site{d}.example.org/notes/{d}",
                     "author": {"name": "M. Gonzalez", "contact": "maria.gonzalez84@examplemail.com",
                                "phone": "+44 20 7946 0958"} if d == 1 else None})
        fate[f"kept-{d}"] = "kept"
    # A document that hides values the way real pages do (a long run, zero-width characters, full-width
    # digits, percent-encoding in a URL).
    docs.append({"id": "evasions", "text": "\n".join(
        [*sentences(random.Random(11), 6), *(f"One page carried {written} near its footer." for _, written, _ in EVASIONS)])})
    fate["evasions"] = "redacted wherever it ends"
    docs.append({"id": "labeled", "text": "\n".join(
        [*sentences(random.Random(13), 6), *(f"The page footer read: {written}." for _, written, _ in LABELED)])})
    fate["labeled"] = "redacted wherever it ends"
    # An exact copy of a kept document: dropped by dedup, still in rejected/.
    docs.append({"id": "copy-of-kept-2", "text": docs[2]["text"], "url": "https://mirror.example.net/notes/2"})
    fate["copy-of-kept-2"] = "exact_duplicate"
    # Too few words: dropped by quality, before anything else would look at it.
    docs.append({"id": "short", "text": f"The old mill notes said: card {values('CREDIT_CARD')[1]}, mail {values('EMAIL_ADDRESS')[2]}, "
                                         f"SSN {values('US_SSN')[0]}, wallet {values('CRYPTO')[2]}."})
    fate["short"] = "dropped before the PII stage"
    # Not English: dropped by the language stage.
    docs.append({"id": "german", "text": GERMAN.format(iban=values("IBAN_CODE")[0], phone=values("PHONE_NUMBER")[2])})
    fate["german"] = "dropped before the PII stage"
    # A page that is mostly PII (a leaked contact dump): more items than pii.max_pii_items.
    lines = sentences(random.Random(7), len(SEEDED))
    # Each value under its column's label, as dumps print them (plain 12-15 digit card numbers and numbers
    # that are not valid for their plan count only next to such a word).
    dump = "\n".join(f"{line[:-1]}, as noted under {LABELS[e]} {as_written(e, v)}." for line, (e, v) in zip(lines, SEEDED))
    docs.append({"id": "dump", "text": dump})
    fate["dump"] = "too_much_pii"
    with open(path, "w") as handle:
        for doc in docs:
            doc = {k: v for k, v in doc.items() if v is not None}
            handle.write(json.dumps(doc, ensure_ascii=False) + "\n")
        # Quarantined records: a broken JSON line and a text that is not a string, both holding PII.
        handle.write('{"id": "broken", "text": "call me on ' + values("PHONE_NUMBER")[0] + ' or mail '
                     + values("EMAIL_ADDRESS")[0] + '\n')
        handle.write(json.dumps({"id": "listtext", "text": [values("IBAN_CODE")[1], values("CREDIT_CARD")[0]]}) + "\n")
    return fate


def write_warc_file(path) -> None:
    html = [("Content-Type", "text/html; charset=utf-8")]

    def page(seed, pii):
        body = "".join(f"<p>{line}</p>" for line in article(seed, pii).split("\n"))
        return f"<html><head><title>Notes {seed}</title></head><body><article>{body}</article></body></html>".encode()

    responses = [
        ("http://mill.example.org/a", "200 OK", html, page(201, SEEDED[::3])),
        ("http://mill.example.org/b", "200 OK", html, page(202, SEEDED[1::3])),
        ("https://analytics:pg-s3cret-77@intranet.example.org/c", "200 OK", html, page(203, SEEDED[2::3])),
        # Not HTML, not found: dropped at the source; their bodies must not be stored either.
        ("http://mill.example.org/contacts.txt", "200 OK", [("Content-Type", "text/plain")],
         "\n".join(v for _, v in SEEDED).encode()),
        ("http://mill.example.org/gone", "404 Not Found", html, page(204, SEEDED[:10])),
        # A malformed status line whose text lands in the quarantine reason.
        ("http://mill.example.org/bad", f"OK-{values('EMAIL_ADDRESS')[0]}-{values('PHONE_NUMBER')[5]}", html,
         page(205, SEEDED[10:14])),
    ]
    write_warc(path, responses)
