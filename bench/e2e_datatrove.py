"""The datatrove side of bench/e2e.py: FineWeb's pipeline with gristmill's settings, on LocalPipelineExecutor.

Its own module (not bench/e2e.py's `__main__`) so datatrove's forkserver workers import the two classes
below by name; e2e.py puts bench/ on PYTHONPATH for them.

    1. WarcReader → Trafilatura → PyLangIdFilter → GopherRepetition → GopherQuality → C4Quality → FineWebQuality
       → JsonlWriter(filtered) → MinhashDedupSignature                         tasks = files, workers = cores
    2. MinhashDedupBuckets                                                    tasks = bands, workers = cores
    3. MinhashDedupCluster                                                    tasks = 1
    4. JsonlReader(filtered) → MinhashDedupFilter → [PIIFormatter] → JsonlWriter(kept) → DocumentTokenizer
                                                                              tasks = files, workers = cores
One task per WARC file, so a document's MinHash node is (file index, document index) and the cluster
step keeps the first document of a pair, as gristmill's `keep: first` does.
"""

from __future__ import annotations

from pathlib import Path

import xxhash
from datatrove.pipeline.dedup.minhash import MinhashDedupSignature
from datatrove.pipeline.filters.base_filter import BaseFilter


class PyLangIdFilter(BaseFilter):
    """gristmill's offline language model (py3langid, first 4,000 characters) as a datatrove filter, with
    gristmill's rule: keep when the top language is in `languages` and its probability ≥ `min_score`.
    (datatrove's LanguageFilter downloads fastText's lid.176 at run time.)"""

    name = "🌍 py3langid"

    def __init__(self, languages: list[str], min_score: float):
        super().__init__()
        self.languages, self.min_score = list(languages), min_score
        self._scorer = None

    def filter(self, doc) -> bool | tuple[bool, str]:
        if self._scorer is None:
            from gristmill.filters.language import LanguageScorer

            self._scorer = LanguageScorer()
        language, score = self._scorer.score(doc.text)
        doc.metadata["language"], doc.metadata["language_score"] = language, score
        if self.languages and language not in self.languages:
            return False, "language_not_kept"
        return (True if score >= self.min_score else (False, "language_score_too_low"))


class Utf8MinhashDedupSignature(MinhashDedupSignature):
    """datatrove 0.10.1's default xxhash64 wrapper passes `str`, which xxhash ≥ 4 rejects; the same hash
    of the UTF-8 bytes (what xxhash < 4 computed from a str)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._hash_func = _xxh64_utf8

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_hash_func"] = None
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._hash_func = _xxh64_utf8


def _xxh64_utf8(text: str) -> int:
    return xxhash.xxh64_intdigest(text.encode("utf-8"))


def run_datatrove(warc_dir: Path, out: Path, workers: int, files: int, tokenizer: str, *, languages: list[str],
                  min_score: float, extract: dict, n_grams: int, bands: int, rows: int, seed: int,
                  pii: bool = False) -> dict:
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup.minhash import MinhashConfig, MinhashDedupBuckets, MinhashDedupCluster, MinhashDedupFilter
    from datatrove.pipeline.extractors import Trafilatura
    from datatrove.pipeline.filters import C4QualityFilter, FineWebQualityFilter, GopherQualityFilter, GopherRepetitionFilter
    from datatrove.pipeline.readers import JsonlReader, WarcReader
    from datatrove.pipeline.tokens import DocumentTokenizer
    from datatrove.pipeline.writers import JsonlWriter
    from datatrove.utils.hashing import HashConfig

    config = MinhashConfig(n_grams=n_grams, num_buckets=bands, hashes_per_bucket=rows, seed=seed,
                           hash_config=HashConfig(precision=64, hash_fc="xxhash"))
    logs = out / "logs"
    # gristmill's extract defaults, passed as gristmill passes them (extract_sandbox.main).
    extractor = Trafilatura(favour_precision=extract["favor_precision"], timeout=extract["timeout_s"], deduplicate=False,
                            favor_recall=extract["favor_recall"], include_tables=extract["include_tables"],
                            output_format="txt", with_metadata=False)
    assert not extract["include_comments"]  # datatrove's Trafilatura always passes include_comments=False
    main = LocalPipelineExecutor(pipeline=[
        WarcReader(str(warc_dir), glob_pattern="*.warc.gz"),
        extractor,
        PyLangIdFilter(languages, min_score),
        GopherRepetitionFilter(),
        GopherQualityFilter(),
        C4QualityFilter(filter_no_terminal_punct=False),
        FineWebQualityFilter(),
        JsonlWriter(str(out / "filtered"), compression=None),
        Utf8MinhashDedupSignature(str(out / "minhash" / "signatures"), config=config),
    ], tasks=files, workers=workers, logging_dir=str(logs / "1-main"))
    buckets = LocalPipelineExecutor(pipeline=[
        MinhashDedupBuckets(str(out / "minhash" / "signatures"), str(out / "minhash" / "buckets"), config=config),
    ], tasks=bands, workers=workers, logging_dir=str(logs / "2-buckets"), depends=main)
    cluster = LocalPipelineExecutor(pipeline=[
        MinhashDedupCluster(str(out / "minhash" / "buckets"), str(out / "minhash" / "remove"), config=config),
    ], tasks=1, logging_dir=str(logs / "3-cluster"), depends=buckets)
    final_steps = [JsonlReader(str(out / "filtered")), MinhashDedupFilter(str(out / "minhash" / "remove"))]
    if pii:
        from datatrove.pipeline.formatters import PIIFormatter

        final_steps.append(PIIFormatter())
    final_steps += [JsonlWriter(str(out / "kept")),
                    DocumentTokenizer(str(out / "tokens"), tokenizer_name_or_path=tokenizer, eos_token="<|endoftext|>",
                                      seed=0)]
    final = LocalPipelineExecutor(pipeline=final_steps, tasks=files, workers=workers,
                                  logging_dir=str(logs / "4-final"), depends=cluster)
    final.run()
    return {"logs": str(logs)}


def kept_urls(out: Path) -> list[str]:
    import gzip
    import json

    urls = []
    for path in sorted((out / "kept").glob("*.jsonl.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as f:
            urls.extend(json.loads(line)["metadata"]["url"] for line in f)
    return urls


def step_seconds(out: Path) -> dict[str, float]:
    """Seconds per step summed over tasks (datatrove's stats.json of each executor)."""
    import json

    seconds: dict[str, float] = {}
    for stats in sorted((out / "logs").glob("*/stats.json")):
        for step in json.loads(stats.read_text()):
            name = step.get("name", "?")
            total = step.get("time_stats", {}).get("total", 0.0)
            seconds[name] = seconds.get(name, 0.0) + total
    return seconds
