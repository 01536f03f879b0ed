"""Column names, their Arrow types, and the meaning of every score column.

Stages import these names; no other module spells a column as a string literal. Units are in the
names: `*_ratio` in [0, 1], `*_bytes`, `*_count`, `*_s` seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

# --- provenance: set by the source, carried unchanged to curated/, rejected/, quarantine/ and shards ---
ID = "id"  # deterministic, 16 hex chars: xxh3-64 of the WARC-Record-ID, else of (file name, offset); or the input's own id
URL = "url"
SOURCE_FILE = "source_file"
RECORD_OFFSET = "record_offset"  # WARC: byte offset of the record in its file; JSONL: line number; Parquet: row number
# JSON object (sorted keys) of the metadata an input carried (datatrove's `metadata`, the job's
# `metadata_keys`); null when there is none.
METADATA = "metadata"
WARC_RECORD_ID = "warc_record_id"
WARC_TYPE = "warc_type"
PAYLOAD_DIGEST = "payload_digest"
FETCH_DATE = "fetch_date"  # WARC-Date as written in the record (ISO 8601)
HTTP_STATUS = "http_status"
CONTENT_TYPE = "content_type"
CONTENT_BYTES = "content_bytes"  # decoded HTTP body size
CONTENT = "content"  # decoded HTTP body; dropped once text is extracted

# --- what happened to a record before scoring ---
# Set by the source or extraction when a record is not (or no longer) a document: a WARC request, a
# non-HTML response, an extraction timeout. `decide` turns it into the drop reason.
SKIP_REASON = "skip_reason"
# Set by the source when a record could not be read at all: it goes to quarantine/ with this text.
QUARANTINE_REASON = "quarantine_reason"

# --- extraction ---
TEXT = "text"
CHARSET = "charset"  # the encoding the body was decoded with
# Edits made by stages that rewrite text: list of {stage, kind, start, end}; offsets in the text as it
# was before that edit. The original value of a redacted span is never stored.
TEXT_EDITS = "text_edits"

# --- language ---
LANGUAGE = "language"
LANGUAGE_SCORE = "language_score"

# --- Gopher quality (Rae et al. 2021, as datatrove implements it) ---
WORD_COUNT = "word_count"
MEAN_WORD_LENGTH = "mean_word_length"
HASH_WORD_RATIO = "hash_word_ratio"
ELLIPSIS_WORD_RATIO = "ellipsis_word_ratio"
BULLET_LINES_RATIO = "bullet_lines_ratio"
ELLIPSIS_LINES_RATIO = "ellipsis_lines_ratio"
ALPHA_WORDS_RATIO = "alpha_words_ratio"
STOP_WORD_COUNT = "stop_word_count"

# --- decision ---
KEEP = "keep"
DROP_REASON = "drop_reason"

TEXT_EDIT_TYPE = pa.struct(
    [("stage", pa.string()), ("kind", pa.string()), ("start", pa.int64()), ("end", pa.int64())]
)

TYPES: dict[str, pa.DataType] = {
    ID: pa.string(),
    URL: pa.string(),
    SOURCE_FILE: pa.string(),
    RECORD_OFFSET: pa.int64(),
    WARC_RECORD_ID: pa.string(),
    WARC_TYPE: pa.string(),
    PAYLOAD_DIGEST: pa.string(),
    FETCH_DATE: pa.string(),
    HTTP_STATUS: pa.int32(),
    CONTENT_TYPE: pa.string(),
    CONTENT_BYTES: pa.int64(),
    CONTENT: pa.large_binary(),
    METADATA: pa.string(),
    SKIP_REASON: pa.string(),
    QUARANTINE_REASON: pa.string(),
    TEXT: pa.large_string(),
    CHARSET: pa.string(),
    TEXT_EDITS: pa.list_(TEXT_EDIT_TYPE),
    LANGUAGE: pa.string(),
    LANGUAGE_SCORE: pa.float64(),
    WORD_COUNT: pa.int64(),
    MEAN_WORD_LENGTH: pa.float64(),
    HASH_WORD_RATIO: pa.float64(),
    ELLIPSIS_WORD_RATIO: pa.float64(),
    BULLET_LINES_RATIO: pa.float64(),
    ELLIPSIS_LINES_RATIO: pa.float64(),
    ALPHA_WORDS_RATIO: pa.float64(),
    STOP_WORD_COUNT: pa.int64(),
    KEEP: pa.bool_(),
    DROP_REASON: pa.string(),
}

# What a record source emits, in this order. HTML sources fill `content`; text sources (WET, JSONL,
# Parquet) fill `text` directly and extraction passes those rows through.
SOURCE_COLUMNS = (
    ID, URL, SOURCE_FILE, RECORD_OFFSET, WARC_RECORD_ID, WARC_TYPE, PAYLOAD_DIGEST, FETCH_DATE,
    HTTP_STATUS, CONTENT_TYPE, CONTENT_BYTES, CONTENT, TEXT, METADATA, SKIP_REASON, QUARANTINE_REASON,
)
PROVENANCE_COLUMNS = (ID, URL, SOURCE_FILE, RECORD_OFFSET, WARC_RECORD_ID, PAYLOAD_DIGEST, FETCH_DATE)


def schema_of(names) -> pa.Schema:
    return pa.schema([pa.field(name, TYPES[name]) for name in names])


SOURCE_SCHEMA = schema_of(SOURCE_COLUMNS)


@dataclass(frozen=True)
class ScoreColumn:
    name: str
    low: float | None
    high: float | None
    meaning: str


# Every score column a built-in stage writes: name, range and meaning. Plug-in scorers add theirs
# through `register_score` so reports and summaries treat them alike.
SCORES: dict[str, ScoreColumn] = {}


def register_score(name: str, low: float | None, high: float | None, meaning: str, arrow_type: pa.DataType = pa.float64()) -> ScoreColumn:
    """Declare a score column (range and meaning; re-declaring updates them). Its Arrow type is fixed once set."""
    if TYPES.setdefault(name, arrow_type) != arrow_type:
        raise ValueError(f"column {name!r} already has Arrow type {TYPES[name]}, not {arrow_type}")
    SCORES[name] = ScoreColumn(name, low, high, meaning)
    return SCORES[name]


register_score(LANGUAGE_SCORE, 0.0, 1.0, "probability of the top language (py3langid, normalized)")
register_score(WORD_COUNT, 0, None, "words that are not pure punctuation (Gopher)", pa.int64())
register_score(MEAN_WORD_LENGTH, 0, None, "mean characters per non-punctuation word (Gopher)")
register_score(HASH_WORD_RATIO, 0, None, "'#' characters per word (Gopher symbol ratio; can exceed 1)")
register_score(ELLIPSIS_WORD_RATIO, 0, None, "'...' and '…' per word (Gopher symbol ratio; can exceed 1)")
register_score(BULLET_LINES_RATIO, 0.0, 1.0, "share of lines starting with a bullet ('•' or '-')")
register_score(ELLIPSIS_LINES_RATIO, 0.0, 1.0, "share of lines ending with an ellipsis")
register_score(ALPHA_WORDS_RATIO, 0.0, 1.0, "share of words with at least one alphabetic character")
register_score(STOP_WORD_COUNT, 0, None, "distinct English stop words present (Gopher's 8)", pa.int64())

# --- Gopher repetition (Rae et al. 2021, table A1, as datatrove's GopherRepetitionFilter computes it) ---
DUPLICATE_PARAGRAPHS_RATIO = "duplicate_paragraphs_ratio"
DUPLICATE_PARAGRAPH_CHARS_RATIO = "duplicate_paragraph_chars_ratio"
DUPLICATE_LINES_RATIO = "duplicate_lines_ratio"
DUPLICATE_LINE_CHARS_RATIO = "duplicate_line_chars_ratio"
TOP_NGRAM_CHARS_RATIO = {n: f"top_{n}gram_chars_ratio" for n in (2, 3, 4)}
DUPLICATE_NGRAM_CHARS_RATIO = {n: f"duplicate_{n}gram_chars_ratio" for n in (5, 6, 7, 8, 9, 10)}

# --- C4 (Raffel et al. 2020, as datatrove's C4QualityFilter / C4BadWordsFilter compute it) ---
C4_LOREM_IPSUM_LINE_COUNT = "c4_lorem_ipsum_line_count"
C4_CURLY_BRACKET_LINE_COUNT = "c4_curly_bracket_line_count"
C4_SENTENCE_COUNT = "c4_sentence_count"
C4_BAD_WORD_COUNT = "c4_bad_word_count"

# --- FineWeb (Penedo et al. 2024, datatrove's FineWebQualityFilter), on the lines C4 keeps ---
FINEWEB_LINE_PUNCT_RATIO = "fineweb_line_punct_ratio"
FINEWEB_SHORT_LINE_RATIO = "fineweb_short_line_ratio"
FINEWEB_CHAR_DUP_RATIO = "fineweb_char_dup_ratio"
FINEWEB_NEWLINE_WORD_RATIO = "fineweb_newline_word_ratio"

register_score(DUPLICATE_PARAGRAPHS_RATIO, 0.0, 1.0, "share of paragraphs ('\\n\\n'-separated) that repeat an earlier one (Gopher)")
register_score(DUPLICATE_PARAGRAPH_CHARS_RATIO, 0.0, 1.0, "characters of repeated paragraphs per character (Gopher)")
register_score(DUPLICATE_LINES_RATIO, 0.0, 1.0, "share of lines that repeat an earlier line (Gopher)")
register_score(DUPLICATE_LINE_CHARS_RATIO, 0.0, 1.0, "characters of repeated lines per character (Gopher)")
for _n, _name in TOP_NGRAM_CHARS_RATIO.items():
    register_score(_name, 0.0, None, f"characters of the most frequent word {_n}-gram times its count, per character "
                   "(Gopher; overlapping occurrences count, so it can exceed 1)")
for _n, _name in DUPLICATE_NGRAM_CHARS_RATIO.items():
    register_score(_name, 0.0, 1.0, f"characters of word {_n}-grams that repeat an earlier one (non-overlapping), "
                   "per character (Gopher)")
register_score(C4_LOREM_IPSUM_LINE_COUNT, 0, None, "lines with 'lorem ipsum' among those C4's word rules keep", pa.int64())
register_score(C4_CURLY_BRACKET_LINE_COUNT, 0, None, "lines with '{' among those C4 keeps so far (not javascript)", pa.int64())
register_score(C4_SENTENCE_COUNT, 0, None, "sentences (spaCy sentencizer) in the lines C4 keeps", pa.int64())
register_score(C4_BAD_WORD_COUNT, 0, None, "occurrences of words from quality.c4_bad_words_file (null without a list)", pa.int64())
register_score(FINEWEB_LINE_PUNCT_RATIO, 0.0, 1.0, "share of C4-kept lines ending in terminal punctuation (FineWeb)")
register_score(FINEWEB_SHORT_LINE_RATIO, 0.0, 1.0, "share of C4-kept lines of at most quality.fineweb_short_line_chars characters (FineWeb)")
register_score(FINEWEB_CHAR_DUP_RATIO, 0.0, 1.0, "characters of C4-kept lines that repeat an earlier one, per non-newline character (FineWeb)")
register_score(FINEWEB_NEWLINE_WORD_RATIO, 0.0, None, "newlines per word in the C4-kept lines (FineWeb's list ratio; can exceed 1)")
del _n, _name

# --- dedup (issue 7): signatures written per batch for every document, kept in curated/ so a what-if
# can re-cluster; cluster columns set by the global dedup step over the survivors ---
EXACT_HASH = "exact_hash"  # xxh3-128 hex of the normalized words joined by a space; null without words
# num_perm little-endian uint32 min-hashes (datasketch's affine32 scheme, filters/minhash.py); null without words
MINHASH = "minhash"
# id of the document kept for the duplicate cluster this row belongs to; null when it has no duplicate
DUP_CLUSTER_ID = "dup_cluster_id"
DUP_CLUSTER_SIZE = "dup_cluster_size"  # documents in that cluster (1: no duplicate)
TYPES.update({
    EXACT_HASH: pa.string(),
    MINHASH: pa.binary(),
    DUP_CLUSTER_ID: pa.string(),
    DUP_CLUSTER_SIZE: pa.int64(),
})

# --- opt-out and decontamination (issue 11) ---
# SHA-256 (hex) of the extracted text's UTF-8, before later stages edit it: what `sha256:` opt-out
# entries name (pipeline/lists/optout.py). Written by the content opt-out stage.
TEXT_SHA256 = "text_sha256"
OPT_OUT_MATCH = "opt_out_match"  # the opt-out entry a document matched ("domain:example.com"); null when none
# The first evaluation set (job order) sharing a word n-gram with the document; null when none.
CONTAMINATED_BY = "contaminated_by"
CONTAMINATION_NGRAM_COUNT = "contamination_ngram_count"
TYPES.update({TEXT_SHA256: pa.string(), OPT_OUT_MATCH: pa.string(), CONTAMINATED_BY: pa.string()})
register_score(CONTAMINATION_NGRAM_COUNT, 0, None, "the document's word n-grams (decontaminate.n) found in any "
               "evaluation set (counted before any span is removed)", pa.int64())
# --- toxicity and bias (issue 6) ---
TOXICITY_SCORE = "toxicity_score"
TOXIC_SPAN_COUNT = "toxic_span_count"
TOXIC_WORD_COUNT = "toxic_word_count"
IDENTITY_ATTACK_SCORE = "identity_attack_score"
# Representation tags: pronoun classes present (she/he/they), identity axes mentioned, and "axis:term" descriptors.
PRONOUN_CLASSES = "pronoun_classes"
IDENTITY_AXES = "identity_axes"
IDENTITY_DESCRIPTORS = "identity_descriptors"
register_score(TOXICITY_SCORE, 0.0, 1.0, "fastText P(toxic) of the document, after toxic-span removal when span mode is on")
register_score(TOXIC_SPAN_COUNT, 0, None, "sentences or lines cut out by toxicity span mode (null when it is off)", pa.int64())
register_score(TOXIC_WORD_COUNT, 0, None, "occurrences of words from toxicity.word_list_file (null without a list)", pa.int64())
register_score(IDENTITY_ATTACK_SCORE, 0.0, 1.0, "highest P(toxic) of a sentence that names an identity term (0: none does)")
TYPES.update({
    PRONOUN_CLASSES: pa.list_(pa.string()),
    IDENTITY_AXES: pa.list_(pa.string()),
    IDENTITY_DESCRIPTORS: pa.list_(pa.string()),
})
# Issue 25: the tags above count a term only where it refers to people; beside each tag, the number of
# sentences that use it for people (mentions), in the same order as the tag list, and the document's
# sentences (the tagger's split), so mentions compare as a rate per sentence before and after filtering.
PRONOUN_SENTENCE_COUNTS = "pronoun_sentence_counts"  # per entry of pronoun_classes
IDENTITY_AXIS_SENTENCE_COUNTS = "identity_axis_sentence_counts"  # per entry of identity_axes
IDENTITY_DESCRIPTOR_SENTENCE_COUNTS = "identity_descriptor_sentence_counts"  # per entry of identity_descriptors
REPRESENTATION_SENTENCE_COUNT = "representation_sentence_count"  # non-blank sentences of the text
TYPES.update({
    PRONOUN_SENTENCE_COUNTS: pa.list_(pa.int64()),
    IDENTITY_AXIS_SENTENCE_COUNTS: pa.list_(pa.int64()),
    IDENTITY_DESCRIPTOR_SENTENCE_COUNTS: pa.list_(pa.int64()),
    REPRESENTATION_SENTENCE_COUNT: pa.int64(),
})
# --- fastText quality classifier (issue 5): probability of the job's positive label ---
QUALITY_MODEL_SCORE = "quality_model_score"
register_score(QUALITY_MODEL_SCORE, 0.0, 1.0, "fastText quality classifier: probability of classifier.positive_label")

# --- URL filter (issue 5): what matched the block list or banned-word list; null when nothing did ---
URL_FILTER_MATCH = "url_filter_match"
TYPES[URL_FILTER_MATCH] = pa.string()
# --- PII (issue 6): detections per document by the PII stage (filters/pii.py); the values themselves are
# never stored (text_edits holds kind and offsets of each redaction) ---
PII_COUNT = "pii_count"  # PII items found in the document's text (structured + NER); null for non-documents
register_score(PII_COUNT, 0, None, "PII items (e-mail, phone, card, IBAN, IP, SSN, URL credentials, wallet, "
               "and PERSON/LOCATION with NER) found in the text before redaction", pa.int64())
