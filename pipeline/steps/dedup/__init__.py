"""Deduplication (issue 7): per-batch signatures (`ComputeDedupSignatures`) and the global step over the
survivors (`deduplicate_run`): exact and MinHash-LSH near duplicates, clustered on Ray."""

from gristmill.pipeline.steps.dedup.run import DedupResult, deduplicate_run
from gristmill.pipeline.steps.dedup.signatures import ComputeDedupSignatures

__all__ = ["ComputeDedupSignatures", "DedupResult", "deduplicate_run"]
