"""Multi-node: a real 2-node Ray cluster on this machine (`ray start --head` and a second `ray start
--address=…`, one CPU and its own custom resource each), the demo archive job run through it by a
`gristmill run` subprocess with RAY_ADDRESS set; the per-batch stages must have run on both nodes
(stats.json["run"]["rows_by_node"]) and the outputs must equal a local run's byte for byte.

The nodes are `ray start --block` processes, stopped by signalling them, their descendants and the
processes naming this cluster's own temp folder (workers start sessions of their own), each by its pid:
`ray stop` would stop every Ray on the machine, the test session's and other people's included. A random token authenticates the cluster (Ray's token
mode), passed to its processes through the environment; nothing is written under ~/.ray."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from gristmill.pipeline.engine.api import run
from gristmill.schemas.job import load_job

from support.reliability import DEMO, assert_same_outputs, gristmill_run, small_job, split_warc

START_TIMEOUT_S = 120  # both nodes registered and alive
RUN_TIMEOUT_S = 480


def _ray_cli() -> list[str]:
    """The `ray` command of this Python environment: its console script, else the same entry point run
    as a module (an editable venv layered over another may lack the script). Ray is a dependency of
    gristmill, so a missing CLI fails these tests rather than skipping them."""
    script = Path(sys.executable).parent / "ray"
    return [str(script)] if script.exists() else [sys.executable, "-m", "ray.scripts.scripts"]


RAY_CLI = _ray_cli()


def _free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _processes() -> dict[int, tuple[int, str, str]]:
    """pid → (parent pid, state, command line) of this machine's processes, from /proc."""
    found = {}
    for entry in Path("/proc").iterdir() if Path("/proc").is_dir() else []:
        if entry.name.isdigit():
            try:
                state, parent = (entry / "stat").read_text().rsplit(")", 1)[1].split()[:2]
                found[int(entry.name)] = (int(parent), state, (entry / "cmdline").read_bytes().decode("utf-8", "replace"))
            except (OSError, ValueError):
                continue
    return found


