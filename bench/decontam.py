"""Decontamination throughput, one process (= one core): the decontaminate stage against an index built
from more than 10 MB of real evaluation-like text.

    .venv/bin/python bench/decontam.py [--data ../shared/data] [--repeat 4] [--batch-size 64]

Index ("evaluation sets"), all from ../shared/data, as the stage reads them (filters/ngrams.py, n = 13):
  wiki        quality-text-samples/positive/enwiki-pages-articles1-shortened.xml.bz2, decompressed (6.1 MB
              of Wikipedia wikitext), items separated by blank lines (format text)
  tweets      toxicity-davidson/labeled_data.csv, the `tweet` column (JSONL, one item a tweet)
  articles    quality-text-samples/negative/article-benchmark-html-text-fullpage.json, every articleBody
  snippets    trafilatura-eval-en/evaldata-full.json, every "with" and "without" snippet
  news        quality-text-samples/positive/lee_background.cor, one ABC news article a line
  answers     neardup-plagiarism-short-answers/docs/*.txt, one short answer a file
Documents scanned: wikitext-2 test + valid and the Dolma CCNet pages (positive/),
cut into ~3 KB documents at line boundaries; one document in 50 gets a 60-word excerpt of an
articleBody planted in it, so the hit path (and, with remove_spans, the cutting path) runs. The set
is repeated `--repeat` times (the word-hash cache is warm after the first pass, as it is in a long run).
What is timed: `Decontaminate.__call__` on Arrow batches of `--batch-size` documents, as a Ray worker
calls it (stats file writing off), in wall time and in the process's CPU time (on a shared machine the
wall figure includes waiting for the core). MB = 10^6 bytes of UTF-8 text. For scale, a naive version (a Python set
of space-joined n-gram strings, regex words, one set lookup per n-gram) runs on the same documents.
Set OMP/Arrow threads to 1
(pyarrow's CPU pool is set to one thread below) so one process is one core.
"""

from __future__ import annotations

import argparse
import bz2
import csv
import json
import random
import tempfile
import time
from pathlib import Path

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import pyarrow as pa  # noqa: E402

pa.set_cpu_count(1)
pa.set_io_thread_count(1)

from gristmill.pipeline.lists.decontam_index import build_index  # noqa: E402
from gristmill.pipeline.stages.decontaminate import Decontaminate  # noqa: E402
from gristmill.schemas import columns as C  # noqa: E402
from gristmill.schemas.job import DecontaminateConfig, EvalSetConfig  # noqa: E402


def write_eval_sets(data: Path, folder: Path) -> list[EvalSetConfig]:
    samples = data / "quality-text-samples"
    wiki = folder / "wiki.txt"
    wiki.write_bytes(bz2.decompress((samples / "positive" / "enwiki-pages-articles1-shortened.xml.bz2").read_bytes()))
    tweets = folder / "tweets.jsonl"
    with open(data / "toxicity-davidson" / "labeled_data.csv", newline="", encoding="utf-8") as handle, open(tweets, "w") as out:
        for row in csv.DictReader(handle):
            out.write(json.dumps({"text": row["tweet"]}) + "\n")
    articles = folder / "articles.jsonl"
    bodies = json.loads((samples / "negative" / "article-benchmark-html-text-fullpage.json").read_text())["output"]
    articles.write_text("".join(json.dumps({"text": b["articleBody"]}) + "\n" for b in bodies.values()))
    snippets = folder / "snippets.jsonl"
    gold = json.loads((data / "trafilatura-eval-en" / "evaldata-full.json").read_text())
    snippets.write_text("".join(json.dumps({"with": g.get("with", []), "without": g.get("without", [])}) + "\n"
                                for g in gold.values()))
    news = folder / "news.jsonl"
    news.write_text("".join(json.dumps({"text": line}) + "\n" for line in
                            (samples / "positive" / "lee_background.cor").read_text(encoding="utf-8").splitlines() if line.strip()))
    answers = folder / "answers.jsonl"
    answers.write_text("".join(json.dumps({"text": p.read_text(encoding="utf-8", errors="replace")}) + "\n"
                               for p in sorted((data / "neardup-plagiarism-short-answers" / "docs").glob("*.txt"))))
    return [EvalSetConfig(name="wiki", path=str(wiki), format="text"),
            EvalSetConfig(name="news", path=str(news)),
            EvalSetConfig(name="answers", path=str(answers)),
            EvalSetConfig(name="tweets", path=str(tweets)),
            EvalSetConfig(name="articles", path=str(articles)),
            EvalSetConfig(name="snippets", path=str(snippets), text_keys=["with", "without"])]


def load_documents(data: Path, size: int = 3000) -> list[str]:
    samples = data / "quality-text-samples" / "positive"
    lines = []
    for name in ("wikitext-2-test.tokens.txt", "wikitext-2-valid.tokens.txt"):
        lines += [line for line in (samples / name).read_text(encoding="utf-8").splitlines() if line.strip()]
    for path in sorted(samples.glob("dolma-*.jsonl")):
        for line in path.read_text().splitlines():
            lines += json.loads(line)["text"].splitlines()
    docs, current = [], []
    for line in lines:
        current.append(line)
        if sum(len(x) for x in current) >= size:
            docs.append("\n".join(current))
            current = []
    return docs


