"""URL block lists and banned words, per-language language thresholds, and the C4 line cleanup
option: small real texts, each checking which reason fires or what is counted."""

from __future__ import annotations

from collections import Counter

import pyarrow as pa
import pytest

from gristmill.filters.url_filter import UrlFilter, read_list, url_host
from gristmill.pipeline.engine.api import default_stages
from gristmill.pipeline.stages.decide import decide, rules_of
from gristmill.pipeline.stages.quality import ScoreQuality
from gristmill.pipeline.stages.url_filter import FilterUrls
from gristmill.schemas import columns as C
from gristmill.schemas import reasons as R
from gristmill.schemas.job import Job, JobError, QualityConfig, UrlFilterConfig, load_job


def test_block_list_matches_the_domain_and_its_subdomains_only(tmp_path):
    (tmp_path / "block.txt").write_text("# spam farms\nSpam.example  # trailing comment\n\nads.test.\n")
    assert read_list(tmp_path / "block.txt") == ["spam.example", "ads.test."]
    f = UrlFilter.from_files([tmp_path / "block.txt"], defaults=False)
    assert f.blocked_domain("https://spam.example/page") == "spam.example"
    assert f.blocked_domain("http://WWW.Spam.Example:8080/x?y=1") == "spam.example"
    assert f.blocked_domain("http://a.b.ads.test/") == "ads.test"
    assert f.blocked_domain("http://notspam.example/") is None  # a suffix is not a subdomain
    assert f.blocked_domain("http://spam.example.org/") is None
    assert f.blocked_domain(None) is None and f.blocked_domain("not a url") is None
    assert url_host("http://[::1]:80/") == "::1"


def test_banned_words_match_whole_url_words():
    f = UrlFilter([], ["casino", "sex"])
    assert f.banned_word("http://best-casino-bonus.example/") == "casino"
    assert f.banned_word("http://news.example/2024/SEX-education-in-schools") == "sex"
    assert f.banned_word("http://essex.example/sussex/news") is None  # inside a word: no match
    assert f.banned_word("http://example.com/casinos") is None


def test_default_lists_are_ours_and_small():
    f = UrlFilter.from_files()
    assert 0 < len(f.domains) < 50 and 0 < len(f.banned_words) < 50
    assert f.blocked_domain("https://www.pornhub.com/view") == "pornhub.com"
    assert f.banned_word("http://example.com/free-porn/") == "porn"
    assert UrlFilter.from_files(defaults=False).banned_word("http://example.com/free-porn/") is None


def _source_rows(urls):
    rows = [{C.ID: str(i), C.URL: u, C.TEXT: None, C.SKIP_REASON: skip, C.QUARANTINE_REASON: None}
            for i, (u, skip) in enumerate(urls)]
    return pa.Table.from_pylist(rows, schema=C.schema_of([C.ID, C.URL, C.TEXT, C.SKIP_REASON, C.QUARANTINE_REASON]))


def test_url_stage_sets_the_reason_and_the_match_before_extraction(tmp_path):
    (tmp_path / "block.txt").write_text("shop.demo.test\n")
    (tmp_path / "words.txt").write_text("sourdough\n")
    stage = FilterUrls(UrlFilterConfig(blocklist_files=[str(tmp_path / "block.txt")],
                                       banned_word_files=[str(tmp_path / "words.txt")], default_lists=False))
    table = stage(_source_rows([
        ("http://shop.demo.test/guides/x", None),
        ("http://blog.demo.test/posts/notes-to-a-first-sourdough-starter/", None),
        ("http://blog.demo.test/posts/why-bread-rises/", None),
        ("http://shop.demo.test/robots.txt", R.NOT_HTML),  # already not a document: left alone
    ]))
    assert table[C.SKIP_REASON].to_pylist() == [R.URL_BLOCKED, R.URL_BANNED_WORD, None, R.NOT_HTML]
    assert table[C.URL_FILTER_MATCH].to_pylist() == ["shop.demo.test", "sourdough", None, None]


