"""Takedown: remove newly listed documents from a finished run, provably.

    gristmill takedown RUN --list FILE [--near-copies]

The list has the opt-out format (pipeline/lists/optout.py: domain, prefix, url, sha256, id entries). Phases:
  1. match     curated/ rows whose URL, id or text SHA-256 is listed (the `text_sha256` column when the
               run has it, else the hash of the curated text); with --near-copies also every curated row
               of the same dedup cluster (`dup_cluster_id`) as a listed document, whether that document
               is in curated/ or was dropped into rejected/ as a duplicate of the one kept
  2. audit     RUN/takedown/<UTC timestamp>.jsonl: a header line (list, its sha256, options, counts),
               then one line per removed document with its id and provenance (url, source file, offset,
               WARC ids, text sha256, cluster, the entry it matched, the shard it left); never its text
  3. curated   only the parts holding a removed document are rewritten, without those rows; the rows go
               to rejected/takedown-<timestamp>-KEY.parquet (KEY: its curated/part-KEY; the rewrite the global
               steps share, move_to_rejected.py) with keep=false, drop_reason `taken_down` and their
               text and signature cleared, so every record of the run still ends in one place.
               Rows the list names that were already in rejected/ (a dropped duplicate, a page that
               failed a filter; with --near-copies also the dropped members of an affected cluster) keep
               their drop reason but lose their text and signature too (audit lines of type `scrubbed`)
  4. shards    only the shards (train or val) holding a removed document are rewritten: their tokens
               without that document's token range, their index and `.docs.parquet` without its row; a
               shard left empty is deleted. Untouched shards keep their bytes. The manifest gets the new
               checksums and counts
  5. ledger    stats.json: kept - n, dropped.taken_down + n (the sum still holds), per-source kept (the
               ledger update of the global steps, steps.apply_removals), token totals, and a `takedowns`
               entry naming the audit file

The audit file is written as `.partial` first and renamed last, so a takedown that died midway is visible.
The tokenizer is not retrained (that would change every shard): its vocabulary was learned on a corpus that
still held the removed text.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from gristmill.pipeline.steps.move_to_rejected import move_to_rejected
from gristmill.pipeline.lists.optout import OptOutList, read_optout_file, text_sha256
from gristmill.pipeline.engine.parquet_read import batches
from gristmill.pipeline.stages.base import set_column
from gristmill.schemas import columns as C
from gristmill.schemas import reasons as R
from gristmill.pipeline.engine.run_folder import RunFolder
from gristmill.pipeline.steps.protocol import StepResult, apply_removals
from gristmill.pipeline.steps.tokenize import DOC_TOKENS
from gristmill.schemas.shards import MANIFEST_NAME, Manifest, ShardWriter, read_shard, sha256_file
from gristmill.schemas.stats import Ledger, funnel

STEP = "takedown"  # what it moves goes to rejected/takedown-STAMP-KEY.parquet
_BATCH_ROWS = 4096


class TakedownError(ValueError):
    """A run folder or list a takedown cannot work on; the message says what is missing."""


@dataclass
class TakedownResult:
    audit_file: Path
    removed: int = 0
    matched: int = 0  # removed because listed
    near_copies: int = 0  # removed because they share a dedup cluster with a listed document
    curated_parts_rewritten: list[str] = field(default_factory=list)
    shards_rewritten: list[str] = field(default_factory=list)
    shards_deleted: list[str] = field(default_factory=list)
    tokens_removed: int = 0
    rejected_scrubbed: int = 0  # rows already in rejected/ that the list names (or near copies): text cleared


def _parts(folder: Path, pattern: str = "*.parquet") -> list[Path]:
    return sorted(folder.glob(pattern)) if folder.exists() else []


def _columns_of(path: Path) -> list[str]:
    return pq.ParquetFile(path).schema_arrow.names


def _scan_matches(paths: list[Path], optout: OptOutList):
    """(id, entry, dup_cluster_id, part) for every row of `paths` the list names."""
    for path in paths:
        names = _columns_of(path)
        has_hash = C.TEXT_SHA256 in names
        wanted = [C.ID, C.URL] + [c for c in (C.TEXT_SHA256, C.DUP_CLUSTER_ID) if c in names]
        if optout.sha256 and C.TEXT in names:
            wanted.append(C.TEXT)
        for batch in batches(path, _BATCH_ROWS, wanted):
            rows = batch.to_pydict()
            for i, doc_id in enumerate(rows[C.ID]):
                entry = optout.match_id(doc_id) or optout.match_url(rows[C.URL][i])
                if entry is None and optout.sha256:
                    entry = optout.match_text_hash(rows[C.TEXT_SHA256][i] if has_hash else None)
                    if entry is None and C.TEXT in rows:
                        entry = optout.match_text_hash(text_sha256(rows[C.TEXT][i]))
                cluster = rows[C.DUP_CLUSTER_ID][i] if C.DUP_CLUSTER_ID in rows else None
                if entry is not None:
                    yield doc_id, entry, cluster, path


def takedown(run_dir: str | os.PathLike, list_paths: list[str] | str, near_copies: bool = False,
             log=print, now: dt.datetime | None = None) -> TakedownResult:
    """Remove the listed documents from `run_dir` (see the module docstring); returns what was done."""
    folder = RunFolder.of(run_dir)
    run = folder.root
    curated_dir, rejected_dir, shards_dir = folder.curated, folder.rejected, folder.shards
    if not folder.stats.exists() or not curated_dir.exists():
        raise TakedownError(f"{run}: not a finished gristmill run (needs {folder.stats.name} and {curated_dir.name}/)")
    list_paths = [list_paths] if isinstance(list_paths, (str, os.PathLike)) else list(list_paths)
    optout = OptOutList()
    for path in list_paths:
        optout.extend(read_optout_file(str(path)))
    stamp = (now or dt.datetime.now(dt.timezone.utc)).strftime("%Y%m%dT%H%M%S%fZ")
    curated_parts = _parts(curated_dir, "part-*.parquet")

    # 1. match
    removed: dict[str, str] = {}  # id -> why (the entry, or near_copy_of:<cluster>)
    clusters: set[str] = set()
    for doc_id, entry, cluster, _ in _scan_matches(curated_parts, optout):
        removed.setdefault(doc_id, entry)
        if cluster:
            clusters.add(cluster)
    matched = len(removed)
    # rows already in rejected/ that the list names keep their reason but lose their text (scrubbed)
    scrub: dict[str, str] = {}
    for doc_id, entry, cluster, _ in _scan_matches(_parts(rejected_dir), optout):
        scrub.setdefault(doc_id, entry)
        if near_copies and cluster:
            clusters.add(cluster)
    if near_copies:
        for path in _parts(rejected_dir):
            if C.DUP_CLUSTER_ID in _columns_of(path):
                table = pq.read_table(path, columns=[C.ID, C.DUP_CLUSTER_ID])
                for doc_id, cluster in zip(table[C.ID].to_pylist(), table[C.DUP_CLUSTER_ID].to_pylist()):
                    if cluster in clusters:
                        scrub.setdefault(doc_id, f"near_copy_of:{cluster}")
        if clusters:
            for path in curated_parts:
                if C.DUP_CLUSTER_ID not in _columns_of(path):
                    continue
                table = pq.read_table(path, columns=[C.ID, C.DUP_CLUSTER_ID])
                for doc_id, cluster in zip(table[C.ID].to_pylist(), table[C.DUP_CLUSTER_ID].to_pylist()):
                    if cluster in clusters and doc_id not in removed:
                        removed[doc_id] = f"near_copy_of:{cluster}"
    result = TakedownResult(folder.takedowns / f"{stamp}.jsonl", removed=len(removed), matched=matched,
                            near_copies=len(removed) - matched)
    log(f"takedown: {matched} listed document(s) in curated/, {result.near_copies} near copies")

    # 2. the audit, before any file of the run changes (.partial until everything is done)
    removed_ids = pa.array(sorted(removed), pa.string())
    audit_rows: list[dict] = []
    affected_parts: list[Path] = []
    for path in curated_parts if removed else []:
        names = _columns_of(path)
        wanted = [c for c in (*C.PROVENANCE_COLUMNS, C.TEXT_SHA256, C.DUP_CLUSTER_ID, C.TEXT) if c in names]
        table = pq.read_table(path, columns=wanted)
        gone = table.filter(pc.is_in(table[C.ID], value_set=removed_ids))
        if gone.num_rows:
            affected_parts.append(path)
        for row in gone.to_pylist():
            text = row.pop(C.TEXT, None)
            row[C.TEXT_SHA256] = row.get(C.TEXT_SHA256) or text_sha256(text)
            row["matched"] = removed[row[C.ID]]
            row["curated_part"] = path.name
            audit_rows.append(row)
    scrub_ids = pa.array(sorted(scrub), pa.string())
    scrubbed_rows: list[dict] = []
    scrub_parts: list[Path] = []
    for path in _parts(rejected_dir) if scrub else []:
        names = _columns_of(path)
        wanted = [c for c in (*C.PROVENANCE_COLUMNS, C.TEXT_SHA256, C.DUP_CLUSTER_ID, C.DROP_REASON, C.TEXT) if c in names]
        table = pq.read_table(path, columns=wanted)
        hit = pc.and_(pc.is_in(table[C.ID], value_set=scrub_ids), pc.is_valid(table[C.TEXT]))
        if not pc.any(hit).as_py():
            continue
        scrub_parts.append(path)
        for row in table.filter(hit).to_pylist():
            text = row.pop(C.TEXT)
            row[C.TEXT_SHA256] = row.get(C.TEXT_SHA256) or text_sha256(text)
            row["matched"] = scrub[row[C.ID]]
            row["rejected_part"] = path.name
            scrubbed_rows.append(row)
    result.rejected_scrubbed = len(scrubbed_rows)
    shard_plan: list[tuple] = []  # (entry, docs table, drop mask) of every shard holding a removed document
    shard_of: dict[str, str] = {}
    manifest = Manifest.read(shards_dir) if (shards_dir / MANIFEST_NAME).exists() else None
    for entry in manifest.shards if manifest is not None and removed else []:
        if not entry.docs_file:
            continue
        docs = pq.read_table(shards_dir / entry.docs_file)
        drop = np.asarray(pc.is_in(docs[C.ID], value_set=removed_ids), dtype=bool)
        if drop.any():
            shard_plan.append((entry, docs, drop))
            for doc_id in docs[C.ID].filter(pa.array(drop)).to_pylist():
                shard_of[doc_id] = entry.file
            result.tokens_removed += int(np.asarray(docs[DOC_TOKENS])[drop].sum())
            (result.shards_deleted if drop.all() else result.shards_rewritten).append(entry.file)
    result.curated_parts_rewritten = [p.name for p in affected_parts]
    audit_dir = folder.takedowns
    audit_dir.mkdir(exist_ok=True)
    partial = result.audit_file.with_name(result.audit_file.name + ".partial")
    list_digests = {str(p): hashlib.sha256(Path(p).read_bytes()).hexdigest() if Path(p).exists() else None
                    for p in list_paths}
    header = {"type": "takedown", "time": stamp, "lists": list_digests, "near_copies": near_copies,
              "entries": optout.counts(), "removed": result.removed, "matched": result.matched,
              "near_copies_removed": result.near_copies, "curated_parts_rewritten": result.curated_parts_rewritten,
              "shards_rewritten": result.shards_rewritten, "shards_deleted": result.shards_deleted,
              "tokens_removed": result.tokens_removed, "rejected_scrubbed": result.rejected_scrubbed}
    with open(partial, "w") as handle:
        handle.write(json.dumps(header, sort_keys=True) + "\n")
        for row in sorted(audit_rows, key=lambda r: r[C.ID]):
            row["shard"] = shard_of.get(row[C.ID])
            handle.write(json.dumps({"type": "document", **row}, sort_keys=True) + "\n")
        for row in sorted(scrubbed_rows, key=lambda r: r[C.ID]):
            handle.write(json.dumps({"type": "scrubbed", **row}, sort_keys=True) + "\n")

    # 3. curated: affected parts rewritten; the rows go to rejected/ without their text and signature
    def listed(table: pa.Table, first: int) -> tuple[pa.Table, list]:
        return table, [R.TAKEN_DOWN if doc_id in removed else None for doc_id in table[C.ID].to_pylist()]

    moved: Counter = Counter()
    moved_by_source: Counter = Counter()
    for path in affected_parts:  # rejected/takedown-STAMP-KEY.parquet for curated/part-KEY.parquet
        rows = move_to_rejected(path, folder.rejected_by(f"{STEP}-{stamp}", path), listed,
                                clears=(C.TEXT, C.MINHASH))
        moved.update(rows.by_reason)
        moved_by_source.update(rows.by_source)

    for path in scrub_parts:  # already dropped: the row stays (the ledger is unchanged), its text goes
        table = pq.read_table(path)
        hit = pc.and_(pc.is_in(table[C.ID], value_set=scrub_ids), pc.is_valid(table[C.TEXT]))
        table = set_column(table, C.TEXT, pc.if_else(hit, pa.scalar(None, C.TYPES[C.TEXT]), table[C.TEXT]))
        if C.MINHASH in table.column_names:
            table = set_column(table, C.MINHASH, pc.if_else(hit, pa.scalar(None, C.TYPES[C.MINHASH]), table[C.MINHASH]))
        _write_parquet(table, path)

    # 4. shards: only the affected ones; then the manifest
    if shard_plan:
        new_entries = {}
        for entry, docs, drop in shard_plan:
            if drop.all():
                (shards_dir / entry.file).unlink()
                (shards_dir / entry.docs_file).unlink()
                new_entries[entry.file] = None
            else:
                new_entries[entry.file] = _rewrite_shard(shards_dir, entry, docs, drop, np.dtype(manifest.dtype))
        manifest.shards = [new_entries.get(e.file, e) for e in manifest.shards if new_entries.get(e.file, e) is not None]
        manifest.write(shards_dir)

    # 5. the ledger: the documents moved, through the step protocol's ledger update
    removal = StepResult(removed_by_reason=dict(moved), removed_by_source=dict(moved_by_source))
    _update_stats(folder, result, removal, manifest, audit_name=result.audit_file.relative_to(run).as_posix())
    os.replace(partial, result.audit_file)
    log(f"takedown: removed {result.removed} document(s); rewrote {len(result.curated_parts_rewritten)} curated "
        f"part(s) and {len(result.shards_rewritten)} shard(s) ({len(result.shards_deleted)} deleted); "
        f"audit {result.audit_file}")
    return result


def _write_parquet(table: pa.Table, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(table, tmp, compression="zstd")
    os.replace(tmp, path)


def _rewrite_shard(shards_dir: Path, entry, docs: pa.Table, drop: np.ndarray, dtype: np.dtype):
    """The shard without the documents `drop` marks: same name, new tokens, index, .docs.parquet, checksums."""
    from dataclasses import replace

    shard = read_shard(shards_dir / entry.file)
    writer = ShardWriter(shards_dir / entry.file, dtype)
    for i in np.flatnonzero(~drop):
        writer.add(np.array(shard.document(int(i))))
    del shard  # the memory map of the old file; the writer's rename replaces it
    n_tokens, n_docs = writer.close()
    _write_parquet(docs.filter(pa.array(~drop)), shards_dir / entry.docs_file)
    return replace(entry, sha256=sha256_file(shards_dir / entry.file), tokens=n_tokens, docs=n_docs,
                   docs_sha256=sha256_file(shards_dir / entry.docs_file))


def _update_stats(folder: RunFolder, result: TakedownResult, removal: StepResult, manifest: Manifest | None,
                  audit_name: str) -> None:
    stats = folder.read_stats()
    ledger = Ledger.from_dict(stats["ledger"])
    for reason in ledger.dropped:  # dynamic reasons, so the funnel attributes them to their stage
        if reason.startswith("contaminated:"):
            R.contaminated(reason.split(":", 1)[1])
    sources = stats.get("sources", {})
    known = {s: n for s, n in removal.removed_by_source.items() if s in sources}  # unlisted: no count to lower
    apply_removals(StepResult(removal.removed_by_reason, known), ledger, sources)
    stats["ledger"] = ledger.to_dict()
    stages = [s["stage"] for s in stats.get("stages", [])]
    stats["funnel"] = funnel(ledger, stages + ([R.get(R.TAKEN_DOWN).stage] if R.TAKEN_DOWN in ledger.dropped else []))
    if manifest is not None and stats.get("tokens") is not None:
        splits = manifest.split_totals()
        stats["tokens"].update({"train_tokens": splits["train"]["tokens"], "val_tokens": splits["val"]["tokens"],
                                "train_docs": splits["train"]["docs"], "val_docs": splits["val"]["docs"],
                                "shards": len(manifest.shards)})
    stats.setdefault("takedowns", []).append({
        "audit": audit_name, "removed": result.removed, "matched": result.matched, "near_copies": result.near_copies,
        "shards_rewritten": len(result.shards_rewritten), "shards_deleted": len(result.shards_deleted),
        "tokens_removed": result.tokens_removed,
    })
    folder.write_stats(stats)
