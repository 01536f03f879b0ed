"""deduplicate_run: the global dedup step over a run's curated/ documents (the survivors of every other
filter, as FineWeb orders it). It reads like its phases, each a step of Ray tasks (exchange.py):

  1. bands      per group of curated parts: the (band, bucket) keys of each document (LSH bands of its
                signature, plus one "exact" band keyed by its exact hash), hash-partitioned by bucket
                into a file of the run folder (BANDS_DIR); the later steps exchange through Ray's object store
  2. buckets    per partition: documents sharing a (band, bucket) are linked to the bucket's smallest node
                (star edges, at most max_edges_per_bucket per bucket; optionally only when the signatures'
                estimated Jaccard reaches the threshold)
  3. components distributed Large-Star / Small-Star until the edge set stops changing (components.py)
  4. members    per group of curated parts: id, text bytes and exact hash of every node in a component
  5. keepers    per component (partitioned by root): the kept document by config.keep, cluster size, and
                for each other member its reason: exact_duplicate when its exact hash equals the kept
                one's, near_duplicate otherwise
  6. rewrite    per group of curated parts: each curated/part-N.parquet rewritten without its duplicates
                (every row gains dup_cluster_id, dup_cluster_size); the duplicates go to
                rejected/dedup-KEY.parquet (KEY: its curated/part-KEY) with keep=False and their drop_reason

A node is a document's position in curated/ order (parts by name, rows in order), which is
deterministic, so clusters, kept documents and output bytes do not depend on the number of workers.
The steps that read parts take consecutive parts in groups of up to ROWS_PER_PART_TASK documents, so the
number of tasks and of shuffle pieces follows the documents, not the number of input files.
"""

from __future__ import annotations

import math
import os
import shutil
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from gristmill.filters import minhash
from gristmill.pipeline.steps.dedup.components import connected_components, split
from gristmill.pipeline.steps.dedup.exchange import Exchange
from gristmill.pipeline.engine.cluster import task_cpus
from gristmill.pipeline.engine.faults import fault_point
from gristmill.pipeline.steps.move_to_rejected import move_to_rejected
from gristmill.pipeline.engine.parquet_read import batches, groups_of
from gristmill.pipeline.engine.run_folder import RunFolder
from gristmill.schemas import columns as C
from gristmill.schemas import reasons as R
from gristmill.schemas.job import DedupConfig

# Band rows per bucket partition: bounds a bucket task's memory (~18 bytes a row, + 4·num_perm with verify;
# a bucket task of 1M rows peaked at 193 MB, under a bands or rewrite task's ~260 MB). Not smaller: a
# bucket task reads one record batch of every bands task's file, so smaller partitions make more reads.
BAND_ROWS_PER_PARTITION = 1_000_000
# The bands step's output, in the run folder: a file per bands task with a record batch per bucket partition,
# which bucket task p reads batch p of. Through the object store, the driver kept Ray's bookkeeping for each
# of the tasks × partitions pieces (~6 KB each): a count that grows with the square of the corpus (~26,000
# pieces at 10M documents). Files hold the same bytes and the driver holds their names; removed after the
# buckets step. (A multi-node run already needs the run folder on every node: pipeline/engine/cluster.py.)
BANDS_DIR = "dedup-bands"  # a step work folder: RunFolder.step_work(BANDS_DIR)
# Directed candidate edges per partition of the graph steps (components, members, keepers).
EDGES_PER_PARTITION = 250_000
# Documents per task of the steps that read curated parts (bands, members, rewrite): consecutive parts are
# grouped up to this many rows (a larger part is a task of its own), so a run of many small inputs makes few
# tasks and few pieces (100,000 documents in 100 parts: 10.2 s and driver 213 MB as a task per part, the
# same as 2 parts with this). A bands task of 50,000 rows is the dedup step's peak (~265 MB).
ROWS_PER_PART_TASK = 50_000
# Rows per batch when a task streams a curated part (members, rewrite): bounds its memory, not the outcome.
BATCH_ROWS = 4096


