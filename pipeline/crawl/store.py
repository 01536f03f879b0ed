"""What a fetcher writes, in an order that survives SIGKILL at any instant.

Per fetcher and crawl session there is one gzipped WARC file (`warc/crawl-SSS-FF.warc.gz`) and one
journal (`journal/crawl-SSS-FF.jsonl`): a line per frontier URL the fetcher finished, with its outcome,
the links it found, and where its records lie in the WARC. The journal, not the frontier database, is
the truth about what was fetched; the database is rebuilt from it on resume.

For one archived page:
1. the request and response records are serialized in memory and written to a spool file
   (`spool/crawl-SSS-FF/<sha1>.spool`: the journal line, then the records), fsynced, renamed into place;
2. only then is the connection closed (so a server sees the exchange end after the page is safe);
3. the records are appended to the WARC (one write), fsynced; the journal line is appended, fsynced;
4. the spool file is removed.
A page that is not archived (refused, disallowed, aborted, failed) is one journal line, written before
the connection closes.

`recover` undoes what a kill leaves behind: a journal's torn last line is cut; a WARC is cut back to the
end of the last record its journal names (a half-written record, or one whose line never made it); then
every spool file whose URL no journal names is appended to its WARC with its line. A page is thus in the
WARC exactly once, and nothing that reached a spool or journal is fetched again.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import os
import signal
import threading
import time
import uuid
from pathlib import Path

from warcio.warcwriter import WARCWriter

WARC_DIR = "warc"
JOURNAL_DIR = "journal"
SPOOL_DIR = "spool"

# Fault injection for the resume tests: GRISTMILL_CRAWL_FAULT=warc-write:N makes this process SIGKILL
# itself halfway through the N-th WARC append, leaving a torn record, as a kill at the worst moment would.
_FAULT = os.environ.get("GRISTMILL_CRAWL_FAULT", "")
_WARC_WRITES = itertools.count(1)


def stem(session: int, fetcher: int) -> str:
    return f"crawl-{session:03d}-{fetcher:02d}"


def warcinfo_bytes(fields: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    writer = WARCWriter(buffer, gzip=True, warc_version="1.1")
    payload = "".join(f"{k}: {v}\r\n" for k, v in fields.items()).encode("utf-8")
    writer.write_record(writer.create_warc_record("", "warcinfo", payload=io.BytesIO(payload), length=len(payload),
                                                  warc_content_type="application/warc-fields"))
    return buffer.getvalue()


def _fsync(handle, enabled: bool) -> None:
    handle.flush()
    if enabled:
        os.fsync(handle.fileno())


class CrawlStore:
    """One fetcher's WARC, journal and spool for one session; safe to call from several threads."""

    def __init__(self, out_dir: str | os.PathLike, session: int, fetcher: int, *, fsync: bool = True,
                 warcinfo: dict[str, str] | None = None):
        self.out_dir = Path(out_dir)
        self.name = stem(session, fetcher)
        self.warc_rel = f"{WARC_DIR}/{self.name}.warc.gz"
        self.warc_path = self.out_dir / self.warc_rel
        self.journal_path = self.out_dir / JOURNAL_DIR / f"{self.name}.jsonl"
        self.spool_dir = self.out_dir / SPOOL_DIR / self.name
        for folder in (self.warc_path.parent, self.journal_path.parent, self.spool_dir):
            folder.mkdir(parents=True, exist_ok=True)
        self.fsync = fsync
        self.warcinfo = warcinfo or {"software": "gristmill crawler"}
        self._lock = threading.Lock()
        self._journal = None
        self._warc = None

    # -- the steps a fetcher calls ------------------------------------------------------------------

    def spool(self, entry: dict, records: bytes) -> Path:
        """Step 1 for an archived page: durable before the connection closes."""
        entry["t"] = time.time()
        path = self.spool_dir / (hashlib.sha1(entry["url"].encode("utf-8")).hexdigest() + ".spool")
        partial = path.with_suffix(".partial")
        with open(partial, "wb") as handle:
            handle.write(json.dumps(entry, separators=(",", ":")).encode("utf-8") + b"\n")
            handle.write(records)
            _fsync(handle, self.fsync)
        partial.replace(path)
        return path

    def journal(self, entry: dict) -> None:
        """A page that is not archived: one durable journal line."""
        entry["t"] = time.time()
        with self._lock:
            self._append_journal(entry)

    def commit(self, entry: dict, records: bytes, spool_path: Path | None) -> None:
        """Step 3 and 4: append the records to the WARC, then the journal line naming them."""
        with self._lock:
            if self._warc is None:
                self._warc = open(self.warc_path, "ab")
            offset = self._warc.tell()
            data = records
            if offset == 0:
                data = warcinfo_bytes(self.warcinfo) + records
            if _FAULT == f"warc-write:{next(_WARC_WRITES)}":
                self._warc.write(data[: len(data) // 2])
                _fsync(self._warc, True)
                os.kill(os.getpid(), signal.SIGKILL)
            self._warc.write(data)
            _fsync(self._warc, self.fsync)
            end = offset + len(data)
            entry.update({"warc": self.warc_rel, "warc_offset": end - len(records), "warc_end": end})
            self._append_journal(entry)
        if spool_path is not None:
            spool_path.unlink(missing_ok=True)

    def _append_journal(self, entry: dict) -> None:
        if self._journal is None:
            self._journal = open(self.journal_path, "ab")
        self._journal.write(json.dumps(entry, separators=(",", ":")).encode("utf-8") + b"\n")
        _fsync(self._journal, self.fsync)

    def close(self) -> None:
        with self._lock:
            for handle in (self._journal, self._warc):
                if handle is not None:
                    handle.close()
            self._journal = self._warc = None
        try:
            self.spool_dir.rmdir()  # empty once every spooled page is committed
        except OSError:
            pass


def read_journal(path: Path, repair: bool = False) -> list[dict]:
    """The complete lines of a journal; with repair, a torn last line is cut from the file."""
    data = path.read_bytes()
    good_end = data.rfind(b"\n") + 1
    entries = []
    for line in data[:good_end].splitlines():
        if line.strip():
            entries.append(json.loads(line))
    if repair and good_end < len(data):
        with open(path, "r+b") as handle:
            handle.truncate(good_end)
    return entries


def recover(out_dir: str | os.PathLike, fsync: bool = True, warcinfo: dict[str, str] | None = None) -> dict:
    """Repair what earlier sessions left (see the module docstring); returns the journal entries of
    every earlier session in the order they were written (`t`, across fetchers), and what was repaired."""
    out_dir = Path(out_dir)
    report = {"entries": [], "truncated_bytes": 0, "torn_journal_lines": 0, "recovered_from_spool": 0,
              "discarded_partial_spools": 0}
    journaled: set[str] = set()
    journals = sorted((out_dir / JOURNAL_DIR).glob("crawl-*.jsonl")) if (out_dir / JOURNAL_DIR).exists() else []
    names = {p.stem for p in journals}
    if (out_dir / WARC_DIR).exists():
        names |= {p.name.removesuffix(".warc.gz") for p in (out_dir / WARC_DIR).glob("crawl-*.warc.gz")}
    if (out_dir / SPOOL_DIR).exists():
        names |= {p.name for p in (out_dir / SPOOL_DIR).iterdir() if p.is_dir()}
    for name in sorted(names):
        journal_path = out_dir / JOURNAL_DIR / f"{name}.jsonl"
        entries = []
        if journal_path.exists():
            size = journal_path.stat().st_size
            entries = read_journal(journal_path, repair=True)
            report["torn_journal_lines"] += journal_path.stat().st_size < size
        warc_path = out_dir / WARC_DIR / f"{name}.warc.gz"
        good_end = max((e["warc_end"] for e in entries if e.get("warc_end") is not None), default=0)
        if warc_path.exists() and warc_path.stat().st_size > good_end:
            report["truncated_bytes"] += warc_path.stat().st_size - good_end
            with open(warc_path, "r+b") as handle:
                handle.truncate(good_end)
        journaled |= {e["url"] for e in entries}
        spool_dir = out_dir / SPOOL_DIR / name
        if spool_dir.is_dir():
            session, fetcher = (int(x) for x in name.split("-")[1:3])
            store = CrawlStore(out_dir, session, fetcher, fsync=fsync, warcinfo=warcinfo)
            for partial in sorted(spool_dir.glob("*.partial")):
                partial.unlink()
                report["discarded_partial_spools"] += 1
            for spooled in sorted(spool_dir.glob("*.spool")):
                data = spooled.read_bytes()
                line, _, records = data.partition(b"\n")
                entry = json.loads(line)
                if entry["url"] in journaled:
                    spooled.unlink()
                    continue
                store.commit(entry, records, spooled)
                entries.append(entry)
                journaled.add(entry["url"])
                report["recovered_from_spool"] += 1
            store.close()
        if warc_path.exists() and warc_path.stat().st_size == 0:
            warc_path.unlink()
        report["entries"].extend(entries)
    # A page is journaled after the page that linked to it, so replaying in time order rebuilds depths.
    report["entries"].sort(key=lambda e: e.get("t", 0.0))
    return report


def new_record_id() -> str:
    return f"<urn:uuid:{uuid.uuid4()}>"
