"""The run folder: every path of a run, its atomic writes, stats.json (one writer) and the per-step
records of a resumable run. Every other module asks this one; none spells a run-folder name.

    RUN/
      curated/ rejected/ quarantine/   the documents, as part files (writers.py), published from .work/parts/
      shards/                          tokenized shards, tokenizer.json, manifest.json (tokenize.py)
      crawl/                           a crawl source's WARC files and frontier (sources/crawl.py)
      takedown/                        each takedown's audit file, STAMP.jsonl (takedown.py)
      job.resolved.yaml                the job as run
      stats.json                       written last, by `write_stats`: the run is complete when it exists
                                       and .work/ does not
      .work/                           resume state, never published:
        run.json                       the job and inputs the run was started with (a resume must match)
        parts/{curated,rejected,quarantine}/, done/   each split's part files, then its completion record
        steps/NAME.json                a global step's result, written when the step is done
        NAME/                          a global step's own work (dedup-bands/, tokenize/)
      _SUCCESS                         on an output URI only, last (storage.py)
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

CURATED, REJECTED, QUARANTINE, SHARDS, CRAWL = "curated", "rejected", "quarantine", "shards", "crawl"
TAKEDOWNS = "takedown"
OUTPUTS = (CURATED, REJECTED, QUARANTINE)  # the document folders, written as parts by the workers
STATS, JOB, WORK, SUCCESS = "stats.json", "job.resolved.yaml", ".work", "_SUCCESS"
IDENTITY, PARTS, DONE, STEPS = "run.json", "parts", "done", "steps"
# What a run writes at its top level: what is published to a URI, and what a fresh run removes first.
PUBLISHED = (*OUTPUTS, SHARDS, CRAWL, STATS, JOB)


def write_atomic(path: Path, text: str) -> None:
    """Write `text` to `path` through `path.tmp` and a rename: readers see the old file or the new one."""
    tmp = Path(f"{path}.tmp")
    with open(tmp, "w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


@dataclass(frozen=True)
class RunFolder:
    root: Path

    def __post_init__(self):
        object.__setattr__(self, "root", Path(self.root))

    @classmethod
    def of(cls, run: "RunFolder | str | os.PathLike") -> "RunFolder":
        return run if isinstance(run, RunFolder) else cls(run)

    # -- the published folders and files ------------------------------------------------------------
    @property
    def curated(self) -> Path:
        return self.root / CURATED

    @property
    def rejected(self) -> Path:
        return self.root / REJECTED

    @property
    def quarantine(self) -> Path:
        return self.root / QUARANTINE

    @property
    def shards(self) -> Path:
        return self.root / SHARDS

    @property
    def crawl(self) -> Path:
        return self.root / CRAWL

    @property
    def takedowns(self) -> Path:
        return self.root / TAKEDOWNS

    @property
    def stats(self) -> Path:
        return self.root / STATS

    @property
    def job(self) -> Path:
        return self.root / JOB

    def output(self, name: str) -> Path:
        """One of OUTPUTS."""
        return self.root / name

    def parts(self, folder: Path | None = None) -> list[Path]:
        """The part files of a document folder (curated/ by default), in name order: the run's order."""
        return sorted((folder or self.curated).glob("part-*.parquet"))

    def documents(self) -> list[Path]:
        """Every written document's file: curated/, then rejected/ (whatever moved it there), by name."""
        return sorted(self.curated.glob("*.parquet")) + sorted(self.rejected.glob("*.parquet"))

    def rejected_by(self, step: str, part: Path) -> Path:
        """rejected/{step}-{key}.parquet: what a global step moved out of curated part `part-{key}`."""
        return self.rejected / f"{step}-{part.name.removeprefix('part-')}"

    # -- the work folder ----------------------------------------------------------------------------
    @property
    def work(self) -> Path:
        return self.root / WORK

    @property
    def identity(self) -> Path:
        return self.work / IDENTITY

    @property
    def work_parts(self) -> Path:
        return self.work / PARTS

    @property
    def done(self) -> Path:
        return self.work / DONE

    def step_work(self, name: str) -> Path:
        """A global step's own work folder (its spill files, exchanges, records)."""
        return self.work / name

    def step_record(self, name: str) -> Path:
        return self.work / STEPS / f"{name}.json"

    def read_step(self, name: str) -> dict | None:
        path = self.step_record(name)
        return json.loads(path.read_text()) if path.exists() else None

    def write_step(self, name: str, result: dict) -> None:
        self.step_record(name).parent.mkdir(parents=True, exist_ok=True)
        write_atomic(self.step_record(name), json.dumps(result))

    def forget_steps(self, names) -> None:
        for name in names:
            self.step_record(name).unlink(missing_ok=True)

    # -- lifecycle ---------------------------------------------------------------------------------
    def is_complete(self) -> bool:
        return self.stats.exists() and not self.work.exists()

    def clear(self) -> None:
        """Remove what an earlier run left here (crawl/ stays: a crawl source resumes from it), so no stale
        part file survives into this run's outputs."""
        for name in (*OUTPUTS, SHARDS, WORK):
            if (self.root / name).exists():
                shutil.rmtree(self.root / name)
        for name in (STATS, JOB):
            (self.root / name).unlink(missing_ok=True)
        self.root.mkdir(parents=True, exist_ok=True)

    def finish(self, document: dict) -> None:
        """stats.json (temp + rename; the one place it is written after a run), then .work/ goes."""
        self.write_stats(document)
        shutil.rmtree(self.work, ignore_errors=True)

    def write_stats(self, document: dict) -> None:
        write_atomic(self.stats, json.dumps(document, indent=2) + "\n")

    def read_stats(self) -> dict:
        return json.loads(self.stats.read_text())
