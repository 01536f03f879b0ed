"""Shared fixtures: one small real local Ray for the session, and the shared data folder (skipped
cleanly when absent: users' machines do not have it)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from support.repo import SHARED_DATA


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA} (set GRISTMILL_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def ray_local():
    """A real local Ray cluster: 2 CPUs, a capped object store, shut down after the session. Started as a
    run starts its own (`init_ray`), so its workers are set up as a run's are."""
    import ray

    from gristmill.pipeline.engine.cluster import init_ray
    from gristmill.schemas.job import RayConfig

    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    init_ray(RayConfig(num_cpus=2, object_store_memory_mb=256))
    yield ray
    ray.shutdown()
