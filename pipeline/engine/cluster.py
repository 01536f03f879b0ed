"""What a multi-node Ray cluster must share, checked before any work: every node sees the run folder (and a
crawl's folder) at the same path, can write there so the driver sees it, and sees the local input files.

The stage actors write their per-batch stats under RUN/.work, fetchers write the crawl's WARC files, read
tasks open local inputs, and the dedup tasks read and rewrite RUN/curated, each on whichever node Ray
picked. A node with its own disk at that path would fail those tasks hours in, or leave a crawl's pages on
a disk the driver never reads; this check turns it into a clear error at the start. On one node (a laptop's
local Ray) it costs one `ray.nodes()` call.
"""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path
from typing import Callable, Iterable

from gristmill.pipeline.engine.process import MEMORY_POOL_ENV, memory_pool_name, use_memory_pool
from gristmill.schemas.job import JobError, RayConfig

PROBE_PREFIX = ".gristmill-probe-"
ANSWER_TIMEOUT_S = 120  # a node that has not answered by then (dead, or no worker can start) is reported
MAX_INPUT_FOLDERS = 64  # local input folders sampled (one file each)


def _look(node: str, folders: list[tuple[str, str, str]], samples: list[tuple[str, int]]) -> list[str]:
    """Runs on one node: reads each folder's probe, writes an answer beside it, sizes one file per input folder."""
    problems = []
    for folder, probe, token in folders:
        try:
            seen = Path(probe).read_text()
        except OSError as error:
            problems.append(f"cannot read the run folder {folder} ({type(error).__name__}: {error.strerror or error})")
            continue
        if seen != token:
            problems.append(f"sees a different folder at {folder} (another disk mounted at the same path)")
            continue
        try:
            Path(f"{probe}-{node}").write_text(token)
        except OSError as error:
            problems.append(f"cannot write to the run folder {folder} ({type(error).__name__}: {error.strerror or error})")
    for path, size in samples:
        try:
            found = os.path.getsize(path)
        except OSError as error:
            problems.append(f"cannot read the input {path} ({type(error).__name__}: {error.strerror or error})")
            continue
        if found != size:
            problems.append(f"sees the input {path} with {found} bytes, not {size}")
    return problems


def _worker_nodes(ray) -> list[dict]:
    return sorted((n for n in ray.nodes() if n.get("Alive") and n.get("Resources", {}).get("CPU", 0) > 0),
                  key=lambda n: n["NodeID"])


def check_shared_paths(folders: Iterable[Path], inputs: Callable[[], list[str]], log=print) -> int:
    """Raise JobError unless every CPU node of the connected Ray cluster reads and writes each of `folders`
    (created if missing) and sees the local files of `inputs()` (called only on a multi-node cluster; one
    file per folder, with its size). Returns the number of nodes checked (0 on a single node)."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    nodes = _worker_nodes(ray)
    if len(nodes) <= 1:
        return 0
    token = secrets.token_hex(16)
    probes = []
    for folder in dict.fromkeys(Path(f).resolve() for f in folders):
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f"{PROBE_PREFIX}{token[:12]}"
        probe.write_text(token)
        probes.append((str(folder), str(probe), token))
    by_folder: dict[str, str] = {}
    for path in inputs():
        if "://" not in path:  # URIs are read by their client on every node alike
            by_folder.setdefault(os.path.dirname(os.path.abspath(path)), os.path.abspath(path))
    samples = [(path, os.path.getsize(path)) for _, path in sorted(by_folder.items())[:MAX_INPUT_FOLDERS]]
    look = ray.remote(_look)
    refs = {node["NodeID"]: look.options(
        num_cpus=0, max_retries=0, scheduling_strategy=NodeAffinitySchedulingStrategy(node["NodeID"], soft=False),
    ).remote(node["NodeID"], probes, samples) for node in nodes}
    address = {node["NodeID"]: node.get("NodeManagerAddress", "?") for node in nodes}
    problems: dict[str, list[str]] = {}
    try:
        _, late = ray.wait(list(refs.values()), num_returns=len(refs), timeout=ANSWER_TIMEOUT_S)
        for node, ref in refs.items():
            if ref in late:
                problems[node] = [f"did not answer within {ANSWER_TIMEOUT_S} s"]
                ray.cancel(ref, force=True)
                continue
            try:
                found = ray.get(ref)
            except ray.exceptions.RayError as error:
                found = [f"could not run the check ({type(error).__name__})"]
            if not found:  # what the node wrote must be what this process reads
                found = [f"writes to a different disk at {folder} (its file is not visible here)"
                         for folder, probe, _ in probes if not _answered(f"{probe}-{node}", token)]
            if found:
                problems[node] = found
    finally:
        for _, probe, _ in probes:
            for path in (probe, *(f"{probe}-{node}" for node in refs)):
                Path(path).unlink(missing_ok=True)
    if problems:
        lines = [f"  node {address[node]} ({node[:12]}): {'; '.join(found)}" for node, found in sorted(problems.items())]
        raise JobError("the Ray cluster's nodes do not share the paths this job needs:\n" + "\n".join(lines) +
                       "\nOn a multi-node cluster the run folder (the output, or --staging when the output is a URI),"
                       "\na crawl's folder and local input files must be on a filesystem every node mounts at the same"
                       "\npath (README: On a cluster).")
    log(f"gristmill: {len(nodes)} nodes share the run folder" + (" and the inputs" if samples else ""))
    return len(nodes)


def _answered(path: str, token: str) -> bool:
    try:
        return Path(path).read_text() == token
    except OSError:
        return False


def init_ray(ray_config: RayConfig, address: str | None = None) -> None:
    import ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    if ray.is_initialized():
        return
    # Every worker of the job (on every node) and this driver allocate Arrow memory from the same pool.
    pool = memory_pool_name()
    use_memory_pool(pool)
    quiet = {"log_to_driver": False, "logging_level": logging.WARNING,
             "runtime_env": {"env_vars": {MEMORY_POOL_ENV: pool}}}
    address = address or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, **quiet)  # the cluster decides CPUs and memory
    else:
        memory = ray_config.object_store_memory_mb * 1024 * 1024 if ray_config.object_store_memory_mb else None
        ray.init(num_cpus=ray_config.num_cpus, object_store_memory=memory, include_dashboard=False, **quiet)


def worker_count() -> int:
    import ray

    return max(1, int(ray.cluster_resources().get("CPU", 1)))


def task_cpus(workers: int | None) -> tuple[int, float]:
    """(workers, CPUs each task of a global step reserves) so that at most `workers` run at once (default:
    the cluster's CPUs): the cluster's CPUs over the workers, but never more than the largest node has, or
    Ray could never place the task (it would wait forever on a cluster of small nodes)."""
    import ray

    cpus = max(1.0, float(ray.cluster_resources().get("CPU", 1)))
    workers = max(1, min(workers or int(cpus), int(cpus)))
    largest = max((float(node.get("Resources", {}).get("CPU", 0)) for node in ray.nodes() if node.get("Alive")),
                  default=cpus)
    return workers, max(0.01, min(cpus / workers, largest or cpus))
