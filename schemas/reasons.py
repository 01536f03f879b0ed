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
