"""The one registry of drop reasons.

Every reason is named for the failure (`too_few_words`, not `gopher_enough_stop_words`) and owned by
the stage whose facts it reports, so per-stage stats can attribute drops. Built-in reasons are plain
names; plug-ins register namespaced reasons (`plugin_name:reason`) without editing this module.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DropReason:
    name: str
    stage: str
    description: str


_REGISTRY: dict[str, DropReason] = {}


def register(name: str, stage: str, description: str, *, builtin: bool = False) -> DropReason:
    """Add a reason. Plug-in reasons must be namespaced as `plugin:reason`."""
    if not builtin and ":" not in name:
        raise ValueError(f"plug-in drop reason {name!r} must be namespaced as 'plugin_name:reason'")
    reason = DropReason(name, stage, description)
    if name in _REGISTRY and _REGISTRY[name] != reason:
        raise ValueError(f"drop reason {name!r} is already registered by stage {_REGISTRY[name].stage!r}")
    _REGISTRY[name] = reason
    return reason


def get(name: str) -> DropReason:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown drop reason {name!r}; register it in gristmill.schemas.reasons") from None


def all_reasons() -> list[DropReason]:
    return list(_REGISTRY.values())


def _builtin(name: str, stage: str, description: str) -> str:
    register(name, stage, description, builtin=True)
    return name


# source: records that are not documents
NOT_RESPONSE = _builtin("not_response", "source", "WARC record that is not a response (request, metadata, warcinfo, resource, conversion)")
REVISIT = _builtin("revisit", "source", "WARC revisit record: the payload was archived earlier, no body here")
HTTP_STATUS_NOT_OK = _builtin("http_status_not_ok", "source", "HTTP status other than 200")
NOT_HTML = _builtin("not_html", "source", "response whose Content-Type is not HTML")
PAGE_TOO_LARGE = _builtin("page_too_large", "source", "HTTP body larger than extract.max_page_bytes")
EMPTY_PAYLOAD = _builtin("empty_payload", "source", "HTTP body of zero bytes")
# extraction
EXTRACTION_TIMEOUT = _builtin("extraction_timeout", "extract", "trafilatura ran past extract.timeout_s on this page")
EXTRACTION_FAILED = _builtin("extraction_failed", "extract", "the extraction sandbox crashed or ran out of memory on this page")
NO_MAIN_TEXT = _builtin("no_main_text", "extract", "trafilatura found no main text")
# language
LANGUAGE_NOT_KEPT = _builtin("language_not_kept", "language", "top language is not in language.keep")
LANGUAGE_SCORE_TOO_LOW = _builtin("language_score_too_low", "language", "top language probability below language.min_score")
# quality (Gopher)
TOO_FEW_WORDS = _builtin("too_few_words", "quality", "fewer words than quality.min_words")
TOO_MANY_WORDS = _builtin("too_many_words", "quality", "more words than quality.max_words")
WORDS_TOO_SHORT = _builtin("words_too_short", "quality", "mean word length below quality.min_mean_word_length")
WORDS_TOO_LONG = _builtin("words_too_long", "quality", "mean word length above quality.max_mean_word_length")
TOO_MANY_HASHES = _builtin("too_many_hashes", "quality", "'#' per word above quality.max_symbol_word_ratio")
TOO_MANY_ELLIPSES = _builtin("too_many_ellipses", "quality", "ellipses per word above quality.max_symbol_word_ratio")
TOO_MANY_BULLET_LINES = _builtin("too_many_bullet_lines", "quality", "bullet-line share above quality.max_bullet_lines_ratio")
TOO_MANY_ELLIPSIS_LINES = _builtin("too_many_ellipsis_lines", "quality", "ellipsis-line share above quality.max_ellipsis_lines_ratio")
TOO_FEW_ALPHA_WORDS = _builtin("too_few_alpha_words", "quality", "alphabetic-word share below quality.min_alpha_words_ratio")
TOO_FEW_STOP_WORDS = _builtin("too_few_stop_words", "quality", "fewer distinct stop words than quality.min_stop_words")
# quality (Gopher repetition), in datatrove's order
TOO_MANY_DUPLICATE_PARAGRAPHS = _builtin("too_many_duplicate_paragraphs", "quality", "share of repeated paragraphs above quality.max_duplicate_paragraphs_ratio")
TOO_MANY_DUPLICATE_PARAGRAPH_CHARS = _builtin("too_many_duplicate_paragraph_chars", "quality", "characters in repeated paragraphs above quality.max_duplicate_paragraph_chars_ratio")
TOO_MANY_DUPLICATE_LINES = _builtin("too_many_duplicate_lines", "quality", "share of repeated lines above quality.max_duplicate_lines_ratio")
TOO_MANY_DUPLICATE_LINE_CHARS = _builtin("too_many_duplicate_line_chars", "quality", "characters in repeated lines above quality.max_duplicate_line_chars_ratio")
TOP_NGRAM_TOO_FREQUENT = {n: _builtin(f"top_{n}gram_too_frequent", "quality", f"most frequent word {n}-gram covers more characters than quality.max_top_{n}gram_chars_ratio") for n in (2, 3, 4)}
TOO_MANY_DUPLICATE_NGRAMS = {n: _builtin(f"too_many_duplicate_{n}grams", "quality", f"repeated word {n}-grams cover more characters than quality.max_duplicate_{n}gram_chars_ratio") for n in (5, 6, 7, 8, 9, 10)}
# quality (C4)
CONTAINS_LOREM_IPSUM = _builtin("contains_lorem_ipsum", "quality", "a line says 'lorem ipsum' (quality.c4_drop_lorem_ipsum)")
CONTAINS_CURLY_BRACKET = _builtin("contains_curly_bracket", "quality", "a line C4 would keep has a '{' (quality.c4_drop_curly_bracket)")
TOO_FEW_SENTENCES = _builtin("too_few_sentences", "quality", "the lines C4 keeps hold fewer sentences than quality.c4_min_sentences")
CONTAINS_BAD_WORDS = _builtin("contains_bad_words", "quality", "more words from quality.c4_bad_words_file than quality.c4_max_bad_words")
# quality (FineWeb, on the lines C4 keeps)
TOO_FEW_PUNCTUATED_LINES = _builtin("too_few_punctuated_lines", "quality", "share of lines ending in terminal punctuation below quality.fineweb_min_line_punct_ratio")
TOO_MANY_SHORT_LINES = _builtin("too_many_short_lines", "quality", "share of short lines above quality.fineweb_max_short_line_ratio")
TOO_MUCH_DUPLICATE_LINE_TEXT = _builtin("too_much_duplicate_line_text", "quality", "characters in repeated lines (after C4's cleanup) above quality.fineweb_max_char_dup_ratio")
TOO_MANY_LINE_BREAKS = _builtin("too_many_line_breaks", "quality", "newlines per word above quality.fineweb_max_newline_word_ratio (list-like text)")
# dedup (global step over the survivors; the kept document of each cluster is chosen by dedup.keep)
EXACT_DUPLICATE = _builtin("exact_duplicate", "dedup", "same normalized text as the document kept for its cluster")
NEAR_DUPLICATE = _builtin("near_duplicate", "dedup", "MinHash-LSH near duplicate of the document kept for its cluster")
# opt-out and takedown (issue 11)
OPTED_OUT = _builtin("opted_out", "optout", "URL, domain, document id or text hash on one of the job's opt-out lists")
TAKEN_DOWN = _builtin("taken_down", "takedown", "removed from a finished run by `gristmill takedown` (its text is not kept)")
# decontamination: one reason per evaluation set, `contaminated:<set name>`, registered when the stage is built


def contaminated(set_name: str) -> str:
    """The drop reason for documents sharing an n-gram with evaluation set `set_name` (idempotent)."""
    return register(f"contaminated:{set_name}", "decontaminate",
                    f"shares a word n-gram with evaluation set {set_name!r} (decontaminate.eval_sets)").name
# toxicity (issue 6)
TOXIC = _builtin("toxic", "toxicity", "toxicity_score above toxicity.max_score")
TOXIC_WORDS = _builtin("toxic_words", "toxicity", "more words from toxicity.word_list_file than toxicity.max_toxic_words")
IDENTITY_ATTACK = _builtin("identity_attack", "toxicity", "a sentence names an identity term and scores above toxicity.max_identity_attack")
# URL filter (before extraction: the page is never extracted)
URL_BLOCKED = _builtin("url_blocked", "url_filter", "the URL's host is (a subdomain of) a domain in url_filter's block lists")
URL_BANNED_WORD = _builtin("url_banned_word", "url_filter", "a word of the URL is in url_filter's banned-word lists")
# fastText quality classifier
QUALITY_SCORE_TOO_LOW = _builtin("quality_score_too_low", "classifier", "fastText quality score below classifier.min_score")
QUALITY_NOT_TOP_FRACTION = _builtin("quality_not_top_fraction", "classifier", "fastText quality score outside the run's top classifier.top_fraction (global step)")
# PII (issue 6)
TOO_MUCH_PII = _builtin("too_much_pii", "pii", "more PII items (pii_count) than pii.max_pii_items")