@dataclass
class DedupResult:
    documents: int = 0  # documents in curated/ before dedup
    exact_removed: int = 0
    near_removed: int = 0
    clusters: int = 0  # components with more than one document
    cluster_sizes: dict[int, int] = field(default_factory=dict)  # size → number of clusters
    bytes_saved: int = 0  # UTF-8 bytes of the removed documents' text
    # star edges out of the buckets (after verification), de-duplicated within a bucket task: a pair sharing
    # bands in several partitions counts once per partition, so this depends on the partition count (the
    # clusters do not)
    candidate_edges: int = 0
    buckets_truncated: int = 0  # buckets larger than max_edges_per_bucket + 1
    largest_bucket: int = 0
    rounds: int = 0  # Large-Star/Small-Star rounds
    partitions: int = 0  # bucket partitions (band rows / BAND_ROWS_PER_PARTITION)
    graph_partitions: int = 0  # partitions of the components, members and keepers (directed edges / EDGES_PER_PARTITION)
    part_tasks: int = 0  # tasks of the steps that read curated parts (groups of consecutive parts)
    bands: int = 0
    rows: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    # source_file → documents removed from it (for the per-source "kept" counts in stats.json)
    removed_by_source: dict[str, int] = field(default_factory=dict)

    @property
    def removed(self) -> int:
        return self.exact_removed + self.near_removed

    @property
    def dropped(self) -> Counter:
        """What the ledger adds: kept -= removed, dropped[reason] += n."""
        return +Counter({R.EXACT_DUPLICATE: self.exact_removed, R.NEAR_DUPLICATE: self.near_removed})

    def to_dict(self) -> dict:
        return {
            "documents": self.documents, "exact_removed": self.exact_removed, "near_removed": self.near_removed,
            "clusters": self.clusters, "cluster_sizes": {str(k): v for k, v in sorted(self.cluster_sizes.items())},
            "bytes_saved": self.bytes_saved, "candidate_edges": self.candidate_edges,
            "buckets_truncated": self.buckets_truncated, "largest_bucket": self.largest_bucket,
            "rounds": self.rounds, "partitions": self.partitions, "graph_partitions": self.graph_partitions,
            "part_tasks": self.part_tasks,
            "bands": self.bands, "rows": self.rows,
            "seconds": self.seconds, "removed_by_source": dict(sorted(self.removed_by_source.items())),
        }


# --- 1. bands ---------------------------------------------------------------------------------------

def _exact_keys(hashes: list[str]) -> np.ndarray:
    return np.fromiter((int(h[:16], 16) for h in hashes), np.uint64, len(hashes))


def _band_rows(extra, pieces) -> tuple[dict, list]:
    """The band rows of a group of consecutive curated parts, split by bucket partition into one Arrow
    file (a record batch per partition; see BANDS_DIR)."""
    parts, config, bands, rows, partitions, out_path = extra
    band_ids, keys, node_ids, sigs = [], [], [], []
    for path, offset, _ in parts:
        _part_band_rows(path, offset, config, bands, rows, band_ids, keys, node_ids, sigs)
    split_rows = _split_band_rows(config, partitions, band_ids, keys, node_ids, sigs)
    _write_band_file(out_path, split_rows, config)
    return {"band_rows": sum(len(piece["key"]) for piece in split_rows)}, []


def _band_schema(config) -> pa.Schema:
    fields = [pa.field("band", pa.int16()), pa.field("key", pa.uint64()), pa.field("node", pa.int64())]
    if config.verify_jaccard:
        fields.append(pa.field("sig", pa.list_(pa.uint32(), config.num_perm)))
    return pa.schema(fields)


def _write_band_file(path: str, pieces: list[dict], config) -> None:
    schema = _band_schema(config)
    with pa.OSFile(f"{path}.tmp", "wb") as sink, pa.ipc.new_file(sink, schema) as writer:
        for piece in pieces:
            arrays = [pa.array(piece["band"], pa.int16()), pa.array(piece["key"], pa.uint64()), pa.array(piece["node"], pa.int64())]
            if config.verify_jaccard:
                arrays.append(pa.FixedSizeListArray.from_arrays(pa.array(piece["sig"].ravel(), pa.uint32()), config.num_perm))
            writer.write_batch(pa.record_batch(arrays, schema=schema))
    os.replace(f"{path}.tmp", path)  # a retried task rewrites it whole


def _read_band_piece(path: str, partition: int, config) -> dict:
    """One partition's band rows of one bands task, copied out of the memory-mapped file."""
    with pa.memory_map(path) as source:
        batch = pa.ipc.open_file(source).get_record_batch(partition)
        piece = {name: batch.column(name).to_numpy().copy() for name in ("band", "key", "node")}
        piece["sig"] = (batch.column("sig").flatten().to_numpy().reshape(-1, config.num_perm).copy()
                        if config.verify_jaccard else None)
    return piece


