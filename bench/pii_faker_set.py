"""Writes the PII evaluation set that is kept apart from the tuning tests: values from Faker in 59 locales
and from python-phonenumbers' numbering plans, inside sentence frames written for this set, plus
PII-free texts full of look-alikes. Deterministic (fixed seed, and the same Faker and phonenumbers
versions give the same bytes).

    pip install 'gristmill[bench]'   # faker
    python bench/pii_faker_set.py [--out runs/pii-faker] [--seed 20261207] [--frames holdout]

Writes `tune.jsonl` and `report.jsonl` (same record shape as tests/data/pii_labeled.jsonl, plus
`locale`, `region`, `frame`, `format`, and `valid` for phones: whether phonenumbers finds the number
valid for its region). The split is by frame: each family's frames are numbered, even frames go to the
tune half and odd ones to the report half, and the values are fresh draws on each side, so the report
half holds sentences the detectors were never looked at on. Report figures on the report half only
(`bench/pii_eval.py --labeled runs/pii-faker/report.jsonl`).

What is generated (labeled by construction: the generator knows each value's type and offsets):
- phones: Faker's `phone_number()` of every locale as it writes them (often not valid for their
  numbering plan: Faker fills format masks with random digits), and numbers that phonenumbers finds
  valid for 66 regions (mobile and fixed line, random subscriber digits), written international,
  national, E.164, with '00', with '(0)', with an extension, RFC 3966;
- cards: Faker's `credit_card_number` of every card type (Visa 13/16/19, Mastercard 51-55 and
  2221-2720, Amex, Discover, JCB 15/16, Diners, Maestro), plain, grouped by four or 4-6-5;
- IBANs (Faker, locales that have one), compact and grouped; IPv4 (public) and IPv6; US SSNs (en_US);
  e-mails (Faker: free, company, plain);
- PERSON: Faker names in frames of their own (scored only with an NER model);
- PII-free texts: Faker sentences of each locale, and frames of hard negatives: dates in the
  locale's formats and ISO, times, prices, versions, ISBN-10/13, EAN-13, coordinates, order, invoice
  and tracking numbers (UPS, USPS, FedEx, DHL shapes), sports scores, year ranges, postcodes,
  addresses, serials, flight numbers, populations.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import random
import string
from pathlib import Path

import phonenumbers
from faker import Faker

REPO = Path(__file__).resolve().parents[1]
SEED = 20261207

LOCALES = {
    "en_US": "US", "en_GB": "GB", "en_CA": "CA", "en_AU": "AU", "en_NZ": "NZ", "en_IE": "IE", "en_IN": "IN",
    "en_PK": "PK", "en_KE": "KE", "en_NG": "NG", "zu_ZA": "ZA", "de_DE": "DE", "de_AT": "AT",
    "de_CH": "CH", "fr_FR": "FR", "fr_BE": "BE", "fr_CA": "CA", "nl_NL": "NL", "nl_BE": "BE", "it_IT": "IT",
    "es_ES": "ES", "es_MX": "MX", "es_AR": "AR", "es_CO": "CO", "es_CL": "CL", "pt_BR": "BR", "pt_PT": "PT",
    "pl_PL": "PL", "cs_CZ": "CZ", "sk_SK": "SK", "hu_HU": "HU", "ro_RO": "RO", "bg_BG": "BG", "el_GR": "GR",
    "tr_TR": "TR", "ru_RU": "RU", "uk_UA": "UA", "sv_SE": "SE", "no_NO": "NO", "da_DK": "DK", "fi_FI": "FI",
    "et_EE": "EE", "lv_LV": "LV", "lt_LT": "LT", "sl_SI": "SI", "hr_HR": "HR", "he_IL": "IL", "ar_SA": "SA",
    "ar_AE": "AE", "fa_IR": "IR", "hi_IN": "IN", "ja_JP": "JP", "ko_KR": "KR", "zh_CN": "CN", "zh_TW": "TW",
    "th_TH": "TH", "vi_VN": "VN", "id_ID": "ID", "ka_GE": "GE",
}

FRAMES = {
    "PHONE_NUMBER": [
        "Call us on {v} between nine and five.", "For bookings phone {v} or drop by the shop.",
        "Tel.: {v} | Fax on request", "Reach the front desk at {v}, open every day.",
        "Questions? Our hotline {v} is free of charge.", "My number is {v}, text me when you land.",
        "Office: {v}", "Bei Fragen erreichen Sie uns telefonisch unter {v}.",
        "Pour toute information, appelez le {v}.", "Para reservas llame al {v} de lunes a viernes.",
        "Mobile: {v} (WhatsApp too)", "You can contact the secretary on {v} during term time.",
        "Emergency line: {v}", "Telefono {v} – chiuso la domenica.",
        "{v} is the number to dial after hours.", "Customer service: {v}.",
        "Please ring {v} to arrange a viewing.", "Fax {v}, or send it by post.",
        "Phone/WhatsApp {v}", "Reception desk {v} · open 8–18",
        "Наш телефон: {v}", "お問い合わせ 電話 {v}", "Contact number: {v}",
        "Support team available at {v}, all week.",
    ],
    "CREDIT_CARD": [
        "I was charged twice on my card {v} last month, can someone help?", "card_number={v}&exp=09/27&cvv=***",
        "Paid with {v}, receipt attached.", "The leaked dump contained {v} with its expiry date.",
        "My Visa {v} was declined at checkout.", "Kreditkartennummer: {v}", "Numéro de carte : {v}",
        "Billing: {v} exp 04/29", "tarjeta de crédito {v} caducada", "CC: {v}",
        "Use {v} as the payment method.", "Account charged: {v}", "Card no. {v} (expires 11/28)",
        "Please refund the purchase made with {v}.", "Номер карты: {v}", "PAN {v} flagged by the fraud team.",
    ],
    "IBAN_CODE": [
        "Please transfer the deposit to IBAN {v} before Friday.", "Bankverbindung: {v}",
        "Wire the amount to account {v}, reference your invoice number.", "IBAN: {v} / BIC on request",
        "Virement sur le compte {v} avant la fin du mois.", "Account {v} (joint).",
        "Payments go to {v} at the cooperative bank.", "Rekeningnummer {v} t.n.v. de vereniging",
    ],
    "EMAIL_ADDRESS": [
        "For press enquiries, please write to {v} and we will reply within two days.", "Reply-To: {v}",
        "Posted by guest ({v}) on the community board last Tuesday.", "If the form fails, just mail me at {v} instead.",
        "Kontakt: {v}", "Contact: <a href=\"mailto:{v}\">our office</a> for bookings.",
        "Send your CV to {v}.", "Écrivez-nous à {v} pour toute question.",
    ],
    "IP_ADDRESS": [
        "Failed password for root from {v} port 52144 ssh2", "Your IP address is {v}.",
        "The forum banned {v} after the spam wave.", "proxy_pass http://{v}:8080;",
        "Connection from {v} refused.", "client={v} status=200 bytes=5120",
    ],
    "US_SSN": ["SSN: {v}", "Her social security number {v} was printed on the form.",
               "Applicant ID (SSN) {v}, date of birth withheld.", "Social Security No. {v}"],
    "PERSON": ["Posted by {v} on the community board.", "Thanks to {v} for reviewing the draft.",
               "The package was signed for by {v} at the front office.", "{v} won the regional chess final.",
               "Please send the contract to {v} by Monday.", "Our guide, {v}, grew up near the coast."],
}

NEGATIVE_FRAMES = [
    "The order {order} shipped on {date} and should arrive by {date2}.",
    "Version {version} fixes the crash introduced in {version2}.",
    "Prices start at {price} and the premium model costs {price2}.",
    "ISBN {isbn13} (hardback), ISBN {isbn10} (paperback).",
    "Coordinates {lat}, {lon} mark the start of the route.",
    "Tracking number {tracking} was delivered on {date}.",
    "Final score {score} after extra time; attendance {count}.",
    "Barcode {ean13} is printed on the back of the box.",
    "Meet at {address} on {date} at {time}.",
    "Invoice {invoice} dated {date}, total {price}.",
    "Flight {flight} departs at {time} from gate {gate}.",
    "Population: {count} in {year}, {count2} in {year2}.",
    "Serial {serial}, model {model}, firmware {version}.",
    "Reference {ref} in the council minutes of {date}.",
    "The band was most productive in {years}, releasing {small} albums.",
    "Order #{order_digits} placed {datetime}, postcode {postcode}.",
]

# Frames written after the tuning of issue 24's second round began and before its changes were made, never
# looked at while changing the detectors (`--frames holdout`): phones, cards and PII-free texts only, all
# in one `holdout.jsonl`. They check that context words and formats generalize beyond FRAMES.
HOLDOUT_FRAMES = {
    "PHONE_NUMBER": [
        "Questions about your order? Give us a call at {v}.", "Head office {v} · Mon–Fri 9:00–17:30",
        "For appointments please contact our clinic on {v}.", "Kundenservice: {v} (Mo–Fr)",
        "Service client au {v}, du lundi au samedi.", "Informazioni e prenotazioni: {v}",
        "Atención al cliente {v}", "WhatsApp: {v}", "Sales enquiries {v}",
        "If you see anything suspicious, ring the police on {v}.", "Text HELP to {v} for assistance.",
        "John's cell is {v} if you need him.", "Our switchboard number is {v}.", "Contato: {v}",
        "Zadzwoń: {v}", "Booking line: {v}", "You can reach the manager directly at {v}.", "{v} (24 h)",
        "Bitte rufen Sie {v} an.", "Call or text {v} anytime.", "Teléfono de contacto: {v}",
        "Appelez-nous au {v} pour un devis gratuit.", "Tel/Fax: {v}", "Ring me on {v} after six.",
    ],
    "CREDIT_CARD": [
        "Your card {v} has been added to your wallet.", "Payment details: {v}, expiry 08/27, CVV ***",
        "Here is my number {v} — please charge the deposit.", "Kartennummer {v}",
        "Got this in a phishing mail: {v}", "Charge {v} for the remaining balance.", "número de tarjeta {v}",
        "{v} 09/26 ***", "Credit card on file: {v}", "La carte {v} a été refusée.",
        "The fraudster used {v} at three shops.", "Debit card number {v}",
    ],
}
HOLDOUT_NEGATIVE_FRAMES = [
    "Customer ID {order_digits} joined on {date}.", "Tracking: {tracking}", "Support ticket {ref} was closed on {date}.",
    "Our office moved in {year}; we have served {count} customers since.", "Phone model {model} sold {count2} units in {year2}.",
    "Contact reference {ref}, case number {order_digits}.", "Call number {order} at the library desk.",
    "Reception opens at {time} on {date}.", "Line {small}: item {order_digits}, total {price}.",
    "Card game night on {date}, entry {price}; {count} players so far.", "Mobile app v{version} released {date}.",
    "Account created {datetime}; invoice {invoice}.",
]

DATE_FORMATS = ["%Y-%m-%d", "%d.%m.%Y", "%d/%m/%Y", "%m/%d/%Y", "%d %B %Y", "%B %d, %Y", "%d-%m-%Y", "%Y/%m/%d"]


def is_report(family: str, frame: int) -> bool:
    return frame % 2 == 1


def frame_for(family: str, rng: random.Random, frames: dict = FRAMES) -> tuple[int, str]:
    k = rng.randrange(len(frames[family]))
    return k, frames[family][k]


def fill(frame: str, value: str) -> tuple[str, int]:
    start = frame.index("{v}")
    return frame.replace("{v}", value), start


def valid_number(region: str, rng: random.Random, kind) -> phonenumbers.PhoneNumber | None:
    example = phonenumbers.example_number_for_type(region, kind)
    if example is None:
        return None
    nsn = phonenumbers.national_significant_number(example)
    k = min(4, len(nsn) - 3)
    for _ in range(100):
        candidate = nsn[:-k] + "".join(rng.choice(string.digits) for _ in range(k))
        number = phonenumbers.parse(f"+{example.country_code}{candidate}")
        if phonenumbers.is_valid_number(number) and phonenumbers.region_code_for_number(number) == region:
            return number
    return None


def write_phone(number: phonenumbers.PhoneNumber, region: str, style: str) -> str:
    f = phonenumbers.PhoneNumberFormat
    intl = phonenumbers.format_number(number, f.INTERNATIONAL)
    national = phonenumbers.format_number(number, f.NATIONAL)
    cc = f"+{number.country_code}"
    if style == "international":
        return intl
    if style == "national":
        return national
    if style == "e164":
        return phonenumbers.format_number(number, f.E164)
    if style == "00":
        return "00" + intl[1:]
    if style == "(0)":
        return f"{cc} (0){intl[len(cc):].lstrip()}"
    if style == "rfc3966":
        return phonenumbers.format_number(number, f.RFC3966)
    if style == "extension":
        return f"{intl} ext. {number.extension}" if False else f"{intl} ext. {random.Random(str(number)).randint(10, 9999)}"
    if style == "national x":
        return f"{national} x{random.Random(str(number)).randint(10, 999)}"
    raise ValueError(style)


PHONE_STYLES = ["international", "national", "e164", "00", "(0)", "rfc3966", "extension", "national x"]


# IBAN lengths of the SWIFT IBAN registry. Faker writes IBAN-shaped strings for countries without IBANs
# (AR, CO, TH, …) and, for some locales, GB IBANs one character short: those are not IBANs and are left out.
IBAN_LENGTHS = dict(item.split(":") for item in (
    "AD:24 AE:23 AL:28 AT:20 AZ:28 BA:20 BE:16 BG:22 BH:22 BR:29 BY:28 CH:21 CR:22 CY:28 CZ:24 DE:22 DK:18 "
    "DO:28 EE:20 EG:29 ES:24 FI:18 FO:18 FR:27 GB:22 GE:22 GI:23 GL:18 GR:27 GT:28 HR:21 HU:28 IE:22 IL:23 "
    "IQ:23 IS:26 IT:27 JO:30 KW:30 KZ:20 LB:28 LC:32 LI:21 LT:20 LU:20 LV:21 MC:27 MD:24 ME:22 MK:19 MR:27 "
    "MT:31 MU:30 NL:18 NO:15 PK:24 PL:28 PS:29 PT:25 QA:29 RO:24 RS:22 SA:24 SC:31 SE:24 SI:19 SK:24 SM:27 "
    "ST:25 SV:28 TL:23 TN:24 TR:26 UA:29 VA:22 VG:24 XK:20").split())


def iban_in_registry(code: str) -> bool:
    numeric = "".join(str(int(ch, 36)) for ch in code[4:] + code[:4])
    return IBAN_LENGTHS.get(code[:2]) == str(len(code)) and int(numeric) % 97 == 1


def negative_values(fake: Faker, rng: random.Random) -> dict[str, str]:
    # Fixed bounds: Faker's default upper bound is today, which would make the set depend on the day it is built.
    d1, d2 = (fake.date_between(dt.date(1970, 1, 1), dt.date(2025, 12, 31)) for _ in range(2))
    alnum = string.ascii_uppercase + string.digits
    tracking = rng.choice([
        "1Z" + "".join(rng.choice(alnum) for _ in range(6)) + "".join(rng.choice(string.digits) for _ in range(10)),
        " ".join("".join(rng.choice(string.digits) for _ in range(4)) for _ in range(5)) + " " + str(rng.randint(10, 99)),
        "".join(rng.choice(string.digits) for _ in range(12)),
        "".join(rng.choice(string.digits) for _ in range(10)),
        "".join(rng.choice(string.digits) for _ in range(22)),
    ])
    return {
        "order": rng.choice([fake.bothify("ORD-####-####"), fake.bothify("A-####-####"), fake.bothify("###-#######-#######"),
                             fake.bothify("#########")]),
        "order_digits": fake.numerify("#" * rng.randint(6, 10)),
        "date": d1.strftime(rng.choice(DATE_FORMATS)), "date2": d2.strftime(rng.choice(DATE_FORMATS)),
        "datetime": fake.date_time_between(dt.datetime(1970, 1, 1), dt.datetime(2025, 12, 31)).strftime(rng.choice(["%Y-%m-%d %H:%M:%S", "%d.%m.%Y %H:%M", "%Y-%m-%dT%H:%M:%S"])),
        "version": f"{rng.randint(0, 12)}.{rng.randint(0, 30)}.{rng.randint(0, 99)}",
        "version2": rng.choice([f"v{rng.randint(1, 9)}.{rng.randint(0, 20)}", f"{rng.randint(2015, 2026)}.{rng.randint(1, 12)}.{rng.randint(1, 9)}"]),
        "price": fake.pricetag(), "price2": f"{rng.choice(['€', '$', '£', 'CHF '])}{rng.randint(1, 99999):,}.{rng.randint(0, 99):02d}",
        "isbn13": fake.isbn13(), "isbn10": fake.isbn10(), "ean13": fake.ean13(),
        "lat": str(fake.latitude()), "lon": str(fake.longitude()), "tracking": tracking,
        "score": rng.choice([f"{rng.randint(0, 7)}-{rng.randint(0, 7)}", f"{rng.randint(80, 130)}-{rng.randint(80, 130)}",
                             f"{rng.randint(0, 5)}:{rng.randint(0, 5)}"]),
        "count": f"{rng.randint(1000, 99999):,}", "count2": f"{rng.randint(1000000, 99999999):,}",
        "address": fake.address().replace("\n", ", "), "time": f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}",
        "invoice": fake.bothify(rng.choice(["INV-####-###", "####/##", "RE-########"])),
        "flight": fake.bothify("?? ####").upper(), "gate": fake.bothify("?##").upper(),
        "year": str(rng.randint(1950, 1999)), "year2": str(rng.randint(2000, 2025)),
        "serial": fake.bothify(rng.choice(["SN ####-####-####", "S/N ########", "####-####-####-####"])),
        "model": fake.bothify("??-####").upper(), "ref": fake.numerify("####-####-###"),
        "years": f"{(y := rng.randint(1960, 2015))}-{y + rng.randint(1, 8)}", "small": str(rng.randint(2, 9)),
        "postcode": fake.postcode(),
    }


def build(seed: int = SEED, holdout: bool = False) -> list[dict]:
    """`holdout`: HOLDOUT_FRAMES and HOLDOUT_NEGATIVE_FRAMES instead (phones, cards, PII-free texts), every
    record in split 'holdout'."""
    rng = random.Random(seed)
    records: list[dict] = []
    frames = {**FRAMES, **HOLDOUT_FRAMES} if holdout else FRAMES
    negative_frames = HOLDOUT_NEGATIVE_FRAMES if holdout else NEGATIVE_FRAMES

    def add(family, frame_k, text, spans, locale, region, **extra):
        if holdout:
            if family != "NEGATIVE" and family not in HOLDOUT_FRAMES:
                return
            extra["split"] = "holdout"
        records.append({"text": text, "spans": spans, "kind": "ner" if family == "PERSON" else family.lower(),
                        "family": family, "frame": frame_k, "locale": locale, "region": region,
                        "split": "report" if is_report(family, frame_k) else "tune", **extra})

    def labeled(family, value, locale, region, entity=None, skip=0, ipv6=False, **extra):
        """`skip`: characters before the value that are not PII (RFC 3966's 'tel:')."""
        k, frame = frame_for(family, rng, frames)
        if ipv6 and "://{v}:" in frame:  # an IPv6 host with a port is written in brackets (RFC 3986)
            frame = frame.replace("://{v}:", "://[{v}]:")
        text, start = fill(frame, value)
        add(family, k, text, [{"start": start + skip, "end": start + len(value), "entity": entity or family}],
            locale, region, **extra)

    for locale, region in LOCALES.items():
        fake = Faker(locale)
        fake.seed_instance(int(hashlib.sha256(f"{seed}:{locale}".encode()).hexdigest()[:8], 16))
        cards = Faker("en_US")  # Faker's card types are the same everywhere; some locales name them differently
        cards.seed_instance(int(hashlib.sha256(f"{seed}:{locale}:cards".encode()).hexdigest()[:8], 16))
        for _ in range(6):  # Faker's phones, as each locale writes them
            value = fake.phone_number()
            if sum(c.isdigit() for c in value) < 7:  # Faker writes short service numbers ('991') for some locales
                continue
            try:
                valid = phonenumbers.is_valid_number(phonenumbers.parse(value, region))
            except phonenumbers.NumberParseException:
                valid = False
            labeled("PHONE_NUMBER", value, locale, region, source="faker", valid=valid, format="faker")
        for card_type in ("visa16", "visa13", "visa19", "mastercard", "amex", "discover", "jcb15", "jcb16", "diners", "maestro"):
            if rng.random() < 0.4:
                continue
            number = cards.credit_card_number(card_type)
            style = rng.choice(["plain", "grouped", "dashed"])
            if style != "plain":
                sep = " " if style == "grouped" else "-"
                cuts = [4, 10] if len(number) == 15 else [4, 10] if len(number) == 14 else list(range(4, len(number), 4))
                value = sep.join(number[a:b] for a, b in zip([0, *cuts], [*cuts, len(number)]))
            else:
                value = number
            labeled("CREDIT_CARD", value, locale, region, format=f"{card_type} {style}", length=len(number))
        try:
            ibans = [fake.iban() for _ in range(2)]
        except AttributeError:
            ibans = []
        for i, code in enumerate(c for c in ibans if iban_in_registry(c)):
            value = " ".join(code[j:j + 4] for j in range(0, len(code), 4)) if i % 2 else code
            labeled("IBAN_CODE", value, locale, region, format="grouped" if i % 2 else "compact")
        for value in (fake.free_email(), fake.company_email(), fake.email()):
            labeled("EMAIL_ADDRESS", value, locale, region)
        labeled("IP_ADDRESS", fake.ipv4_public(), locale, region, format="ipv4")
        labeled("IP_ADDRESS", fake.ipv6(), locale, region, format="ipv6", ipv6=True)
        if locale == "en_US":
            for _ in range(30):
                labeled("US_SSN", fake.ssn(), locale, region)
        for _ in range(2):
            labeled("PERSON", fake.name(), locale, region)
        # PII-free texts: the locale's own sentences and hard negatives.
        for _ in range(3):
            add("NEGATIVE", rng.randrange(2), fake.sentence(nb_words=12), [], locale, region, kind2="sentence")
        for _ in range(8):
            k = rng.randrange(len(negative_frames))
            add("NEGATIVE", k, negative_frames[k].format(**negative_values(fake, rng)), [], locale, region, kind2="hard")
    # Numbers phonenumbers finds valid, in every region of the locales above and more.
    regions = sorted(set(LOCALES.values()) | {"SG", "HK", "MY", "BD", "LK", "EG", "MA", "PE", "IS", "LU"})
    for region in regions:
        for kind in (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE):
            for style in PHONE_STYLES:
                number = valid_number(region, rng, kind)
                if number is None:
                    continue
                if style == "(0)" and phonenumbers.PhoneMetadata.metadata_for_region(region).national_prefix != "0":
                    continue
                labeled("PHONE_NUMBER", write_phone(number, region, style), "phonenumbers", region,
                        source="phonenumbers", valid=True, format=style, skip=4 if style == "rfc3966" else 0)
    for r in records:
        for s in r["spans"]:
            assert 0 <= s["start"] < s["end"] <= len(r["text"])
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "pii-faker")
    parser.add_argument("--seed", type=int, default=SEED, help="other values in the same frames")
    parser.add_argument("--frames", choices=("split", "holdout"), default="split",
                        help="split: FRAMES, halves tune/report; holdout: HOLDOUT_FRAMES, one holdout.jsonl")
    args = parser.parse_args()
    records = build(args.seed, holdout=args.frames == "holdout")
    args.out.mkdir(parents=True, exist_ok=True)
    for split in (("holdout",) if args.frames == "holdout" else ("tune", "report")):
        chosen = [r for r in records if r["split"] == split]
        with open(args.out / f"{split}.jsonl", "w") as handle:
            for r in chosen:
                handle.write(json.dumps(r, ensure_ascii=False) + "\n")
        print(f"{split}: {len(chosen)} records, {sum(len(r['spans']) for r in chosen)} labeled spans -> {args.out / f'{split}.jsonl'}")


if __name__ == "__main__":
    main()
