"""The frontier: every URL the crawl has seen, once, in SQLite (`frontier.sqlite` in the crawl folder).

A URL is `queued`, `claimed` (handed to a fetcher) or `done` (its outcome recorded). The canonical URL
is the primary key, so a URL enters once however often it is linked. The fetchers' journals are the
truth about what was fetched; this database is their index plus the queue, and is brought back in line
with them when a crawl resumes (claimed URLs no journal names go back to the queue).
"""

from __future__ import annotations

import sqlite3
import time
from collections import Counter
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS urls (
    url TEXT PRIMARY KEY, host TEXT NOT NULL, depth INTEGER NOT NULL, hops INTEGER NOT NULL,
    seq INTEGER NOT NULL, state TEXT NOT NULL, parent TEXT,
    outcome TEXT, reason TEXT, status INTEGER, bytes INTEGER, session INTEGER
);
CREATE INDEX IF NOT EXISTS urls_queue ON urls (host, state, depth, seq);
CREATE INDEX IF NOT EXISTS urls_state ON urls (state);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS sessions (id INTEGER PRIMARY KEY, started REAL, ended REAL, pages INTEGER);
"""

# Outcomes that cost the host a request (the ones max_pages counts).
NETWORK_OUTCOMES = ("fetched", "aborted", "error")


class Frontier:
    def __init__(self, path: str | Path):
        self.db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        # NORMAL: a killed process loses nothing committed; the journals cover an OS crash.
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(_SCHEMA)
        self._seq = self.db.execute("SELECT COALESCE(MAX(seq), 0) FROM urls").fetchone()[0]
        self.queued = Counter(dict(self.db.execute(
            "SELECT host, COUNT(*) FROM urls WHERE state='queued' GROUP BY host").fetchall()))
        self.db.execute("BEGIN")

    def commit(self) -> None:
        self.db.execute("COMMIT")
        self.db.execute("BEGIN")

    def close(self) -> None:
        self.db.execute("COMMIT")
        self.db.close()

    # -- sessions ---------------------------------------------------------------------------------------

    def begin_session(self) -> int:
        cursor = self.db.execute("INSERT INTO sessions (started, pages) VALUES (?, 0)", (time.time(),))
        self.commit()
        return cursor.lastrowid

    def end_session(self, session: int, pages: int) -> None:
        self.db.execute("UPDATE sessions SET ended=?, pages=? WHERE id=?", (time.time(), pages, session))

    def sessions(self) -> list[tuple[int, float, float | None, int]]:
        return self.db.execute("SELECT id, started, ended, pages FROM sessions ORDER BY id").fetchall()

    # -- the queue --------------------------------------------------------------------------------------

    def offer(self, url: str, host: str, depth: int, hops: int, parent: str | None) -> bool:
        """Add a URL unless seen; a queued URL found again at a smaller depth takes that depth."""
        self._seq += 1
        cursor = self.db.execute(
            "INSERT OR IGNORE INTO urls (url, host, depth, hops, seq, state, parent) VALUES (?, ?, ?, ?, ?, 'queued', ?)",
            (url, host, depth, hops, self._seq, parent))
        if cursor.rowcount:
            self.queued[host] += 1
            return True
        self.db.execute("UPDATE urls SET depth=?, hops=? WHERE url=? AND state='queued' AND depth>?",
                        (depth, hops, url, depth))
        return False

    def hosts_with_work(self) -> list[str]:
        return [host for host, n in self.queued.items() if n > 0]

    def next_url(self, host: str) -> tuple[str, int, int] | None:
        return self.db.execute(
            "SELECT url, depth, hops FROM urls WHERE host=? AND state='queued' ORDER BY depth, seq LIMIT 1",
            (host,)).fetchone()

    def claim(self, url: str, host: str) -> None:
        self.db.execute("UPDATE urls SET state='claimed' WHERE url=?", (url,))
        self.queued[host] -= 1

    def requeue_claimed(self) -> int:
        rows = self.db.execute("SELECT host FROM urls WHERE state='claimed'").fetchall()
        for (host,) in rows:
            self.queued[host] += 1
        self.db.execute("UPDATE urls SET state='queued' WHERE state='claimed'")
        return len(rows)

    def get(self, url: str) -> tuple[str, int, int] | None:
        """(state, depth, hops) of a URL, or None when unseen."""
        return self.db.execute("SELECT state, depth, hops FROM urls WHERE url=?", (url,)).fetchone()

    def finish(self, url: str, host: str, entry: dict, session: int) -> None:
        row = self.get(url)
        if row is None:  # a journal line for a URL this database never saw (it was rebuilt): keep it
            self._seq += 1
            self.db.execute("INSERT INTO urls (url, host, depth, hops, seq, state) VALUES (?, ?, 0, 0, ?, 'claimed')",
                            (url, host, self._seq))
        elif row[0] == "queued":
            self.queued[host] -= 1
        self.db.execute("UPDATE urls SET state='done', outcome=?, reason=?, status=?, bytes=?, session=? WHERE url=?",
                        (entry["outcome"], entry.get("reason"), entry.get("status"), entry.get("bytes") or 0,
                         session, url))

    # -- counters and summaries ---------------------------------------------------------------------------

    def count(self, name: str, n: int = 1) -> None:
        self.db.execute("INSERT INTO counters (name, value) VALUES (?, ?) "
                        "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value", (name, n))

    def counters(self) -> dict[str, int]:
        return dict(self.db.execute("SELECT name, value FROM counters").fetchall())

    def network_attempts(self) -> int:
        marks = ",".join("?" * len(NETWORK_OUTCOMES))
        return self.db.execute(f"SELECT COUNT(*) FROM urls WHERE outcome IN ({marks})", NETWORK_OUTCOMES).fetchone()[0]

    def outcome_counts(self) -> list[tuple[str, str | None, int, int]]:
        return self.db.execute("SELECT outcome, reason, COUNT(*), COALESCE(SUM(bytes), 0) FROM urls "
                               "WHERE state='done' GROUP BY outcome, reason").fetchall()

    def status_counts(self) -> list[tuple[int, int]]:
        return self.db.execute("SELECT status, COUNT(*) FROM urls WHERE status IS NOT NULL GROUP BY status").fetchall()

    def state_counts(self) -> dict[str, int]:
        return dict(self.db.execute("SELECT state, COUNT(*) FROM urls GROUP BY state").fetchall())