def _private_mount_works(folder: Path) -> bool:
    """Whether this process may start a command in a mount namespace of its own with a tmpfs over `folder`
    (root, or a user namespace); the command then sees an empty folder there and the rest of the machine."""
    folder.mkdir(parents=True, exist_ok=True)
    try:
        return subprocess.run([*HIDE_COMMAND, str(folder), "true"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


# `HIDE_COMMAND FOLDER COMMAND...`: COMMAND runs with an empty tmpfs over FOLDER, as on a node with its own disk.
HIDE_COMMAND = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                'mount -t tmpfs gristmill-node-disk "$0" && exec "$@"']


class Cluster:
    """Two Ray nodes on this machine: `address` for RAY_ADDRESS, `env` for every process that joins.
    `hide`: the second node sees an empty disk of its own at that folder (a node without the shared mount)."""

    def __init__(self, folder: Path, hide: Path | None = None):
        self.hide = hide
        self.temp = Path(tempfile.mkdtemp(prefix="gm-ray-", dir="/tmp"))  # short: socket paths are length-limited
        self.log = open(folder / "ray-nodes.log", "w")
        self.nodes: list[subprocess.Popen] = []
        from ray.util import get_node_ip_address

        self.ip = get_node_ip_address()  # Ray registers the GCS under this address even for 127.0.0.1
        self.port, *self._ports = _free_ports(1 + 2 * (5 + 24))
        self.address = f"{self.ip}:{self.port}"
        self.env = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}

    def _start(self, args: list[str], ports: list[int], hide: Path | None = None) -> None:
        names = ["--node-manager-port", "--object-manager-port", "--metrics-export-port",
                 "--dashboard-agent-listen-port", "--dashboard-agent-grpc-port"]
        command = [*RAY_CLI, "start", "--block", "--disable-usage-stats", "--num-cpus=1", f"--node-ip-address={self.ip}",
                   "--object-store-memory=200000000", *args, *(f"{n}={p}" for n, p in zip(names, ports)),
                   "--worker-port-list=" + ",".join(map(str, ports[5:]))]
        if hide is not None:
            command = [*HIDE_COMMAND, str(hide), *command]
        self.nodes.append(subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
                                           env={**os.environ, **self.env}))

    def launch(self) -> None:
        """Start both nodes' processes without waiting for them (the second retries until the head is up)."""
        self._start(["--head", f"--port={self.port}", "--include-dashboard=false", f"--temp-dir={self.temp}",
                     '--resources={"node_head": 1}'], self._ports[:29])
        self._start([f"--address={self.address}", '--resources={"node_b": 1}'], self._ports[29:], self.hide)

    def wait_ready(self) -> dict[str, dict]:
        """The two live nodes (`alive_nodes`), once both have registered."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            alive = self.alive_nodes()
            if len(alive) == 2:
                return alive
            dead = [n.args for n in self.nodes if n.poll() is not None]
            if dead or time.monotonic() > deadline:
                self.log.flush()
                raise RuntimeError(f"the 2-node cluster did not come up (alive: {alive}, exited: {len(dead)}):\n"
                                   + Path(self.log.name).read_text()[-3000:])
            time.sleep(2)

    def alive_nodes(self) -> dict[str, dict]:
        """Node id → custom resources of the live nodes, asked of the cluster by a separate driver."""
        probe = ("import json, ray; ray.init(address=%r, logging_level='ERROR', log_to_driver=False);"
                 "print(json.dumps({n['NodeID']: n['Resources'] for n in ray.nodes() if n['Alive']}))" % self.address)
        try:
            result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60,
                                    env={**os.environ, **self.env})
        except subprocess.TimeoutExpired:
            return {}
        lines = result.stdout.strip().splitlines()
        return json.loads(lines[-1]) if result.returncode == 0 and lines else {}

    def pids(self) -> set[int]:
        """The live (not zombie) processes of this cluster: the nodes' `ray start` processes and their
        descendants, and the processes naming this cluster's temp folder (workers start sessions of
        their own); remembered, so processes orphaned by a node's death are still found."""
        procs = self._seen_procs = getattr(self, "_seen_procs", set())
        table = _processes()
        procs.update(n.pid for n in self.nodes)
        procs.update(pid for pid, (_, _, command) in table.items() if str(self.temp) in command)
        grown = True
        while grown:
            children = {pid for pid, (parent, _, _) in table.items() if parent in procs} - procs
            procs.update(children)
            grown = bool(children)
        return {pid for pid in procs if pid in table and table[pid][1] != "Z" and pid != os.getpid()}

    def stop(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in self.pids():
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + (3 if sig == signal.SIGTERM else 20)
            while time.monotonic() < deadline and self.pids():
                time.sleep(0.5)
        for node in self.nodes:
            try:
                node.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        self.log.close()
        shutil.rmtree(self.temp, ignore_errors=True)


@contextmanager
def two_node_cluster(folder: Path, hide: Path | None = None):
    """A launched cluster (call `wait_ready` before using it), always stopped on exit."""
    cluster = Cluster(folder, hide)
    try:
        cluster.launch()
        yield cluster
    finally:
        cluster.stop()
    assert not cluster.pids(), "Ray processes of the test cluster outlived it"


def test_two_node_cluster_runs_on_both_nodes_and_matches_the_local_run(ray_local, tmp_path):
    inputs = split_warc(DEMO, tmp_path / "in", 6)  # several inputs: one actor task per input file
    job = small_job(tmp_path, inputs, num_cpus=1)  # a local Ray of its own would say 1 worker CPU
    started = time.monotonic()
    with two_node_cluster(tmp_path) as cluster:
        # the local run on the test session's Ray while the cluster's nodes start
        local = run(load_job(job), output=tmp_path / "local", log=lambda m: None)
        nodes = cluster.wait_ready()
        custom = sorted(r for resources in nodes.values() for r in resources if r.startswith("node_"))
        assert custom == ["node_b", "node_head"]  # each node with its own resources
        result = gristmill_run(job, tmp_path / "cluster", env={"RAY_ADDRESS": cluster.address, **cluster.env},
                               timeout=RUN_TIMEOUT_S)  # a driver connected to the cluster, not to the session's Ray
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        assert "2 worker CPU(s)" in result.stdout  # the cluster's CPUs, not the job's num_cpus
        assert "2 nodes share the run folder and the inputs" in result.stdout  # pipeline/engine/cluster.py's check
    seconds = time.monotonic() - started

    stats = json.loads((tmp_path / "cluster" / "stats.json").read_text())
    rows_by_node = stats["run"]["rows_by_node"]
    print(f"\n2-node cluster {sorted(nodes)}: rows per node {rows_by_node}; input files read per node "
          f"{stats['run']['nodes']}; {seconds:.1f} s (local run, cluster start, cluster run, stop)")
    assert set(rows_by_node) == set(nodes)  # both nodes ran the per-batch stages …
    assert all(rows > 0 for rows in rows_by_node.values())
    assert sum(rows_by_node.values()) == stats["ledger"]["input"] == 276  # … and every record ran exactly once
    parts_by_node = stats["run"]["parts_by_node"]  # from each split's completion record: who wrote its parts
    assert set(parts_by_node) == set(nodes) and all(parts > 0 for parts in parts_by_node.values())
    assert stats["run"]["driver_received_bytes"] < 60_000  # six completion records, never a row
    local_stats = json.loads((tmp_path / "local" / "stats.json").read_text())
    assert len(local_stats["run"]["rows_by_node"]) == 1 and set(local_stats["run"]["rows_by_node"]) != set(nodes)
    assert_same_outputs(tmp_path / "cluster", local.output)
    assert stats["ledger"] == local_stats["ledger"] == local.ledger.to_dict()


def test_a_node_without_the_run_folder_or_the_inputs_stops_the_run_before_any_work(tmp_path):
    """The second node runs in a mount namespace of its own with an empty tmpfs over `node-disk/`: a node
    whose disk is not the shared one. A run whose output, or whose inputs, are in that folder must fail at
    the start (pipeline/engine/cluster.py) naming the node and the path, with no record processed.
    (The first test shows the check passing on a cluster whose nodes share the folders.)"""
    hidden = tmp_path / "node-disk"
    if not _private_mount_works(hidden):
        pytest.skip("`unshare --mount` cannot mount a tmpfs in a private mount namespace here (needs util-linux's "
                    "unshare and root or user namespaces)")
    shared_inputs = split_warc(DEMO, tmp_path / "in", 2)
    hidden_inputs = split_warc(DEMO, hidden / "in", 2)
    with two_node_cluster(tmp_path, hide=hidden) as cluster:
        nodes = cluster.wait_ready()
        env = {"RAY_ADDRESS": cluster.address, **cluster.env}
        cases = [(shared_inputs, hidden / "run", f"cannot read the run folder {hidden / 'run'}"),
                 (hidden_inputs, tmp_path / "run", f"cannot read the input {hidden_inputs[0]}")]
        for inputs, output, problem in cases:
            result = gristmill_run(small_job(tmp_path, inputs, num_cpus=1), output, env=env, timeout=RUN_TIMEOUT_S)
            assert result.returncode != 0, result.stdout[-2000:]
            printed = result.stdout + result.stderr
            error = printed.replace("\n", "")  # the CLI wraps lines at 160 columns
            assert "nodes do not share the paths" in error and problem in error, printed[-3000:]
            print("\n" + printed[printed.index("error:"):].strip())
            assert sum(node[:12] in error for node in nodes) == 1  # the one node, by its id
            assert not list(output.rglob("*.parquet")) and not list(output.glob(".gristmill-probe-*"))