def plant(docs: list[str], data: Path, every: int = 50, seed: int = 0) -> int:
    bodies = json.loads((data / "quality-text-samples" / "negative" / "article-benchmark-html-text-fullpage.json")
                        .read_text())["output"]
    words = [b["articleBody"].split() for b in bodies.values()]
    words = [w for w in words if len(w) > 200]
    rng = random.Random(seed)
    planted = 0
    for i in range(0, len(docs), every):
        source = rng.choice(words)
        start = rng.randrange(0, len(source) - 60)
        docs[i] = docs[i] + "\n" + " ".join(source[start:start + 60])
        planted += 1
    return planted


def table_of(texts: list[str]) -> pa.Table:
    n = len(texts)
    return pa.table({
        C.TEXT: pa.array(texts, C.TYPES[C.TEXT]),
        C.TEXT_EDITS: pa.array([[]] * n, C.TYPES[C.TEXT_EDITS]),
        C.SKIP_REASON: pa.nulls(n, pa.string()),
        C.QUARANTINE_REASON: pa.nulls(n, pa.string()),
    })


def naive_baseline(eval_sets: list[EvalSetConfig], docs: list[str], n: int, repeat: int) -> dict:
    """The way many decontamination scripts do it, for scale: a Python set of space-joined n-gram strings,
    and per document a regex word split and a set lookup per n-gram (same words as the stage)."""
    import re
    import sys

    from gristmill.pipeline.lists.decontam_index import read_eval_items

    word = re.compile(r"[^\W_]+")
    started = time.perf_counter()
    grams: set[str] = set()
    for eval_set in eval_sets:
        for item in read_eval_items(eval_set):
            words = [w.lower() for w in word.findall(item)]
            grams.update(" ".join(words[i:i + n]) for i in range(len(words) - n + 1))
    build_s = time.perf_counter() - started
    size = sys.getsizeof(grams) + sum(sys.getsizeof(g) for g in grams)
    hit_docs = 0
    started, cpu_started = time.perf_counter(), time.process_time()
    for _ in range(repeat):
        for doc in docs:
            words = [w.lower() for w in word.findall(doc)]
            hit_docs += any(" ".join(words[i:i + n]) in grams for i in range(len(words) - n + 1))
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    text_mb = sum(len(d.encode("utf-8")) for d in docs) * repeat / 1e6
    return {"index_build_s": round(build_s, 2), "index_ngrams": len(grams), "index_mb": round(size / 1e6, 1),
            "documents_hit_per_pass": hit_docs // repeat, "wall_s": round(seconds, 2), "cpu_s": round(cpu_seconds, 2),
            "mb_per_s_per_core_wall": round(text_mb / seconds, 2), "mb_per_s_per_core_cpu": round(text_mb / cpu_seconds, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--repeat", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--n", type=int, default=13)
    parser.add_argument("--no-baseline", action="store_true", help="skip the naive Python-set comparison")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        eval_sets = write_eval_sets(args.data, Path(tmp))
        results = {}
        for mode in ("drop", "remove_spans"):
            config = DecontaminateConfig(eval_sets=eval_sets, n=args.n, mode=mode)
            started = time.perf_counter()
            index = build_index(config)
            build_s = time.perf_counter() - started
            stage = Decontaminate(config, index)
            docs = load_documents(args.data)
            planted = plant(docs, args.data)
            batches = [table_of(docs[i:i + args.batch_size]) for i in range(0, len(docs), args.batch_size)]
            text_bytes = sum(len(d.encode("utf-8")) for d in docs)
            stage(batches[0])  # setup (and the first word hashes) outside the timing
            hit_docs = 0
            started, cpu_started = time.perf_counter(), time.process_time()
            for _ in range(args.repeat):
                for batch in batches:
                    out = stage(batch)
                    hit_docs += sum(1 for v in out[C.CONTAMINATED_BY].to_pylist() if v)
            seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
            results[mode] = {
                "index_build_s": round(build_s, 2),
                "eval_bytes": sum(s["bytes"] for s in index.sets.values()),
                "eval_sets": index.sets,
                "index_ngrams": len(index.keys),
                "index_mb": round(index.nbytes / 1e6, 1),
                "documents": len(docs) * args.repeat,
                "planted_per_pass": planted,
                "documents_hit_per_pass": hit_docs // args.repeat,
                "scanned_mb": round(text_bytes * args.repeat / 1e6, 2),
                "wall_s": round(seconds, 2),
                "cpu_s": round(cpu_seconds, 2),
                # wall: what one busy core delivered here; cpu: the same per second of CPU the process got
                # (the two differ when other processes share the core)
                "mb_per_s_per_core_wall": round(text_bytes * args.repeat / 1e6 / seconds, 2),
                "mb_per_s_per_core_cpu": round(text_bytes * args.repeat / 1e6 / cpu_seconds, 2),
                "docs_per_s_wall": round(len(docs) * args.repeat / seconds, 1),
            }
        if not args.no_baseline:
            docs = load_documents(args.data)
            plant(docs, args.data)
            results["naive_python_set"] = naive_baseline(eval_sets, docs, args.n, args.repeat)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
