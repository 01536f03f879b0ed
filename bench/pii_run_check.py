"""The PII figures as a new user measures them: `gristmill run` on JSONL with `decide: {mode: annotate}`,
then is each labeled value gone from the run's text?

    python bench/pii_run_check.py prepare runs/pii-faker/report.jsonl runs/pii-e2e
    gristmill run runs/pii-e2e/job.yaml -o runs/pii-e2e/out
    python bench/pii_run_check.py score runs/pii-faker/report.jsonl runs/pii-e2e/out

The evasions of issue 24 (tests/support/pii_corpus.py's EVASIONS, one ordinary document each) the same way:

    python bench/pii_run_check.py prepare-evasions - runs/pii-evasions
    gristmill run runs/pii-evasions/job.yaml -o runs/pii-evasions/out
    python bench/pii_run_check.py score-evasions - runs/pii-evasions/out

`prepare` writes `docs.jsonl` (one document per record of a bench/pii_faker_set.py half, PERSON records
left out: NER is off by default) and `job.yaml`; `score` reads curated/ and rejected/ and prints, per type,
how many labeled values no longer occur in their document's text, and how many PII-free texts hold a
placeholder.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import unicodedata
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

JOB = """name: pii-run-check
sources:
  - type: jsonl
    paths: ["docs.jsonl"]
decide: {mode: annotate}
"""


def records(path: Path) -> list[tuple[str, dict]]:
    out = []
    for i, line in enumerate(path.read_text().splitlines()):
        r = json.loads(line)
        if r["family"] != "PERSON":
            out.append((f"r{i}", r))
    return out


def prepare(labeled: Path, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "docs.jsonl", "w") as handle:
        for doc_id, r in records(labeled):
            handle.write(json.dumps({"id": doc_id, "text": r["text"]}, ensure_ascii=False) + "\n")
    (folder / "job.yaml").write_text(JOB)
    print(f"wrote {folder / 'docs.jsonl'} and {folder / 'job.yaml'}")


def score(labeled: Path, run: Path) -> None:
    import pyarrow.parquet as pq

    texts = {}
    for folder in ("curated", "rejected"):
        for part in sorted((run / folder).glob("*.parquet")):
            for row in pq.read_table(part, columns=["id", "text"]).to_pylist():
                texts[row["id"]] = row["text"]
    gone, total, negatives, with_placeholder, missing = Counter(), Counter(), 0, 0, 0
    for doc_id, r in records(labeled):
        text = texts.get(doc_id)
        if text is None:
            missing += 1
            continue
        if r["family"] == "NEGATIVE":
            negatives += 1
            with_placeholder += "|||" in text
            continue
        for g in r["spans"]:
            total[g["entity"]] += 1
            gone[g["entity"]] += r["text"][g["start"]:g["end"]] not in text
    n = sum(total.values())
    print(f"{len(texts)} documents in the run ({missing} labeled records missing)")
    print(f"structured recall (value gone from the run's text): {sum(gone.values()) / max(n, 1):.4f} of {n}")
    for entity in sorted(total):
        print(f"  {entity:16} {gone[entity]:5}/{total[entity]:<5} {gone[entity] / total[entity]:.3f}")
    print(f"PII-free texts given a placeholder: {with_placeholder}/{negatives} = {with_placeholder / max(negatives, 1):.4f}")


def prepare_evasions(_: Path, folder: Path) -> None:
    from support.pii_corpus import EVASIONS, sentences

    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "docs.jsonl", "w") as handle:
        for k, (_, written, _) in enumerate(EVASIONS):
            lines = sentences(random.Random(k), 8)
            lines.insert(4, f"One page carried {written} near its footer.")
            handle.write(json.dumps({"id": f"evasion-{k}", "text": "\n".join(lines)}, ensure_ascii=False) + "\n")
    (folder / "job.yaml").write_text(JOB)
    print(f"wrote {folder / 'docs.jsonl'} and {folder / 'job.yaml'}")


def score_evasions(_: Path, run: Path) -> None:
    import pyarrow.parquet as pq

    from support.pii_corpus import EVASIONS

    def compact(text: str) -> str:
        return re.sub(r"[\W_]+", "", unicodedata.normalize("NFKC", text)).lower()

    rows = {}
    for folder in ("curated", "rejected"):
        for part in sorted((run / folder).glob("*.parquet")):
            for row in pq.read_table(part, columns=["id", "text", "pii_count", "text_edits"]).to_pylist():
                rows[row["id"]] = (folder, row)
    for k, (entity, _, needle) in enumerate(EVASIONS):
        folder, row = rows[f"evasion-{k}"]
        kinds = [e["kind"] for e in row["text_edits"] or [] if e["stage"] == "pii"]
        left = needle in row["text"] or compact(needle) in compact(row["text"])
        print(f"evasion-{k} ({entity}): {folder}, pii_count {row['pii_count']}, redacted {kinds}, value left: {left}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["prepare", "score", "prepare-evasions", "score-evasions"])
    parser.add_argument("labeled", type=Path, help="a half written by bench/pii_faker_set.py ('-' for the evasions)")
    parser.add_argument("folder", type=Path, help="prepare: where docs.jsonl and job.yaml go; score: the run folder")
    args = parser.parse_args()
    commands = {"prepare": prepare, "score": score, "prepare-evasions": prepare_evasions, "score-evasions": score_evasions}
    commands[args.command](args.labeled, args.folder)


if __name__ == "__main__":
    main()
