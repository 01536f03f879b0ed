"""report.html in a real headless Chromium: no console errors, no network requests, every plot rendered,
and the plotted values read back from the page equal stats.json. Also `gristmill stats --json`,
`inspect`, the evidence spans and the progress line."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pytest
from typer.testing import CliRunner

from gristmill.filters.evidence import evidence_spans, redact
from gristmill.pipeline.cli.app import app
from gristmill.pipeline.engine.progress import Progress
from gristmill.pipeline.tools.report_html import NOT_COMPUTED, build_report
from gristmill.pipeline.engine.writers import SplitRecord
from gristmill.schemas import columns as C
from gristmill.schemas.stats import Ledger

from support.repo import REPO
from support.report import Browser, ensure_chromium, quickstart_run

ARTIFACTS = REPO / "tests" / "artifacts"

READ_PLOTS = """
Array.from(document.querySelectorAll('figure.plot')).map(function (f) {
  var svg = f.querySelector('svg'); var box = svg ? svg.getBoundingClientRect() : {width: 0, height: 0};
  return {plot: f.dataset.plot, values: JSON.parse(f.dataset.values), rendered: Number(f.dataset.rendered || 0),
          width: box.width, height: box.height,
          marks: Array.from(f.querySelectorAll('[data-value]')).map(function (m) {
            var b = m.getBoundingClientRect();
            return {label: m.dataset.label, series: m.dataset.series || null, value: Number(m.dataset.value), width: b.width, height: b.height};
          }),
          thresholds: Array.from(f.querySelectorAll('[data-threshold]')).map(function (t) { return Number(t.dataset.threshold); })};
})
"""

PII = {"documents_with_pii": 7, "by_type": {"EMAIL_ADDRESS": 9, "PHONE_NUMBER": 4, "IP_ADDRESS": 1}}
REPRESENTATION = {
    "before": {"documents": 59, "pronouns": {"she": 0.2, "he": 0.3, "they": 0.5}, "axes": {"gender": 0.4, "religion": 0.1},
               "descriptors": {"gender": {"woman": 0.1, "man": 0.15}}},
    "after": {"documents": 52, "pronouns": {"she": 0.25, "he": 0.25, "they": 0.5}, "axes": {"gender": 0.35, "religion": 0.05},
              "descriptors": {"gender": {"woman": 0.12, "man": 0.13}}},
}


@pytest.fixture(scope="module")
def run_dir(ray_local, tmp_path_factory) -> Path:
    return quickstart_run(tmp_path_factory)


@pytest.fixture(scope="module")
def browser():
    chromium = ensure_chromium()
    b = Browser(chromium)
    yield b
    b.close()


def _plots(browser: Browser, report: Path) -> dict[str, dict]:
    browser.open(report.resolve().as_uri())
    assert browser.console_errors() == []
    # No network: the only request the page makes is for the report file itself.
    assert [u for u in browser.requests() if not u.startswith("data:")] == [report.resolve().as_uri()]
    plots = {p["plot"]: p for p in browser.evaluate(READ_PLOTS)}
    for name, p in plots.items():  # every plot rendered by the browser, with visible marks
        assert p["rendered"] == len(p["marks"]) > 0, name
        assert p["width"] > 0 and p["height"] > 0, name
        assert any(m["width"] > 0 and m["height"] > 0 for m in p["marks"]), name
    return plots


def _series(plot: dict, series: str) -> dict[str, float]:
    return {m["label"]: m["value"] for m in plot["marks"] if m["series"] == series}


def _check_pii(plots: dict, pii: dict) -> None:
    assert _series(plots["pii"], "count") == pii["by_type"]


def _check_representation(plots: dict, representation: dict) -> None:
    for key in ("pronouns", "axes"):
        plot = plots[f"representation:{key}"]
        for side in ("before", "after"):
            got = {m["label"].removesuffix(f" {side}"): m["value"] for m in plot["marks"] if m["series"] == side}
            expected = {name: representation[side].get(key, {}).get(name, 0.0) for name in plot["values"]}
            assert got == pytest.approx(expected), (key, side)
            assert set(representation[side].get(key, {})) <= set(got), (key, side)


def test_report_in_headless_chromium_matches_stats(run_dir, browser, tmp_path):
    report = build_report(run_dir)
    stats = json.loads((run_dir / "stats.json").read_text())
    assert "<script src" not in report.read_text() and "<link rel=\"stylesheet\"" not in report.read_text()
    plots = _plots(browser, report)

    funnel = plots["funnel"]
    assert [v["stage"] for v in funnel["values"]] == ["input"] + [r["stage"] for r in stats["funnel"]]
    assert [v["remaining"] for v in funnel["values"][1:]] == [r["remaining"] for r in stats["funnel"]]
    assert list(_series(funnel, "remaining").values()) == [stats["ledger"]["input"]] + [r["remaining"] for r in stats["funnel"]]
    assert _series(plots["drop_reasons"], "dropped") == stats["ledger"]["dropped"]

    for key in ("language", "domain"):
        expected = {k: {"kept": v["kept"], "dropped": v["dropped"]} for k, v in stats["breakdown"][key].items()}
        assert plots[key]["values"] == expected
        assert _series(plots[key], "kept") == {k: v["kept"] for k, v in expected.items()}
    assert sum(v["kept"] for v in plots["language"]["values"].values()) == stats["ledger"]["kept"]

    sizes = _series(plots["dedup_cluster_sizes"], "clusters")
    assert {k.removeprefix("size "): v for k, v in sizes.items()} == stats["dedup"]["cluster_sizes"]

    for name, summary in stats["scores"].items():
        if not summary["n"]:  # e.g. c4_bad_word_count without a bad-words list: nothing to plot
            assert f"score:{name}" not in plots
            continue
        plot = plots[f"score:{name}"]
        counts = [m["value"] for m in plot["marks"]]
        assert sum(counts) == summary["n"], name
        if summary["histogram"]:
            assert counts == summary["histogram"], name
    assert plots["score:word_count"]["thresholds"] == [50.0, 100000.0]  # quality.min_words, max_words
    assert plots["score:language_score"]["thresholds"] == [0.65]

    page_text = browser.evaluate("document.body.innerText")
    # PII and representation: plotted when the run computed them (their stages are optional), else said so.
    for key, label, check in (("pii", "PII detection", _check_pii), ("representation", "representation", _check_representation)):
        if stats.get(key) is None:
            assert f"{label}: {NOT_COMPUTED}" in page_text and not any(p.startswith(key) for p in plots)
        else:
            check(plots, stats[key])
    # Sample documents: the reason's spans are highlighted (four lines ending in '...' → marks).
    marks = browser.evaluate("Array.from(document.querySelectorAll('[data-reason]')).map(h => h.dataset.reason)")
    assert set(marks) == {r for r in stats["ledger"]["dropped"] if r not in ("not_response", "not_html", "http_status_not_ok", "revisit")}
    assert browser.evaluate("document.querySelectorAll('#samples mark[title=\"ends with an ellipsis\"]').length") > 0

    shot = browser.screenshot(tmp_path / "report.png")
    assert shot.stat().st_size > 10_000
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copy(shot, ARTIFACTS / "report-quickstart.png")


def test_report_renders_pii_and_representation_when_present(run_dir, browser, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy, ignore=shutil.ignore_patterns("shards", "report.html"))
    stats = json.loads((copy / "stats.json").read_text())
    stats["pii"], stats["representation"] = PII, REPRESENTATION
    (copy / "stats.json").write_text(json.dumps(stats))
    plots = _plots(browser, build_report(copy))
    _check_pii(plots, PII)
    _check_representation(plots, REPRESENTATION)
    text = browser.evaluate("document.body.innerText")
    assert NOT_COMPUTED not in text and "7 documents with PII" in text
    browser.screenshot(tmp_path / "report-pii.png")
    shutil.copy(tmp_path / "report-pii.png", ARTIFACTS / "report-with-pii-and-representation.png")


def test_stats_json_funnel_and_breakdown(run_dir):
    result = CliRunner().invoke(app, ["stats", str(run_dir), "--json"])
    assert result.exit_code == 0, result.output
    view = json.loads(result.output)
    ledger = view["ledger"]
    assert view["funnel"] == json.loads((run_dir / "stats.json").read_text())["funnel"]  # a superset of stats.json
    rows = {r["stage"]: r for r in view["funnel_view"]}
    assert rows["source"]["in"] == ledger["input"] and view["funnel_view"][-1]["out"] == ledger["kept"]
    for before, after in zip(view["funnel_view"], view["funnel_view"][1:]):
        assert after["in"] == before["out"] and after["out"] == after["in"] - after["dropped"]
    assert rows["quality"]["by_reason"]["too_few_words"] == ledger["dropped"]["too_few_words"]
    assert rows["quality"]["seconds"] > 0 and rows["quality"]["docs_per_s"] > 0
    language = view["breakdown"]["language"]
    assert language["en"]["kept"] == ledger["kept"]  # the job keeps English only
    assert all(v["kept"] == 0 and set(v["reasons"]) <= {"language_not_kept", "language_score_too_low"}
               for k, v in language.items() if k != "en")
    domains = view["breakdown"]["domain"]
    assert sum(v["kept"] for v in domains.values()) == ledger["kept"] and "news.demo.test" in domains
    text = CliRunner().invoke(app, ["stats", str(run_dir)]).output
    assert "news.demo.test" in text and "too_few_words" in text and "OK (276)" in text


def test_inspect_shows_reason_documents_with_spans(run_dir):
    result = CliRunner().invoke(app, ["inspect", str(run_dir), "--reason", "too_many_ellipsis_lines", "--n", "2", "--json"])
    assert result.exit_code == 0, result.output
    docs = json.loads(result.output)
    assert len(docs) == 2 and all(d["drop_reason"] == "too_many_ellipsis_lines" for d in docs)
    for d in docs:
        assert d["scores"][C.ELLIPSIS_LINES_RATIO] > 0.3 and d["spans"]
        assert d["rule"] == {"column": C.ELLIPSIS_LINES_RATIO, "op": ">", "threshold": 0.3, "value": d["scores"][C.ELLIPSIS_LINES_RATIO]}
        assert all(d["text"][s:e].rstrip().endswith(("...", "…")) for s, e, _ in d["spans"])
    again = json.loads(CliRunner().invoke(app, ["inspect", str(run_dir), "--reason", "too_many_ellipsis_lines", "--n", "2", "--json"]).output)
    assert [d["id"] for d in again] == [d["id"] for d in docs]  # same seed, same sample
    kept = json.loads(CliRunner().invoke(app, ["inspect", str(run_dir), "--kept", "--n", "3", "--json"]).output)
    assert len(kept) == 3 and all(d["drop_reason"] is None for d in kept)
    missing = CliRunner().invoke(app, ["inspect", str(run_dir), "--reason", "no_such_reason"])
    assert "reasons with documents:" in missing.output and "too_few_words" in missing.output


def test_evidence_spans_and_redaction():
    text = "first line...\nsecond line\nthird…\n- bullet\nthe cat the cat the cat sat"
    spans = evidence_spans("too_many_ellipsis_lines", text)
    assert [text[s:e] for s, e, _ in spans] == ["first line...", "third…"]
    assert [text[s:e] for s, e, _ in evidence_spans("too_many_bullet_lines", text)] == ["- bullet"]
    assert [text[s:e] for s, e, _ in evidence_spans("top_2gram_too_frequent", text)] == ["the cat", "the cat", "the cat"]
    assert evidence_spans("too_few_words", text) == [] and evidence_spans(None, text) == []
    assert evidence_spans("too_few_words", "mail |||EMAIL_ADDRESS||| now") == [(5, 24, "redacted PII")]
    masked, counts = redact("mail ada@example.org or call +44 20 7946 0958 from 10.0.0.1")
    assert masked == "mail <EMAIL_ADDRESS> or call <PHONE_NUMBER> from <IP_ADDRESS>"
    assert counts == Counter({"EMAIL_ADDRESS": 1, "PHONE_NUMBER": 1, "IP_ADDRESS": 1})


def test_progress_rates_and_eta_from_completed_splits():
    lines, now = [], [0.0]
    progress = Progress(lines.append, sizes={"a.warc.gz": 1000, "b.warc.gz": 3000}, every_s=5, clock=lambda: now[0])
    record = SplitRecord(input="a.warc.gz", index=0, split=0, node=None, parts=[], ledger=Ledger(input=2), sources={},
                         scores={}, stages=[], documents=1, text_bytes=1_000_000)
    now[0] = 10.0
    progress.update(record, "a.warc.gz")
    assert progress.fraction() == 0.25 and len(lines) == 1
    assert "2 records, 1 documents (0 docs/s)" in lines[0] and "25%" in lines[0] and "ETA 0:30" in lines[0]
    now[0] = 12.0
    progress.update(record, "a.warc.gz")  # within every_s of the last line: quiet
    assert len(lines) == 1
    progress.finish()
    assert len(lines) == 2 and "ETA" in lines[1]
    assert Progress(lines.append, sizes=None).fraction() is None


def test_breakdown_by_ray_tasks_equals_the_one_process_count(run_dir, ray_local, monkeypatch):
    """The breakdown as the run counts it (Ray tasks, domains hash-partitioned to reduce tasks that keep
    their top rows) is the one-process count, also when the top rows must be merged across partitions."""
    from gristmill.pipeline.steps import breakdown as B

    for top in (B.TOP_DOMAINS, 2):
        distributed = B.breakdown_of(run_dir, top_domains=top)
        monkeypatch.setattr(ray_local, "is_initialized", lambda: False)
        local = B.breakdown_of(run_dir, top_domains=top)
        monkeypatch.undo()
        assert distributed == local and local["domains_total"] == 4  # the demo web's four hosts
        monkeypatch.setattr(B, "DOCUMENTS_PER_PARTITION", 10)  # many partitions, each with its own top rows
        assert B.breakdown_of(run_dir, top_domains=top) == local
        monkeypatch.undo()
    assert list(local["domain"])[-1] == B.OTHER  # with top 2, two hosts folded into "(other)"
