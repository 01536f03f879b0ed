"""Helpers for the reliability tests: a multi-file corpus cut from the demo archive, a small job, a
`gristmill run` subprocess (optionally with an injected fault), and byte comparison of run folders."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from support.repo import REPO, shipped_job

OUTPUT_FOLDERS = ("curated", "rejected", "quarantine", "shards")
DEMO = REPO / "jobs" / "data" / "demo-web.warc.gz"


def split_warc(source: Path, folder: Path, parts: int) -> list[Path]:
    """Cut `source` into `parts` WARC files of consecutive records (each record its own gzip member)."""
    from warcio.archiveiterator import ArchiveIterator
    from warcio.warcwriter import WARCWriter

    folder.mkdir(parents=True, exist_ok=True)
    with open(source, "rb") as handle:
        records = [(r.rec_headers, r.http_headers, r.content_stream().read()) for r in ArchiveIterator(handle)]
    paths = [folder / f"split-{i:02d}.warc.gz" for i in range(parts)]
    per = -(-len(records) // parts)
    for i, path in enumerate(paths):
        with open(path, "wb") as out:
            writer = WARCWriter(out, gzip=True)
            for rec_headers, http_headers, payload in records[i * per:(i + 1) * per]:
                import io

                record = writer.create_warc_record(
                    rec_headers.get_header("WARC-Target-URI") or "", rec_headers.get_header("WARC-Type"),
                    payload=io.BytesIO(payload), http_headers=http_headers, warc_headers=rec_headers,
                )
                writer.write_record(record)
    return paths


def small_job(folder: Path, inputs: list[Path], num_cpus: int | None = 2, tokenize: dict | None = None,
              **overrides) -> Path:
    """The quickstart job over `inputs`, with small shards (several per split, so tokenization has a middle);
    `tokenize`: settings of its tokenize section to change."""
    job = shipped_job("demo-archive.yaml")
    job["sources"] = [{"type": "warc", "paths": [str(p) for p in inputs]}]
    job["output"] = str(folder / "unused")
    job["ray"] = {"num_cpus": num_cpus, "object_store_memory_mb": 256}
    job["tokenize"]["shard_tokens"] = 4000
    job["tokenize"]["vocab_size"] = 1024
    job["tokenize"].update(tokenize or {})
    job.update(overrides)
    path = folder / "job.yaml"
    path.write_text(yaml.safe_dump(job))
    return path


def gristmill_run(job: Path, output: Path, *, resume: bool = False, fault: str | None = None,
                  marker: Path | None = None, env: dict | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    """`gristmill run JOB -o OUTPUT [--resume]` in a subprocess (its own Ray unless env has RAY_ADDRESS)."""
    environ = {k: v for k, v in os.environ.items() if k not in ("GRISTMILL_FAULT", "GRISTMILL_FAULT_MARKER", "RAY_ADDRESS")}
    environ["RAY_USAGE_STATS_ENABLED"] = "0"
    if fault:
        environ["GRISTMILL_FAULT"] = fault
    if marker:
        environ["GRISTMILL_FAULT_MARKER"] = str(marker)
    environ.update(env or {})
    command = [sys.executable, "-m", "gristmill.pipeline.cli.app", "run", str(job), "-o", str(output)]
    return subprocess.run(command + (["--resume"] if resume else []), env=environ, capture_output=True, text=True,
                          timeout=timeout, cwd=REPO)


def files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def assert_same_outputs(a: Path, b: Path) -> None:
    for name in OUTPUT_FOLDERS:
        left, right = files(a / name), files(b / name)
        assert sorted(left) == sorted(right), name
        for path in left:
            assert left[path] == right[path], f"{name}/{path} differs"
