"""Opt-out, decontamination and takedown in a real run on a real local Ray.

One run (module fixture) of the demo web archive plus a small WARC with a planted evaluation question plus
a JSONL source, with opt-out entries of every kind and two evaluation sets; then takedowns on a copy of
the finished run, checked against its curated Parquet, its decoded shards, `gristmill shards verify`, the
ledger and the audit record.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from typer.testing import CliRunner

from gristmill.pipeline.cli.app import app
from gristmill.pipeline.lists.optout import text_sha256
from gristmill.pipeline.engine.api import run
from gristmill.pipeline.sources.warc import read_warc_table
from gristmill.pipeline.steps.tokenize import verify_run_shards
from gristmill.schemas import columns as C
from gristmill.schemas.job import load_job
from gristmill.schemas.shards import Manifest, read_shard

from support.repo import REPO, shipped_job
from support.optout import CLEAN_PAGE, COMMON_PHRASES_PAGE, PLANTED_PAGE, write_eval_sets
from support.warc import write_warc

HTML = [("Content-Type", "text/html; charset=utf-8")]
MAYFLIES = "http://forum.demo.test/t/counting-mayflies-on-the-hobb"
JSONL_DOCS = [
    {"id": "jsonl-keep", "text": (
        "Mending a bicycle puncture is easier than most people think. First take the wheel off and lever the tyre "
        "away from the rim with two plastic levers. Pump a little air into the tube and listen for the hiss, or "
        "hold it under water and watch for bubbles. Roughen the rubber around the hole, spread a thin layer of "
        "glue and wait until it turns dull before pressing the patch on. Check the inside of the tyre for the "
        "thorn or the sliver of glass, because otherwise the new patch will not last the ride home.")},
    {"id": "jsonl-listed", "text": (
        "Sharpening a kitchen knife on a whetstone rewards patience more than strength. Soak the stone for ten "
        "minutes if it is a water stone, and set it on a damp cloth so that it cannot slide. Hold the blade at a "
        "shallow angle and draw it across the stone from heel to tip, keeping the angle steady. After a dozen "
        "strokes on one side, feel for the small burr along the edge, then turn the knife over. Finish on the "
        "fine side of the stone and wipe the blade clean before you put it away.")},
]


@pytest.fixture(scope="module")
def finished_run(ray_local, tmp_path_factory):
    folder = tmp_path_factory.mktemp("optout-run")
    write_warc(folder / "planted.warc.gz", [
        ("http://homework.example/muffin-problem", "200 OK", HTML, PLANTED_PAGE.encode()),
        ("http://homework.example/bakery-stall", "200 OK", HTML, COMMON_PHRASES_PAGE.encode()),
        ("http://homework.example/garden-gate", "200 OK", HTML, CLEAN_PAGE.encode()),
    ])
    (folder / "docs.jsonl").write_text("".join(json.dumps(d) + "\n" for d in JSONL_DOCS))
    evals = write_eval_sets(folder / "evals")
    demo = read_warc_table(str(REPO / "jobs" / "data" / "demo-web.warc.gz"), 5_000_000)
    mayflies = next(r[C.CONTENT] for r in demo.to_pylist() if r[C.URL] == MAYFLIES and r[C.WARC_TYPE] == "response")
    (folder / "optout.txt").write_text(
        "# opt-out requests received\n"
        f"sha256:{hashlib.sha256(mayflies).hexdigest()}  # the HTTP body of one forum thread\n"
        "domain:shop.demo.test\n"
        "prefix:http://forum.demo.test/t/bees-  # both bee threads\n"
        "url:HTTPS://Blog.demo.test:443/posts/./why-bread-rises/#comments\n"
        f"sha256:{text_sha256(JSONL_DOCS[1]['text'])}\n")
    raw = shipped_job("demo-archive.yaml")
    raw["sources"] = [{"type": "warc", "paths": [str(REPO / "jobs" / "data" / "demo-web.warc.gz"), "planted.warc.gz"]},
                      {"type": "jsonl", "paths": ["docs.jsonl"]}]
    raw["optout"] = {"lists": ["optout.txt"]}
    raw["decontaminate"] = {"eval_sets": [
        {"name": "gsm8k-style", "path": str(evals["gsm8k-style"]), "text_keys": ["question", "answer"]},
        {"name": "mmlu-style", "path": str(evals["mmlu-style"]), "text_keys": ["question", "choices"]}]}
    raw["tokenize"] = {**raw["tokenize"], "shard_tokens": 3000}
    (folder / "job.yaml").write_text(yaml.safe_dump(raw))
    result = run(load_job(folder / "job.yaml"), output=folder / "run", log=lambda m: None)
    return result


def rows(folder: Path) -> list[dict]:
    return pq.read_table(folder).to_pylist()


def test_opted_out_documents_are_dropped_with_the_entry_that_matched(finished_run):
    out, ledger = finished_run.output, finished_run.ledger
    rejected = {r[C.URL]: r for r in rows(out / "rejected") if r[C.URL] and r[C.DROP_REASON] != "not_response"}
    curated = rows(out / "curated")
    opted = {url: r[C.OPT_OUT_MATCH] for url, r in rejected.items() if r[C.DROP_REASON] == "opted_out"}
    assert {u for u in opted if "shop.demo.test" in u} and all(m == "domain:shop.demo.test" for u, m in opted.items() if "shop.demo.test" in u)
    assert opted["http://forum.demo.test/t/bees-and-borage-in-a-town-garden"] == "prefix:forum.demo.test/t/bees-"
    assert opted["http://forum.demo.test/t/bees-and-catmint-in-a-town-garden"] == "prefix:forum.demo.test/t/bees-"
    assert opted["http://blog.demo.test/posts/why-bread-rises/"] == "url:blog.demo.test/posts/why-bread-rises/"
    assert opted[MAYFLIES].startswith("sha256:")  # by its HTTP body, before extraction
    by_id = {r[C.ID]: r for r in rows(out / "rejected")}
    assert by_id["jsonl-listed"][C.DROP_REASON] == "opted_out" and by_id["jsonl-listed"][C.TEXT] is None
    assert by_id["jsonl-listed"][C.OPT_OUT_MATCH].startswith("sha256:")
    # URL opt-outs are skipped before extraction: no text was ever made for them
    assert all(rejected[u][C.TEXT] is None for u in opted)
    assert not any("shop.demo.test" in (r[C.URL] or "") or "/t/bees-" in (r[C.URL] or "") for r in curated)
    assert any("forum.demo.test/t/" in (r[C.URL] or "") for r in curated)  # the rest of the forum stays
    assert {r[C.ID] for r in curated} >= {"jsonl-keep"}
    assert ledger.dropped["opted_out"] == len(opted) + 1 and ledger.accounted == ledger.input  # + the JSONL one
    stats = json.loads((out / "stats.json").read_text())
    stages = {s["stage"]: s for s in stats["stages"]}
    assert [s["stage"] for s in stats["stages"]][:3] == ["source", "optout", "extract"]
    assert stages["optout"]["counts"]["by:domain"] >= 1 and stages["optout"]["counts"]["by:sha256"] == 1
    assert stages["optout_content"]["counts"]["by:sha256"] == 1  # the JSONL document, by its text
    # the hash is of the text as extracted: equal unless a later stage edited it (PII redaction records its edits)
    assert all(r[C.TEXT_SHA256] == text_sha256(r[C.TEXT]) for r in curated if not r[C.TEXT_EDITS])
    assert all(r[C.TEXT_SHA256] != text_sha256(r[C.TEXT]) for r in curated if r[C.TEXT_EDITS])


def test_planted_eval_item_is_dropped_and_common_phrases_page_is_kept(finished_run):
    out = finished_run.output
    by_url = {r[C.URL]: r for r in rows(out / "rejected") + rows(out / "curated")}
    planted = by_url["http://homework.example/muffin-problem"]
    assert planted[C.DROP_REASON] == "contaminated:gsm8k-style" and planted[C.CONTAMINATION_NGRAM_COUNT] >= 10
    for url in ("http://homework.example/bakery-stall", "http://homework.example/garden-gate"):
        assert by_url[url][C.KEEP] is True and by_url[url][C.CONTAMINATION_NGRAM_COUNT] == 0
    stats = json.loads((out / "stats.json").read_text())
    counts = {s["stage"]: s for s in stats["stages"]}["decontaminate"]["counts"]
    assert counts["gsm8k-style:documents_hit"] == 1 and counts.get("mmlu-style:documents_hit", 0) == 0
    assert finished_run.ledger.dropped["contaminated:gsm8k-style"] == 1
    assert next(f for f in stats["funnel"] if f["stage"] == "decontaminate")["dropped"] == {"contaminated:gsm8k-style": 1}


def _shard_bytes(shards: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(shards.iterdir()) if p.is_file()}


def _decoded(shards: Path) -> dict[str, str]:
    from tokenizers import Tokenizer

    manifest = Manifest.read(shards)
    tokenizer = Tokenizer.from_file(str(shards / manifest.tokenizer_file))
    decoded = {}
    for entry in manifest.shards:
        shard = read_shard(shards / entry.file)
        for i, doc_id in enumerate(pq.read_table(shards / entry.docs_file)[C.ID].to_pylist()):
            decoded[doc_id] = tokenizer.decode(shard.document(i).tolist()[:-1], skip_special_tokens=False)
    return decoded


def test_takedown_removes_listed_documents_and_near_copies_from_parquet_and_shards(finished_run, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(finished_run.output, run_dir)
    curated = {r[C.ID]: r for r in rows(run_dir / "curated")}
    rejected = rows(run_dir / "rejected")
    before_shards = _shard_bytes(run_dir / "shards")
    before_manifest = Manifest.read(run_dir / "shards")
    before_text = {i: r[C.TEXT] for i, r in curated.items()}

    # listed: one kept news article by URL, and a near duplicate that dedup dropped (its kept copy is a near copy)
    news = sorted(r[C.URL] for r in curated.values() if r[C.URL] and r[C.URL].startswith("http://news.demo.test/2024/"))[0]
    dropped_copy = next(r for r in rejected if r[C.DROP_REASON] == "near_duplicate" and r[C.DUP_CLUSTER_ID] in curated)
    listed = tmp_path / "takedown.txt"
    listed.write_text(f"url:{news}\nurl:{dropped_copy[C.URL]}\n")
    result = CliRunner().invoke(app, ["takedown", str(run_dir), "--list", str(listed), "--near-copies"])
    assert result.exit_code == 0, result.output
    gone = {next(i for i, r in curated.items() if r[C.URL] == news), dropped_copy[C.DUP_CLUSTER_ID]}

    after = {r[C.ID]: r for r in rows(run_dir / "curated")}
    assert set(after) == set(curated) - gone
    taken = [r for r in rows(run_dir / "rejected") if r[C.DROP_REASON] == "taken_down"]
    assert {r[C.ID] for r in taken} == gone and all(r[C.TEXT] is None and r[C.KEEP] is False for r in taken)
    decoded = _decoded(run_dir / "shards")
    assert decoded == {i: r[C.TEXT] for i, r in after.items()}  # every kept document once, nothing taken down
    assert not any(before_text[i] in text for i in gone for text in decoded.values())

    manifest = verify_run_shards(run_dir / "shards")
    verify = CliRunner().invoke(app, ["shards", "verify", str(run_dir / "shards")])
    assert verify.exit_code == 0, verify.output
    holding = {e.file for e in before_manifest.shards
               if gone & set(pq.read_table(finished_run.output / "shards" / e.docs_file)[C.ID].to_pylist())}
    assert holding and len(holding) < len(before_manifest.shards)
    after_shards = _shard_bytes(run_dir / "shards")
    for entry in before_manifest.shards:
        docs_file = entry.docs_file
        if entry.file in holding:
            assert after_shards.get(entry.file) != before_shards[entry.file]
        else:  # untouched: same bytes, same manifest entry
            assert after_shards[entry.file] == before_shards[entry.file] and after_shards[docs_file] == before_shards[docs_file]
            assert next(e for e in manifest.shards if e.file == entry.file) == entry

    stats = json.loads((run_dir / "stats.json").read_text())
    ledger = stats["ledger"]
    assert ledger["sums"] and ledger["dropped"]["taken_down"] == 2 and ledger["kept"] == len(after)
    assert ledger["kept"] + sum(ledger["dropped"].values()) + ledger["quarantined"] == ledger["input"]
    assert pq.read_table(run_dir / "rejected").num_rows == sum(ledger["dropped"].values())
    assert stats["tokens"]["train_docs"] + stats["tokens"]["val_docs"] == len(after)

    audits = sorted((run_dir / "takedown").glob("*.jsonl"))
    assert len(audits) == 1
    lines = [json.loads(line) for line in audits[0].read_text().splitlines()]
    assert lines[0]["type"] == "takedown" and lines[0]["removed"] == 2 and lines[0]["near_copies_removed"] == 1
    assert lines[0]["lists"][str(listed)] == hashlib.sha256(listed.read_bytes()).hexdigest()
    # what left a curated part is in rejected/takedown-STAMP-KEY.parquet, named after that part
    moved_to = sorted(p.name for p in (run_dir / "rejected").glob("takedown-*.parquet"))
    assert [name.split("-", 2)[2] for name in moved_to] == sorted(
        name.removeprefix("part-") for name in lines[0]["curated_parts_rewritten"])
    documents = {d[C.ID]: d for d in lines[1:] if d["type"] == "document"}
    scrubbed = {d[C.ID]: d for d in lines[1:] if d["type"] == "scrubbed"}
    # the listed copy that dedup had dropped keeps its reason in rejected/ but not its text
    assert scrubbed[dropped_copy[C.ID]]["matched"] == f"url:{dropped_copy[C.URL].split('://', 1)[1]}"
    assert scrubbed[dropped_copy[C.ID]][C.DROP_REASON] == "near_duplicate" and lines[0]["rejected_scrubbed"] == len(scrubbed)
    still = next(r for r in rows(run_dir / "rejected") if r[C.ID] == dropped_copy[C.ID])
    assert still[C.DROP_REASON] == "near_duplicate" and still[C.TEXT] is None and dropped_copy[C.TEXT]
    assert set(documents) == gone and all(C.TEXT not in d for d in documents.values())
    assert documents[dropped_copy[C.DUP_CLUSTER_ID]]["matched"] == f"near_copy_of:{dropped_copy[C.DUP_CLUSTER_ID]}"
    assert all(d[C.URL] and d[C.SOURCE_FILE] and d[C.TEXT_SHA256] and d["shard"] in holding for d in documents.values())
    assert not any(before_text[i][:80] in audits[0].read_text() for i in gone)

    # a second list by id (a document of the val split) and by content hash; the first list again finds nothing new
    val_entry = next(e for e in manifest.shards if e.split == "val")
    third = pq.read_table(run_dir / "shards" / val_entry.docs_file)[C.ID].to_pylist()[0]
    second = tmp_path / "second.yaml"
    by_hash = sorted(set(after) - {third})[0]
    second.write_text(yaml.safe_dump({"ids": [third], "sha256": [text_sha256(after[by_hash][C.TEXT])]}))
    assert CliRunner().invoke(app, ["takedown", str(run_dir), "--list", str(second)]).exit_code == 0
    again = CliRunner().invoke(app, ["takedown", str(run_dir), "--list", str(listed)])
    assert again.exit_code == 0 and "documents removed" in again.output
    stats = json.loads((run_dir / "stats.json").read_text())
    assert stats["ledger"]["dropped"]["taken_down"] == 4 and stats["ledger"]["sums"]
    assert [t["removed"] for t in stats["takedowns"]] == [2, 2, 0]
    assert set(_decoded(run_dir / "shards")) == set(after) - {third, by_hash}
    val_after = next((e for e in Manifest.read(run_dir / "shards").shards if e.file == val_entry.file), None)
    assert val_after is None or val_after.docs == val_entry.docs - 1
    verify_run_shards(run_dir / "shards")


def test_the_eval_index_is_put_in_the_object_store_once(ray_local, tmp_path):
    from gristmill.pipeline.stages.decontaminate import Decontaminate
    from gristmill.schemas.job import DecontaminateConfig, EvalSetConfig

    evals = write_eval_sets(tmp_path)
    stage = Decontaminate(DecontaminateConfig(eval_sets=[EvalSetConfig(name="g", path=str(evals["gsm8k-style"]),
                                                                       text_keys=["question"])]))
    first, second = stage.__getstate__(), stage.__getstate__()
    assert isinstance(first["index"], ray_local.ObjectRef) and first["index"] == second["index"]  # one put
    assert (ray_local.get(first["index"]).keys == stage.index.keys).all()
