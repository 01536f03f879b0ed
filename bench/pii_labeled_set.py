"""Writes tests/data/pii_labeled.jsonl: the labeled set that bench/pii_eval.py scores PII recall and
precision on. Deterministic (seeded): rerun to regenerate the same bytes.

How it is labeled: by construction. Each record is a carrier sentence written for this set (contact
pages, forum posts, server logs, invoices, config snippets, chat) with PII values inserted by the
generator, which records each value's type and offsets. The values are generated in the formats people
actually write, not presidio's own test templates: phone numbers are python-phonenumbers' example
numbers of 20 regions in E.164, international, national and RFC 3966 forms and with dots; card numbers
are random Luhn-valid numbers of four networks, plain, spaced, dashed and 4-6-5 (Amex); IBANs of ten
countries with computed mod-97 check digits, grouped and compact; IPv4, full and compressed IPv6 and
IPv4-mapped; SSNs dashed, spaced and as nine bare digits; URL credentials in six schemes; Bitcoin
base58 (checksummed) and bech32, Ethereum addresses; e-mails plain, tagged, upper case, in angle
brackets and mailto links, and obfuscated six ways.

Hard negatives carry no label: look-alikes that must not be redacted (Luhn-invalid card numbers, ISBNs,
dates, times, versions, prices, order and tracking numbers, ZIP+4, UUIDs, git hashes, MAC addresses,
coordinates, scores, "look at google.com", bible verses, large numbers). A value that is PII of one
type and detected as another counts as a miss and a false positive.

    python bench/pii_labeled_set.py [--out tests/data/pii_labeled.jsonl]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import string
from pathlib import Path

import phonenumbers

REPO = Path(__file__).resolve().parents[1]
SEED = 20261123

CARRIERS = {
    "EMAIL_ADDRESS": ["For press enquiries, please write to {v} and we will reply within two days.",
                      "Posted by guest ({v}) on the community board last Tuesday.",
                      "Reply-To: {v}", "If the form fails, just mail me at {v} instead.",
                      "Contact: <a href=\"mailto:{v}\">our office</a> for bookings."],
    "PHONE_NUMBER": ["Call us on {v} between nine and five.", "Tel.: {v} | Fax on request",
                     "My cell is {v}, text me when you arrive.", "Reservations: {v} (ask for the front desk).",
                     "The hotline {v} is staffed around the clock."],
    "CREDIT_CARD": ["I was charged twice on my card {v} last month, can someone help?",
                    "card_number={v}&exp=09/27&cvv=***", "Paid with {v}, receipt attached.",
                    "The leaked dump contained entries such as {v} with expiry dates."],
    "IBAN_CODE": ["Please transfer the deposit to IBAN {v} before Friday.", "Bankverbindung: {v}",
                  "Wire the amount to account {v}, reference your invoice number.", "IBAN: {v} / BIC on request"],
    "IP_ADDRESS": ["Failed password for root from {v} port 52144 ssh2", "Your IP address is {v}.",
                   "The forum banned {v} after the spam wave.", "server_name upstream; proxy_pass http://{v}:8080;"],
    "US_SSN": ["SSN: {v}", "Her social security number {v} was printed on the form.",
               "Applicant ID (SSN) {v}, date of birth withheld."],
    "URL_CREDENTIALS": ["git clone {v}", "DATABASE_URL={v}", "The old wiki linked {v} in a public page.",
                        "Set the mirror to {v} and restart the job."],
    "CRYPTO": ["Donations welcome: {v}", "Send the ransom to {v} within 48 hours.",
               "My tip jar is {v} if you found this useful.", "Withdraw to address {v} (double check it!)."],
}

NEGATIVES = [
    "The ISBN of the second edition is 978-3-16-148410-0 and it sold out quickly.",
    "Order #A-4471-2290 shipped on 2024-03-15 at 14:32:07 from our warehouse.",
    "Version 2.14.3 fixes the crash introduced in v2.14.0 (see build 20240315.2).",
    "Prices start at $1,299.99 and the premium model costs $2,450.00 before tax.",
    "Our office is at 221B Baker Street, London NW1 6XE; ZIP+4 codes look like 94105-1234.",
    "The request id was 550e8400-e29b-41d4-a716-446655440000 and commit 9fceb02d0ae598e95dc970b74767f19372d61af8.",
    "The device MAC is 00:1A:2B:3C:4D:5E according to the router page.",
    "Coordinates 40.7128, -74.0060 mark the start of the route.",
    "The final score was 3-2 after extra time, with 45,312 fans in the stadium.",
    "Look at google.com for the schedule, or meet at the station dot on the map.",
    "John 3:16 is quoted on the banner; read chapters 1-3 before class.",
    "The population grew from 1,234,567 in 1990 to 2,345,678 in 2020.",
    "The test card 4111 1111 1111 1112 is rejected because its checksum is wrong.",
    "Tracking number 1Z999AA10123456784 was delivered on time.",
    "Call 911 in an emergency, or 112 if you are travelling in Europe.",
    "The years 1999-2003 were the band's most productive period.",
    "Set the timeout to 30000 ms and the buffer to 65536 bytes.",
    "Room 1204, building 7, floor 12; the lift code is 4711.",
    "Temperatures ranged from -5.5 to 12.3 degrees over 24 hours.",
    "The patent US 7,654,321 B2 describes the same mechanism.",
    "Flight LH 2024 departs at 06:45 from gate B 14.",
    "The recipe needs 250 g flour, 2 eggs and 1.5 dl milk.",
    "Use the address range 10.0.0.0/8 only as a label in the diagram, not a host.",
    "The serial printed on the box is SN 8841-2209-5531.",
    "Model number KX-TG6812 replaced the older KX-TG6511.",
    "We met at noon at the cafe and talked at length about the project.",
    "The hash of the file is d41d8cd98f00b204e9800998ecf8427e.",
    "Episode 4 of season 12 aired on 12/04/2019.",
    "Reference 2019-0042-117 in the council minutes.",
    "Gene BRCA1 variant c.68_69delAG was reported in the study.",
]

# Named entities, labeled by hand (value strings; offsets are found in the text). Measured only when a
# spaCy model is installed (NER mode).
NER_SENTENCES = [
    ("Maria Gonzalez moved from Seville to Toronto in 2015 to open a bakery.",
     [("PERSON", "Maria Gonzalez"), ("LOCATION", "Seville"), ("LOCATION", "Toronto")]),
    ("Thanks to Dr. Anil Mehta for reviewing the draft over the weekend.", [("PERSON", "Anil Mehta")]),
    ("We drove along the Rhine from Basel to Cologne.", [("LOCATION", "Rhine"), ("LOCATION", "Basel"), ("LOCATION", "Cologne")]),
    ("Posted by Kevin O'Brien, a retired teacher living in Galway.", [("PERSON", "Kevin O'Brien"), ("LOCATION", "Galway")]),
    ("Yuki Tanaka and her brother Kenji visited Osaka last spring.",
     [("PERSON", "Yuki Tanaka"), ("PERSON", "Kenji"), ("LOCATION", "Osaka")]),
    ("The package was signed for by Fatima Al-Sayed at the Nairobi office.", [("PERSON", "Fatima Al-Sayed"), ("LOCATION", "Nairobi")]),
    ("Our guide, Pierre Lambert, grew up near Lyon.", [("PERSON", "Pierre Lambert"), ("LOCATION", "Lyon")]),
    ("Sofia Rossi won the regional chess final in Milan.", [("PERSON", "Sofia Rossi"), ("LOCATION", "Milan")]),
    ("I asked Tom Becker whether the trail to Lake Tahoe was open.", [("PERSON", "Tom Becker"), ("LOCATION", "Lake Tahoe")]),
    ("The mayor of Springfield, Linda Park, opened the new library.", [("LOCATION", "Springfield"), ("PERSON", "Linda Park")]),
    ("Grandpa Walter still tells stories about the winters in Minnesota.", [("PERSON", "Walter"), ("LOCATION", "Minnesota")]),
    ("Chen Wei presented the results at the conference in Singapore.", [("PERSON", "Chen Wei"), ("LOCATION", "Singapore")]),
    ("Send the signed contract to Olga Petrova in Warsaw.", [("PERSON", "Olga Petrova"), ("LOCATION", "Warsaw")]),
    ("The ferry from Dover to Calais was cancelled because of the storm.", [("LOCATION", "Dover"), ("LOCATION", "Calais")]),
    ("James Whitaker, 54, of Leeds, was named in the report.", [("PERSON", "James Whitaker"), ("LOCATION", "Leeds")]),
    ("The bakery on the corner sells the best rye bread in town.", []),
    ("Apple released a new update for its phones on Monday.", []),
    ("The committee will meet again after the summer break.", []),
]

PHONE_REGIONS = ["US", "GB", "DE", "FR", "IN", "BR", "CA", "IL", "JP", "AU", "ES", "IT", "NL", "MX", "ZA", "KR",
                 "SE", "PL", "NG", "SG"]


def luhn_complete(prefix: str, length: int, rng: random.Random) -> str:
    body = prefix + "".join(rng.choice(string.digits) for _ in range(length - len(prefix) - 1))
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:
            d = d * 2 - 9 if d * 2 > 9 else d * 2
        total += d
    return body + str((10 - total % 10) % 10)


def cards(rng):
    out = []
    for prefix, length in [("4", 16), ("51", 16), ("55", 16), ("2221", 16), ("34", 15), ("37", 15), ("6011", 16), ("4", 16)]:
        n = luhn_complete(prefix, length, rng)
        if length == 15:
            out += [n, f"{n[:4]} {n[4:10]} {n[10:]}", f"{n[:4]}-{n[4:10]}-{n[10:]}"]
        else:
            groups = [n[i:i + 4] for i in range(0, 16, 4)]
            out += [n, " ".join(groups), "-".join(groups)]
    return out


IBAN_FORMATS = {"DE": "8n10n", "GB": "4a6n8n", "FR": "5n5n11c2n", "ES": "4n4n1n1n10n", "IT": "1a5n5n12c",
                "NL": "4a10n", "BE": "3n7n2n", "CH": "5n12c", "PL": "8n16n", "AT": "5n11n"}


def iban(country: str, rng) -> str:
    bban = ""
    for size, kind in [(int(part[:-1]), part[-1]) for part in _split_format(IBAN_FORMATS[country])]:
        alphabet = {"n": string.digits, "a": string.ascii_uppercase, "c": string.ascii_uppercase + string.digits}[kind]
        bban += "".join(rng.choice(alphabet) for _ in range(size))
    numeric = "".join(str(int(ch, 36)) for ch in bban + country + "00")
    return f"{country}{98 - int(numeric) % 97:02d}{bban}"


def _split_format(fmt: str):
    part = ""
    for ch in fmt:
        part += ch
        if ch.isalpha():
            yield part
            part = ""


_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def base58check(payload: bytes) -> str:
    data = payload + hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4]
    n, out = int.from_bytes(data, "big"), ""
    while n:
        n, r = divmod(n, 58)
        out = _B58[r] + out
    return "1" * (len(data) - len(data.lstrip(b"\0"))) + out


_BECH = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"


def _polymod(values):
    gen = [0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3]
    chk = 1
    for v in values:
        top = chk >> 25
        chk = (chk & 0x1FFFFFF) << 5 ^ v
        for i in range(5):
            chk ^= gen[i] if (top >> i) & 1 else 0
    return chk


def bech32_address(program: bytes) -> str:
    acc, bits, data = 0, 0, [0]
    for b in program:
        acc, bits = (acc << 8) | b, bits + 8
        while bits >= 5:
            bits -= 5
            data.append((acc >> bits) & 31)
    if bits:
        data.append((acc << (5 - bits)) & 31)
    hrp = "bc"
    expanded = [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]
    polymod = _polymod(expanded + data + [0] * 6) ^ 1
    checksum = [(polymod >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(_BECH[d] for d in data + checksum)


def values(rng: random.Random) -> dict[str, list[str]]:
    v: dict[str, list[str]] = {}
    users = ["anna.k", "j_smith", "m.rossi", "oleg1987", "priya.n+shop", "CHEN.WEI", "lucas-ferreira", "sam"]
    domains = ["gmail.com", "post.example.co.uk", "uni-heidelberg.de", "mail.example.com.br", "outlook.fr",
               "company.io", "EXAMPLE.ORG", "yandex.ru"]
    emails = [f"{u}@{d}" for u, d in zip(users, domains)]
    obfuscated = ["anna.k at gmail dot com", "j_smith [at] example [dot] org", "m.rossi (at) libero (dot) it",
                  "oleg {at} yandex {dot} ru", "priya at company dot co dot in", "sam @ stonework . io",
                  "lucas [at] terra.com.br", "chen(at)example.cn"]
    v["EMAIL_ADDRESS"] = emails + obfuscated
    phones = []
    for region in PHONE_REGIONS:
        kind = phonenumbers.PhoneNumberType.MOBILE if rng.random() < 0.5 else phonenumbers.PhoneNumberType.FIXED_LINE
        number = phonenumbers.example_number_for_type(region, kind) or phonenumbers.example_number(region)
        fmt = rng.choice([phonenumbers.PhoneNumberFormat.INTERNATIONAL, phonenumbers.PhoneNumberFormat.NATIONAL,
                          phonenumbers.PhoneNumberFormat.E164, "dots"])
        if fmt == "dots":
            text = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL).replace(" ", ".").replace("-", ".")
        else:
            text = phonenumbers.format_number(number, fmt)
        phones.append(text)
    phones += ["(415) 555-2671", "415.555.2671", "1-800-555-0199", "+44 (0)20 7946 0958", "+49 (0)30 90182045"]
    v["PHONE_NUMBER"] = phones
    v["CREDIT_CARD"] = cards(rng)
    ibans = []
    for country in IBAN_FORMATS:
        code = iban(country, rng)
        ibans += [code, " ".join(code[i:i + 4] for i in range(0, len(code), 4))]
    v["IBAN_CODE"] = ibans
    ips = [f"{rng.randint(11, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}" for _ in range(6)]
    ips += ["2001:0db8:85a3:0000:0000:8a2e:0370:7334", "2001:db8::ff00:42:8329", "fe80::1ff:fe23:4567:890a",
            "::ffff:192.0.2.128", "2a02:908:1a2b:3c00::17", "::1"]
    v["IP_ADDRESS"] = ips
    ssns = []
    for _ in range(6):
        area = rng.choice([a for a in range(1, 900) if a != 666])
        group, serial = rng.randint(1, 99), rng.randint(1, 9999)
        ssns.append(rng.choice(["{:03d}-{:02d}-{:04d}", "{:03d} {:02d} {:04d}", "{:03d}{:02d}{:04d}"]).format(area, group, serial))
    v["US_SSN"] = ssns
    creds = ["https://admin:hunter2@intranet.example.com/wiki", "ftp://backup:Xk9%40pz@files.example.org/dump/",
             "postgres://app_user:s3cr3t-pg@10.1.2.3:5432/prod", "mongodb+srv://dbadmin:Passw0rd!@cluster0.example.net/test",
             "redis://default:r3d1s@cache.example.io:6379/0", "http://jdoe:letmein@192.0.2.10:8080/status"]
    v["URL_CREDENTIALS"] = creds
    crypto = [base58check(bytes([0]) + rng.randbytes(20)) for _ in range(3)]
    crypto += [base58check(bytes([5]) + rng.randbytes(20)) for _ in range(2)]
    crypto += [bech32_address(rng.randbytes(20)) for _ in range(3)]
    crypto += ["0x" + rng.randbytes(20).hex() for _ in range(2)] + ["0x" + rng.randbytes(20).hex().upper()]
    v["CRYPTO"] = crypto
    return v


def credential_span(url: str) -> tuple[int, int]:
    """The user:password part of scheme://user:password@host (what is labeled and redacted)."""
    start = url.index("://") + 3
    return start, url.rindex("@")


