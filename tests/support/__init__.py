"""Test support, one place: the repository's paths and shipped jobs (repo), fixture writers and corpora
(warc, hostile_corpus, pii_corpus, quality_corpus, optout), the crawler's 127.0.0.1 guard (crawl), the run
helpers of the fault and determinism tests (reliability), the report's browser (report) and the scoring
code as it was before it was bounded (scoring_reference). Tests import `support.NAME`; tests/ is on the
path through tests/conftest.py."""
