"""Job models: a YAML job file loaded into typed, validated config.

Every model forbids unknown keys; a bad job fails with a `JobError` that names the file and the key
path (`quality.min_wrods: unknown key`). Units are in field names (`timeout_s`, `max_page_bytes`).
Relative input paths and the tokenizer path resolve against the job file's folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

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

    type: Literal["warc", "wet", "jsonl", "parquet"] = "warc"
    # Paths, globs (`**` allowed) or URIs (s3://…, via fsspec); relative ones resolve against the job file.
    paths: list[str] = Field(min_length=1)
    # jsonl/parquet: the field holding the text, and the id (a deterministic id is made when absent).
    text_key: str = "text"
    id_key: str = "id"
    # jsonl/parquet: top-level fields carried into the `metadata` column (datatrove's own `metadata`
    # object is always carried); a `url` field, top-level or in metadata, fills the url column.
    metadata_keys: list[str] = Field(default_factory=list)


class RayConfig(_Model):
    # None: all cores of the local machine (ignored when RAY_ADDRESS names a cluster).
    num_cpus: int | None = Field(default=None, ge=1)
    # Cap on the local object store; small machines need it (Ray defaults to 30% of RAM).
    object_store_memory_mb: int | None = Field(default=1024, ge=64)


class ExtractConfig(_Model):
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
        return self


class LanguageConfig(_Model):
    # ISO 639-1 codes to keep; empty keeps every language.
    keep: list[str] = Field(default_factory=lambda: ["en"])
    min_score: float = Field(default=0.65, ge=0, le=1)


class QualityConfig(_Model):
    """Gopher quality thresholds; defaults are datatrove's (and Gopher's). None disables a rule."""

    min_words: int | None = 50
    max_words: int | None = 100_000
    min_mean_word_length: float | None = 3
    max_mean_word_length: float | None = 10
    max_symbol_word_ratio: float | None = 0.1
    max_bullet_lines_ratio: float | None = 0.9
    max_ellipsis_lines_ratio: float | None = 0.3
    min_alpha_words_ratio: float | None = 0.8
    min_stop_words: int | None = 2


class DecideConfig(_Model):
    # filter: thresholds drop documents. annotate: every stage scores, nothing that has text is dropped,
    # so curated/ holds every score column for studying distributions before choosing thresholds.
    mode: Literal["filter", "annotate"] = "filter"


class TokenizeConfig(_Model):
    # A tokenizers `tokenizer.json`; None trains a byte-level BPE on the run's curated text.
    tokenizer_file: str | None = None
    vocab_size: int = Field(default=8192, ge=300, le=1 << 20)
    shard_tokens: int = Field(default=8_000_000, ge=1024)
    # Documents go to the validation split by a hash of their URL.
    val_fraction: float = Field(default=0.05, ge=0, lt=1)
    seed: int = 0


class Job(_Model):
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    sources: list[SourceConfig] = Field(min_length=1)
    # Run folder; relative to the current directory. None: runs/<name>.
    output: str | None = None
    # Documents per batch handed to each stage.
    batch_size: int = Field(default=64, ge=1)
    ray: RayConfig = RayConfig()
    extract: ExtractConfig = ExtractConfig()
    language: LanguageConfig = LanguageConfig()
    quality: QualityConfig = QualityConfig()
    decide: DecideConfig = DecideConfig()
    tokenize: TokenizeConfig = TokenizeConfig()

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)


def _key_path(loc: tuple) -> str:
    return ".".join(str(part) for part in loc) or "(top level)"


def load_job(path: str | Path) -> Job:
    """Read and validate a job file; relative paths in it resolve against its folder."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as err:
        raise JobError(f"{path}: cannot read job file: {err.strerror}") from err
    except yaml.YAMLError as err:
        raise JobError(f"{path}: not valid YAML: {err}") from err
    if not isinstance(raw, dict):
        raise JobError(f"{path}: a job is a YAML mapping, got {type(raw).__name__}")
    try:
        job = Job.model_validate(raw)
    except ValidationError as err:
        problems = []
        for e in err.errors():
            what = "unknown key" if e["type"] == "extra_forbidden" else e["msg"]
            problems.append(f"{path}: {_key_path(e['loc'])}: {what}")
        raise JobError("\n".join(problems)) from None
    return resolve_paths(job, path.parent)


def resolve_paths(job: Job, base: Path) -> Job:
    """Make source globs and the tokenizer path absolute, relative to `base`."""
    def absolute(p: str) -> str:
        return p if "://" in p or Path(p).is_absolute() else str((base / p).resolve())

    sources = [s.model_copy(update={"paths": [absolute(p) for p in s.paths]}) for s in job.sources]
    tokenize = job.tokenize
    if tokenize.tokenizer_file:
        tokenize = tokenize.model_copy(update={"tokenizer_file": absolute(tokenize.tokenizer_file)})
    return job.model_copy(update={"sources": sources, "tokenize": tokenize})
