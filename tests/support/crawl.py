"""Helpers for the crawler tests: a connection guard, and reading a crawl folder back.

The guard replaces `socket.socket.connect` / `connect_ex` so that any connection to an address other than
127.0.0.1 fails and is written to a log file; the tests assert the log stays empty. In this process it is
installed with `connect_guard`; in a crawler subprocess or a Ray actor, through `guard_env`, which puts a
`sitecustomize.py` on PYTHONPATH so the guard is in place before any crawler code runs.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from collections import Counter
from pathlib import Path

GUARD_ENV = "GRISTMILL_CONNECT_GUARD_LOG"

GUARD_SOURCE = '''
import os
import socket

def install(log_path):
    connect, connect_ex = socket.socket.connect, socket.socket.connect_ex

    def check(sock, address):
        if sock.family in (socket.AF_INET, socket.AF_INET6) and address[0] != "127.0.0.1":
            with open(log_path, "a") as handle:
                handle.write(f"{os.getpid()} {address!r}\\n")
            raise ConnectionRefusedError(f"connection guard: {address!r} is not 127.0.0.1")

    def guarded_connect(self, address):
        check(self, address)
        return connect(self, address)

    def guarded_connect_ex(self, address):
        check(self, address)
        return connect_ex(self, address)

    socket.socket.connect, socket.socket.connect_ex = guarded_connect, guarded_connect_ex
    return connect, connect_ex

if os.environ.get("GRISTMILL_CONNECT_GUARD_LOG"):
    install(os.environ["GRISTMILL_CONNECT_GUARD_LOG"])
'''


@contextlib.contextmanager
def connect_guard(log_path: Path):
    """Install the guard in this process; on exit restore sockets and fail if anything was blocked."""
    namespace: dict = {}
    exec(compile(GUARD_SOURCE.replace('if os.environ.get("GRISTMILL_CONNECT_GUARD_LOG")', "if False"),
                 "connect_guard", "exec"), namespace)
    original = namespace["install"](str(log_path))
    try:
        yield log_path
    finally:
        socket.socket.connect, socket.socket.connect_ex = original
    assert guard_violations(log_path) == [], "a connection to an address other than 127.0.0.1 was attempted"


def guard_env(folder: Path, log_path: Path) -> dict[str, str]:
    """Environment variables that install the guard in a new Python process (subprocess or Ray worker)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(GUARD_SOURCE)
    path = os.pathsep.join([str(folder)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])
    return {"PYTHONPATH": path, GUARD_ENV: str(log_path)}


def guard_violations(log_path: Path) -> list[str]:
    return log_path.read_text().splitlines() if log_path.exists() else []


def journal_entries(out_dir: Path) -> list[dict]:
    entries = []
    for path in sorted((out_dir / "journal").glob("*.jsonl")):
        entries += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return entries


def served_twice(requests) -> list[tuple[int, str]]:
    """(port, path) pairs the server answered more than once."""
    counts = Counter((r.port, r.path) for r in requests if r.outcome != "client_gone")
    return sorted(key for key, n in counts.items() if n > 1)
