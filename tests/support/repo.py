"""The repository's paths, the shared data folder, and shipped jobs as the run resolves them."""

from __future__ import annotations

import ast
import os
from pathlib import Path

from gristmill.schemas.job import load_job

REPO = Path(__file__).resolve().parents[2]
TESTS = REPO / "tests"
SHARED_DATA = Path(os.environ.get("GRISTMILL_SHARED_DATA", REPO.parent / "shared" / "data"))


def shipped_job(name: str) -> dict:
    """A shipped job (jobs/NAME) as the run resolves it, as plain data to change and write to a job file:
    `extends:` and every default applied, paths absolute. The files state only what differs from the
    defaults, so read them through this, never with yaml.safe_load."""
    return load_job(REPO / "jobs" / name).model_dump(mode="json")


def stats_txt(shared_data: Path) -> dict[str, tuple[int, int]]:
    """warc-samples/STATS.txt as {relative file: (records, HTML responses)}."""
    out = {}
    for line in (shared_data / "warc-samples" / "STATS.txt").read_text().splitlines():
        parts = [p.strip() for p in line.split("|")]
        if len(parts) > 4 and parts[2].startswith("{"):
            out[parts[0]] = (sum(ast.literal_eval(parts[2]).values()), int(parts[3]))
    return out