def _part_band_rows(path, offset, config, bands, rows, band_ids, keys, node_ids, sigs) -> None:
    """Appends one part's band rows: `bands` LSH rows per document with a signature, one exact row per
    document with an exact hash."""
    table = pq.read_table(path, columns=[C.EXACT_HASH, C.MINHASH])
    nodes = offset + np.arange(table.num_rows, dtype=np.int64)
    if config.near:
        present = pc.is_valid(table[C.MINHASH]).to_numpy(zero_copy_only=False)
        if present.any():
            signature = minhash.signatures_from_bytes(table[C.MINHASH].filter(pa.array(present)), config.num_perm)
            band_ids.append(np.tile(np.arange(bands, dtype=np.int16), len(signature)))
            keys.append(minhash.band_keys(signature, bands, rows).ravel())
            node_ids.append(np.repeat(nodes[present], bands))
            if config.verify_jaccard:
                sigs.append(np.repeat(signature, bands, axis=0))
    if config.exact:
        present = pc.is_valid(table[C.EXACT_HASH]).to_numpy(zero_copy_only=False)
        if present.any():
            band_ids.append(np.full(int(present.sum()), bands, np.int16))  # the exact band
            keys.append(_exact_keys(table[C.EXACT_HASH].filter(pa.array(present)).to_pylist()))
            node_ids.append(nodes[present])
            if config.verify_jaccard:
                sigs.append(np.zeros((int(present.sum()), config.num_perm), np.uint32))


def _split_band_rows(config, partitions, band_ids, keys, node_ids, sigs) -> list[dict]:
    """The band rows, one piece per bucket partition (by key)."""
    if not keys:
        band = np.empty(0, np.int16)
        key = np.empty(0, np.uint64)
        node = np.empty(0, np.int64)
        sig = np.empty((0, config.num_perm), np.uint32) if config.verify_jaccard else None
    else:
        band, key, node = np.concatenate(band_ids), np.concatenate(keys), np.concatenate(node_ids)
        sig = np.concatenate(sigs) if config.verify_jaccard else None
    part = (key % np.uint64(partitions)).astype(np.int64)
    order = np.argsort(part, kind="stable")
    bounds = np.searchsorted(part[order], np.arange(partitions + 1))
    out = []
    for p in range(partitions):
        take = order[bounds[p]:bounds[p + 1]]
        out.append({"band": band[take], "key": key[take], "node": node[take],
                    "sig": sig[take] if sig is not None else None})
    return out


# --- 2. buckets -------------------------------------------------------------------------------------

def _bucket_edges(extra, pieces) -> tuple[dict, list]:
    config, bands, partitions, band_files, partition = extra
    pieces = [p for p in (_read_band_piece(path, partition, config) for path in band_files) if len(p["key"])]
    empty = np.empty((0, 2), np.int64)
    if not pieces:
        return {"edges": 0, "truncated": 0, "largest": 0}, split(empty, empty[:, 0], partitions)
    band = np.concatenate([p["band"] for p in pieces])
    key = np.concatenate([p["key"] for p in pieces])
    node = np.concatenate([p["node"] for p in pieces])
    order = np.lexsort((node, key, band))
    band, key, node = band[order], key[order], node[order]
    start = np.concatenate([[True], (band[1:] != band[:-1]) | (key[1:] != key[:-1])])
    heads = np.flatnonzero(start)
    sizes = np.diff(np.append(heads, len(key)))
    head_of = np.repeat(heads, sizes)
    rank = np.arange(len(key)) - head_of
    link = (rank > 0) & (rank <= config.max_edges_per_bucket)
    if config.verify_jaccard:
        sig = np.concatenate([p["sig"] for p in pieces])[order]
        candidates = np.flatnonzero(link & (band != bands))
        similar = minhash.estimated_jaccard(sig[head_of[candidates]], sig[candidates]) >= config.threshold
        link[candidates[~similar]] = False
    edges = np.stack([node[head_of[link]], node[link]], axis=1)
    edges = np.unique(edges, axis=0) if len(edges) else empty
    directed = np.concatenate([edges, edges[:, ::-1]])
    stats = {"edges": len(edges), "truncated": int(np.sum(sizes > config.max_edges_per_bucket + 1)),
             "largest": int(sizes.max())}
    return stats, split(directed, directed[:, 0], partitions)