def test_job_resolves_url_list_paths_and_rejects_bad_language_scores(tmp_path):
    (tmp_path / "job.yaml").write_text(
        "name: t\nsources: [{paths: [x.warc.gz]}]\nurl_filter: {blocklist_files: [lists/block.txt]}\n"
        "language: {keep: [en, de], min_score_per_language: {de: 0.8}}\n")
    job = load_job(tmp_path / "job.yaml")
    assert job.url_filter.blocklist_files == [str(tmp_path / "lists" / "block.txt")]
    assert job.language.min_score_per_language == {"de": 0.8}
    (tmp_path / "bad.yaml").write_text("name: t\nsources: [{paths: [x]}]\nlanguage: {min_score_per_language: {de: 1.5}}\n")
    with pytest.raises(JobError, match="min_score_per_language"):
        load_job(tmp_path / "bad.yaml")


def test_per_language_threshold_replaces_min_score_for_that_language():
    job = Job(name="t", sources=[{"paths": ["x"]}], quality={"min_words": None},
              language={"keep": ["en", "de"], "min_score": 0.65, "min_score_per_language": {"de": 0.8}})
    names = [C.LANGUAGE, C.LANGUAGE_SCORE, C.SKIP_REASON, C.QUARANTINE_REASON]
    rows = [("en", 0.7), ("de", 0.7), ("de", 0.85), ("fr", 0.99), ("en", 0.6)]
    table = pa.Table.from_pylist([dict(zip(names, (lang, score, None, None))) for lang, score in rows],
                                 schema=C.schema_of(names))
    language_rules = [r for r in rules_of(s for s in default_stages(job) if s.name in ("language", "quality")) if r.column in (C.LANGUAGE, C.LANGUAGE_SCORE)]
    assert decide(table, language_rules)[C.DROP_REASON].to_pylist() == [
        None, R.LANGUAGE_SCORE_TOO_LOW, None, R.LANGUAGE_NOT_KEPT, R.LANGUAGE_SCORE_TOO_LOW]


PAGE = """Walking the Tallow from Harrowgate Green
This site uses cookies to improve your experience, see our cookie policy.
Home
The river rises in the peat above the village and falls quickly to the mill.[1]
Please enable JavaScript in your browser to see the map of the route.
In wet years the lower path floods, and walkers take the lane past the church instead.
Share"""


def test_c4_cleanup_stores_the_kept_lines_and_counts_removals_by_reason():
    stage = ScoreQuality(QualityConfig(c4_clean_text=True))
    assert C.TEXT in stage.writes
    names = [C.TEXT, C.SKIP_REASON, C.QUARANTINE_REASON]
    table = pa.Table.from_pylist([{C.TEXT: PAGE, C.SKIP_REASON: None, C.QUARANTINE_REASON: None},
                                  {C.TEXT: "ignored", C.SKIP_REASON: R.NOT_HTML, C.QUARANTINE_REASON: None}],
                                 schema=C.schema_of(names))
    counts = Counter()
    stage.setup()
    out = stage.process(table, counts)
    assert out[C.TEXT].to_pylist() == [
        "Walking the Tallow from Harrowgate Green\n"
        "The river rises in the peat above the village and falls quickly to the mill.\n"
        "In wet years the lower path floods, and walkers take the lane past the church instead.",
        "ignored"]
    assert counts["c4_lines_removed:too_few_words"] == 2  # "Home", "Share"
    assert counts["c4_lines_removed:policy"] == 1
    assert counts["c4_lines_removed:javascript"] == 1
    assert counts["c4_lines_citations_cut"] == 1
    assert counts["c4_cleaned_documents"] == 1
    # the scores are those of the original text, as without the option
    plain = ScoreQuality(QualityConfig())
    plain.setup()
    plain = plain.process(table, Counter())
    assert out[C.FINEWEB_SHORT_LINE_RATIO].to_pylist() == plain[C.FINEWEB_SHORT_LINE_RATIO].to_pylist()
    assert plain[C.TEXT].to_pylist()[0] == PAGE
