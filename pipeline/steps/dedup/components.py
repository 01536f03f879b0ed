"""Connected components of the candidate-duplicate graph, distributed: the alternating Large-Star /
Small-Star algorithm (Kiveris et al. 2014, "Connected Components in MapReduce and Beyond"), each half a
hash shuffle of the edges by node over Ray tasks. No task holds more than its partition of the edges; no
process ever holds a global union-find. At the fixed point every component is a star centred on its
smallest node, so `root = min node` falls out directly.

Edges are (n, 2) int64 arrays of node numbers; a task's work is vectorized numpy over its partition.
"""

from __future__ import annotations

import numpy as np

from gristmill.pipeline.steps.dedup.exchange import Exchange

MAX_ROUNDS = 64
_MIX = np.uint64(0x9E3779B97F4A7C15)


def _concat(pieces: list[np.ndarray]) -> np.ndarray:
    pieces = [p for p in pieces if len(p)]
    if not pieces:
        return np.empty((0, 2), np.int64)
    return np.unique(np.concatenate(pieces), axis=0)  # sorted by (src, dst), duplicates gone


def split(edges: np.ndarray, key: np.ndarray, partitions: int) -> list[np.ndarray]:
    """Rows of `edges` partitioned by `key % partitions`, each in a stable order."""
    if partitions == 0:
        return []
    part = key % partitions
    order = np.argsort(part, kind="stable")
    bounds = np.searchsorted(part[order], np.arange(partitions + 1))
    return [edges[order[bounds[p]:bounds[p + 1]]] for p in range(partitions)]


def both_directions(edges: np.ndarray, partitions: int) -> list[np.ndarray]:
    directed = np.concatenate([edges, edges[:, ::-1]]) if len(edges) else np.empty((0, 2), np.int64)
    return split(directed, directed[:, 0], partitions)


def _checksum(edges: np.ndarray) -> tuple[int, int]:
    with np.errstate(over="ignore"):
        mixed = (edges[:, 0].astype(np.uint64) * _MIX) ^ edges[:, 1].astype(np.uint64)
        mixed = mixed * _MIX
        return len(edges), int(np.sum(mixed, dtype=np.uint64))


def _group_min(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """For rows sorted by src: min(dst) over each row's src group, broadcast back to rows."""
    heads = np.flatnonzero(np.concatenate([[True], src[1:] != src[:-1]]))
    mins = np.minimum.reduceat(dst, heads)
    return np.repeat(mins, np.diff(np.append(heads, len(src))))


def large_star(partitions: int, pieces: list) -> tuple[dict, list]:
    """Input: directed edges (u, v) for the u of this partition (both directions of every edge exist).
    Link every neighbour v > u to m = min(Γ(u) ∪ {u})."""
    edges = _concat(pieces)
    forward = edges[edges[:, 0] < edges[:, 1]]  # each undirected edge once, globally
    stats = {"checksum": _checksum(forward), "edges": len(forward)}
    if not len(edges):
        return stats, split(edges, edges[:, 0], partitions)
    m = np.minimum(_group_min(edges[:, 0], edges[:, 1]), edges[:, 0])
    larger = edges[:, 1] > edges[:, 0]
    out = np.stack([edges[larger, 1], m[larger]], axis=1)  # (v, m), m < v
    return stats, split(out, out[:, 0], partitions)


def small_star(partitions: int, pieces: list) -> tuple[dict, list]:
    """Input: edges (u, w) with w < u, for the u of this partition. Link u and every w to m = min(w)."""
    edges = _concat(pieces)
    if not len(edges):
        return {}, both_directions(edges, partitions)
    m = _group_min(edges[:, 0], edges[:, 1])
    neighbours = np.stack([edges[:, 1], m], axis=1)
    selves = np.unique(np.stack([edges[:, 0], m], axis=1), axis=0)
    out = np.concatenate([neighbours, selves])
    out = out[out[:, 0] != out[:, 1]]
    return {}, both_directions(out, partitions)


def stars(partitions: int, pieces: list) -> tuple[dict, list]:
    """At the fixed point: (leaf, root) for every non-root node, partitioned by leaf."""
    edges = _concat(pieces)
    forward = edges[edges[:, 0] < edges[:, 1]]
    labels = np.stack([forward[:, 1], forward[:, 0]], axis=1) if len(forward) else np.empty((0, 2), np.int64)
    return {"leaves": len(labels)}, split(labels, labels[:, 0], partitions)


def connected_components(exchange: Exchange, directed_pieces: list[list], partitions: int) -> tuple[list[list], int]:
    """`directed_pieces[p]`: the pieces of directed edges (both directions) keyed by source for partition p.
    Returns ((leaf, root) pieces per partition keyed by leaf, rounds run)."""
    previous = None
    for round_number in range(1, MAX_ROUNDS + 1):
        stats, out = exchange.step(large_star, [partitions] * partitions, directed_pieces, partitions)
        count = sum(s["checksum"][0] for s in stats)
        total = sum(s["checksum"][1] for s in stats) % (1 << 64)
        if (count, total) == previous:
            break
        previous = (count, total)
        _, out = exchange.step(small_star, [partitions] * partitions, Exchange.transpose(out, partitions), partitions)
        directed_pieces = Exchange.transpose(out, partitions)
    else:
        raise RuntimeError(f"connected components did not converge in {MAX_ROUNDS} rounds")
    _, out = exchange.step(stars, [partitions] * partitions, directed_pieces, partitions)
    return Exchange.transpose(out, partitions), round_number
