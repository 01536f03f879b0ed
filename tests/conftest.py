"""Shared fixtures: one small real local Ray for the session, and the shared data folder (skipped
cleanly when absent: users' machines do not have it)."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest

from gristmill.schemas.job import load_job

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("GRISTMILL_SHARED_DATA", REPO.parent / "shared" / "data"))


def shipped_job(name: str) -> dict:
    """A shipped job (jobs/NAME) as the run resolves it, as plain data to change and write to a job file:
    `extends:` and every default applied, paths absolute. The files state only what differs from the
    defaults, so read them through this, never with yaml.safe_load."""
    return load_job(REPO / "jobs" / name).model_dump(mode="json")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA} (set GRISTMILL_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def ray_local():
    """A real local Ray cluster: 2 CPUs, a capped object store, shut down after the session."""
    import ray

    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    ray.init(num_cpus=2, object_store_memory=256 * 1024 * 1024, include_dashboard=False,
             log_to_driver=False, logging_level="WARNING")
    yield ray
    ray.shutdown()


def stats_txt(shared_data: Path) -> dict[str, tuple[int, int]]:
    """warc-samples/STATS.txt as {relative file: (records, HTML responses)}."""
    out = {}
    for line in (shared_data / "warc-samples" / "STATS.txt").read_text().splitlines():
        parts = [p.strip() for p in line.split("|")]
        if len(parts) > 4 and parts[2].startswith("{"):
            out[parts[0]] = (sum(ast.literal_eval(parts[2]).values()), int(parts[3]))
    return out