def _resplit(graph_partitions, pieces) -> tuple[dict, list]:
    """Directed edges of some bucket tasks, split by source node into the graph's partitions."""
    edges = np.concatenate(pieces) if pieces else np.empty((0, 2), np.int64)
    return {}, split(edges, edges[:, 0], graph_partitions)


# --- 4. members -------------------------------------------------------------------------------------

def _group_of(nodes: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """The group of parts holding each node (`bounds`: each group's first node, then the node count)."""
    return np.searchsorted(bounds, nodes, side="right") - 1


def _route_labels(extra, pieces) -> tuple[dict, list]:
    """(leaf, root) → (node, root) rows for leaves and roots, partitioned by the group of parts of the node."""
    bounds, groups = extra
    labels = np.concatenate(pieces) if pieces else np.empty((0, 2), np.int64)
    roots = np.unique(labels[:, 1])
    rows = np.concatenate([labels, np.stack([roots, roots], axis=1)]) if len(labels) else labels
    group = _group_of(rows[:, 0], bounds) if len(rows) else np.empty(0, np.int64)
    order = np.argsort(group, kind="stable")
    starts = np.searchsorted(group[order], np.arange(groups + 1))
    return {}, [rows[order[starts[g]:starts[g + 1]]] for g in range(groups)]


def _members(extra, pieces) -> tuple[dict, list]:
    """Id, text bytes and exact hash of the component members in a group of curated parts, by root."""
    parts, partitions = extra
    rows = np.unique(np.concatenate(pieces), axis=0) if pieces else np.empty((0, 2), np.int64)
    empty = {"root": np.empty(0, np.int64), "node": np.empty(0, np.int64), "id": [], "bytes": np.empty(0, np.int64), "exact": []}
    if not len(rows):
        return {}, [empty] * partitions
    ids, exact, text_bytes = [], [], []
    for path, offset, count in parts:  # rows are unique'd by (node, root): sorted by node, so by part
        start, stop = np.searchsorted(rows[:, 0], [offset, offset + count])
        if start == stop:
            continue
        local = rows[start:stop, 0] - offset
        first = 0
        for batch in batches(path, BATCH_ROWS, [C.ID, C.TEXT, C.EXACT_HASH]):
            lo, hi = np.searchsorted(local, [first, first + batch.num_rows])
            take = pa.array(local[lo:hi] - first)
            ids += batch.column(C.ID).take(take).to_pylist()
            exact += batch.column(C.EXACT_HASH).take(take).to_pylist()
            text_bytes.append(pc.fill_null(pc.binary_length(batch.column(C.TEXT).take(take)), 0).to_numpy(zero_copy_only=False))
            first += batch.num_rows
    text_bytes = np.concatenate(text_bytes).astype(np.int64) if text_bytes else np.empty(0, np.int64)
    part = rows[:, 1] % partitions
    out = []
    for p in range(partitions):
        take = np.flatnonzero(part == p)
        out.append({"root": rows[take, 1], "node": rows[take, 0], "id": [ids[i] for i in take],
                    "bytes": text_bytes[take], "exact": [exact[i] for i in take]})
    return {}, out


# --- 5. keepers -------------------------------------------------------------------------------------

def _keepers(extra, pieces) -> tuple[dict, list]:
    keep_rule, bounds, groups = extra
    root = np.concatenate([p["root"] for p in pieces])
    node = np.concatenate([p["node"] for p in pieces])
    ids = [i for p in pieces for i in p["id"]]
    text_bytes = np.concatenate([p["bytes"] for p in pieces])
    exact = [e for p in pieces for e in p["exact"]]
    sizes: Counter = Counter()
    counts: Counter = Counter()
    decided = []  # (node, cluster id, cluster size, reason or None)
    order = np.lexsort((node, root))
    start = 0
    while start < len(order):
        stop = start
        while stop < len(order) and root[order[stop]] == root[order[start]]:
            stop += 1
        members = order[start:stop]  # by node
        if keep_rule == "first":
            keeper = members[0]
        elif keep_rule == "smallest_id":
            keeper = min(members, key=lambda i: (ids[i] is None, ids[i] or "", node[i]))
        else:  # longest
            keeper = min(members, key=lambda i: (-text_bytes[i], node[i]))
        sizes[len(members)] += 1
        for i in members:
            if i == keeper:
                reason = None
            elif exact[i] is not None and exact[i] == exact[keeper]:
                reason = R.EXACT_DUPLICATE
            else:
                reason = R.NEAR_DUPLICATE
            if reason:
                counts[reason] += 1
                counts["bytes_saved"] += int(text_bytes[i])
            decided.append((int(node[i]), ids[keeper], len(members), reason))
        start = stop
    decided.sort()
    nodes = np.array([d[0] for d in decided], np.int64)
    starts = np.searchsorted(nodes, bounds)  # decided is sorted by node, so by group
    return {"sizes": sizes, "counts": counts}, [decided[starts[g]:starts[g + 1]] for g in range(groups)]


# --- 6. rewrite -------------------------------------------------------------------------------------

def _rewrite(extra, pieces) -> tuple[dict, list]:
    """Rewrite each curated part of a group, one after the other."""
    decided = sorted(d for piece in pieces for d in piece)
    nodes = np.array([d[0] for d in decided], np.int64)
    kept = removed = 0
    by_source: Counter = Counter()
    for path, offset, count, rejected_path in extra:
        start, stop = np.searchsorted(nodes, [offset, offset + count])
        moved = move_to_rejected(path, rejected_path, _cluster_columns(decided[start:stop], nodes[start:stop] - offset),
                                 adds=(C.DUP_CLUSTER_ID, C.DUP_CLUSTER_SIZE), batch_rows=BATCH_ROWS)
        kept, removed = kept + moved.kept, removed + moved.removed
        by_source.update(moved.by_source)
    return {"kept": kept, "removed": removed, "by_source": by_source}, []


def _cluster_columns(decided: list, nodes: np.ndarray):
    """The decision for one part (`nodes`: the decided rows' positions in it): every row gets its cluster's
    kept id and size (1 and null outside a cluster), and a duplicate its reason."""

    def decide(table: pa.Table, first: int) -> tuple[pa.Table, list]:
        lo, hi = np.searchsorted(nodes, [first, first + table.num_rows])
        cluster_id: list = [None] * table.num_rows
        cluster_size = np.ones(table.num_rows, np.int64)
        reason: list = [None] * table.num_rows
        for node, (_, keeper_id, size, why) in zip(nodes[lo:hi], decided[lo:hi]):
            row = node - first
            cluster_id[row], cluster_size[row], reason[row] = keeper_id, size, why
        for name, values in ((C.DUP_CLUSTER_ID, pa.array(cluster_id, C.TYPES[C.DUP_CLUSTER_ID])),
                             (C.DUP_CLUSTER_SIZE, pa.array(cluster_size, C.TYPES[C.DUP_CLUSTER_SIZE]))):
            index = table.schema.get_field_index(name)
            table = table.set_column(index, name, values) if index >= 0 else table.append_column(pa.field(name, values.type), values)
        return table, reason

    return decide


# --- the step ---------------------------------------------------------------------------------------

def deduplicate_run(run_dir: RunFolder | Path, config: DedupConfig, log=print, workers: int | None = None,
                    on_phase=None) -> DedupResult:
    """Remove exact and near duplicates from `run_dir/curated/` (see the module docstring); Ray must be
    initialized. `workers` caps the tasks running at once (default: the cluster's CPUs); the outcome is
    the same for any value. `on_phase(name)` is called as each phase ends."""
    folder = RunFolder.of(run_dir)
    result = DedupResult()
    result.bands, result.rows = config.band_rows()
    files = folder.parts()
    counts = [pq.ParquetFile(f).metadata.num_rows for f in files]
    result.documents = sum(counts)
    if not result.documents or not (config.exact or config.near):
        return result
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    workers, cpus_per_task = task_cpus(workers)
    exchange = Exchange(cpus_per_task=cpus_per_task)
    band_rows = result.documents * ((result.bands if config.near else 0) + (1 if config.exact else 0))
    partitions = result.partitions = max(workers, math.ceil(band_rows / BAND_ROWS_PER_PARTITION))
    clock = time.perf_counter()

    def phase(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        result.seconds[name] = round(now - clock, 3)
        clock = now
        if on_phase is not None:
            on_phase(name)  # e.g. bench/dedup_scale.py's per-phase memory peaks
        fault_point(f"dedup:{name}")  # test-only fault injection (pipeline/engine/faults.py)

    # Consecutive parts grouped into tasks of up to ROWS_PER_PART_TASK documents (fewer when that would
    # leave workers idle); `bounds` are the groups' first nodes, as `offsets` are the parts'.
    part_groups = groups_of(counts, min(ROWS_PER_PART_TASK, math.ceil(result.documents / workers)))
    groups = [[(str(files[i]), int(offsets[i]), counts[i]) for i in group] for group in part_groups]
    bounds = offsets[[group[0] for group in part_groups] + [len(files)]]
    result.part_tasks = len(groups)
    work_existed = folder.work.exists()
    bands_dir = folder.step_work(BANDS_DIR)
    shutil.rmtree(bands_dir, ignore_errors=True)  # an interrupted earlier attempt's
    bands_dir.mkdir(parents=True)
    band_files = [str(bands_dir / f"group-{g:05d}.arrow") for g in range(len(groups))]
    exchange.step(_band_rows, [(group, config, result.bands, result.rows, partitions, path)
                               for group, path in zip(groups, band_files)], None, 0)
    phase("bands")
    stats, out = exchange.step(_bucket_edges, [(config, result.bands, 1, band_files, p) for p in range(partitions)], None, 1)
    shutil.rmtree(bands_dir)
    if not work_existed:
        shutil.rmtree(folder.work)
    result.candidate_edges = sum(s["edges"] for s in stats)
    result.buckets_truncated = sum(s["truncated"] for s in stats)
    result.largest_bucket = max(s["largest"] for s in stats)
    # The graph is far smaller than the band rows (an edge per duplicate, not 12 rows per document): its
    # steps get their own partition count. Each bucket task returns its edges whole; consecutive ones are
    # grouped up to EDGES_PER_PARTITION edges and each group split by node into the graph's partitions.
    # So no step makes partitions² slivers: the driver keeps Ray's bookkeeping for every piece (and
    # before shuffle.INLINE_BYTES, Ray inlined such slivers into it: at 1M documents they held every edge).
    graph = result.graph_partitions = max(workers, math.ceil(2 * result.candidate_edges / EDGES_PER_PARTITION))
    edge_groups = groups_of([2 * s["edges"] for s in stats], EDGES_PER_PARTITION)
    _, out = exchange.step(_resplit, [graph] * len(edge_groups), [[out[t][0] for t in group] for group in edge_groups], graph)
    edges = Exchange.transpose(out, graph)
    phase("buckets")
    labels, result.rounds = connected_components(exchange, edges, graph)
    phase("components")
    _, out = exchange.step(_route_labels, [(bounds, len(groups))] * graph, labels, len(groups))
    _, out = exchange.step(_members, [(group, graph) for group in groups], Exchange.transpose(out, len(groups)), graph)
    phase("members")
    stats, out = exchange.step(_keepers, [(config.keep, bounds, len(groups))] * graph,
                               Exchange.transpose(out, graph), len(groups))
    sizes, removed = Counter(), Counter()
    for s in stats:
        sizes.update(s["sizes"])
        removed.update(s["counts"])
    result.cluster_sizes = dict(sorted(sizes.items()))
    result.clusters = sum(sizes.values())
    result.exact_removed = removed[R.EXACT_DUPLICATE]
    result.near_removed = removed[R.NEAR_DUPLICATE]
    result.bytes_saved = removed["bytes_saved"]
    phase("keepers")
    folder.rejected.mkdir(parents=True, exist_ok=True)
    rewrite_extras = [[(*part, str(folder.rejected_by("dedup", files[i])))
                       for i, part in zip(indices, group)]
                      for indices, group in zip(part_groups, groups)]  # rejected/dedup-KEY.parquet for curated/part-KEY
    stats, _ = exchange.step(_rewrite, rewrite_extras, Exchange.transpose(out, len(groups)), 0)
    by_source: Counter = sum((s["by_source"] for s in stats), Counter())
    result.removed_by_source = dict(sorted(by_source.items()))
    if sum(s["removed"] for s in stats) != result.removed:
        raise RuntimeError("dedup rewrite removed a different number of documents than the keepers decided")
    phase("rewrite")
    log(f"gristmill: dedup removed {result.exact_removed} exact and {result.near_removed} near duplicates "
        f"of {result.documents} documents ({result.clusters} clusters, {result.rounds} component rounds)")
    return result