def build(rng: random.Random) -> list[dict]:
    records = []
    for entity, items in values(rng).items():
        for i, value in enumerate(items):
            carrier = CARRIERS[entity][i % len(CARRIERS[entity])]
            text = carrier.replace("{v}", value)
            start = carrier.index("{v}")
            if entity == "URL_CREDENTIALS":
                a, b = credential_span(value)
                spans = [{"start": start + a, "end": start + b, "entity": entity}]
                host = value[b + 1:].split("/")[0].split(":")[0]
                if host.replace(".", "").isdigit():  # an IPv4 host is an IP address too
                    h = start + b + 1
                    spans.append({"start": h, "end": h + len(host), "entity": "IP_ADDRESS"})
            else:
                spans = [{"start": start, "end": start + len(value), "entity": entity}]
            records.append({"text": text, "spans": spans, "kind": entity})
    # Two values of different types in one text, as contact blocks have them.
    v = values(random.Random(SEED + 1))
    for k in range(8):
        email, phone = v["EMAIL_ADDRESS"][k], v["PHONE_NUMBER"][k]
        text = f"Contact: {email} / phone {phone}"
        records.append({"text": text, "kind": "mixed", "spans": [
            {"start": 9, "end": 9 + len(email), "entity": "EMAIL_ADDRESS"},
            {"start": text.index(phone, 9 + len(email)), "end": text.index(phone, 9 + len(email)) + len(phone), "entity": "PHONE_NUMBER"}]})
    records += [{"text": text, "spans": [], "kind": "negative"} for text in NEGATIVES]
    for text, labeled in NER_SENTENCES:
        spans, cursor = [], 0
        for entity, value in labeled:
            start = text.index(value, cursor)
            spans.append({"start": start, "end": start + len(value), "entity": entity})
            cursor = start + len(value)
        records.append({"text": text, "spans": spans, "kind": "ner"})
    for r in records:
        for s in r["spans"]:
            assert 0 <= s["start"] < s["end"] <= len(r["text"])
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=REPO / "tests" / "data" / "pii_labeled.jsonl")
    args = parser.parse_args()
    records = build(random.Random(SEED))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w") as handle:
        for r in records:
            handle.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(f"{len(records)} records, {sum(len(r['spans']) for r in records)} labeled spans -> {args.out}")


if __name__ == "__main__":
    main()
