"""ExtractText: HTML body → main text with the job's engine (`extract.engine`: trafilatura by default), in a
sandbox with a timeout and memory cap.

Writes `text` and `charset`, removes `content` (the raw body is not carried past extraction). A page
that hangs past `extract.timeout_s` or crashes the sandbox becomes a skipped row with its own reason;
the batch and the run go on. Rows whose source already gave text (WET, JSONL, Parquet) pass through.
"""

from __future__ import annotations

import os
import pickle
import selectors
import subprocess
import sys
import time
from collections import Counter

import pyarrow as pa
import pyarrow.compute as pc

from gristmill.pipeline.engine.process import sandbox_env
from gristmill.pipeline.stages.base import Stage, active_mask, set_column
from gristmill.pipeline.stages.extract_sandbox import FRAME, write_frame
from gristmill.schemas import columns as C
from gristmill.schemas import reasons as R
from gristmill.schemas.job import ExtractConfig

_STARTUP_TIMEOUT_S = 120.0


class SandboxTimeout(Exception):
    pass


class SandboxCrashed(Exception):
    pass


class ExtractionSandbox:
    """Parent side of `extract_sandbox`: one child process, restarted after a timeout or crash."""

    def __init__(self, options: dict, timeout_s: float, memory_mb: int):
        self.options, self.timeout_s, self.memory_mb = options, timeout_s, memory_mb
        self.process: subprocess.Popen | None = None
        self.restarts = 0

    def start(self) -> None:
        self.close()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gristmill.pipeline.stages.extract_sandbox", str(self.memory_mb),
             pickle.dumps(self.options).hex()],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=sandbox_env(),
        )
        if self._receive(time.monotonic() + _STARTUP_TIMEOUT_S) != ("ready",):
            raise RuntimeError("extraction sandbox did not start")

    def close(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            for stream in (self.process.stdin, self.process.stdout):
                stream.close()
            self.process = None

    def _receive(self, deadline: float):
        fd = self.process.stdout.fileno()
        with selectors.DefaultSelector() as selector:
            selector.register(fd, selectors.EVENT_READ)

            def read_exact(n: int) -> bytearray:
                buf = bytearray(n)  # read in place: a page's text is held once, not in chunks and a copy
                view, got = memoryview(buf), 0
                while got < n:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0 or not selector.select(remaining):
                        raise SandboxTimeout
                    count = os.readv(fd, [view[got:]])
                    if not count:
                        raise SandboxCrashed
                    got += count
                view.release()
                return buf

            size = FRAME.unpack(read_exact(FRAME.size))[0]
            return pickle.loads(read_exact(size))

    def extract(self, body: bytes, content_type: str | None) -> tuple[str | None, str]:
        """(text or None, charset) of one page."""
        text, charset, _ = self.extract_utf8(body, content_type)
        return (text.decode("utf-8") if isinstance(text, bytes) else text), charset

    def extract_utf8(self, body: bytes, content_type: str | None) -> tuple[bytes | str | None, str, bool]:
        """(the text as UTF-8 bytes, or None; charset; whether the text has anything but whitespace)."""
        if self.process is None:
            self.start()
        # The page's time starts before it is sent: a parent descheduled between sending and waiting (a
        # busy 2-core machine) would otherwise find the child's answer ready and never time out.
        deadline = time.monotonic() + self.timeout_s
        try:
            write_frame(self.process.stdin, (body, content_type))
            return self._receive(deadline)
        except (SandboxTimeout, SandboxCrashed, BrokenPipeError, EOFError, pickle.UnpicklingError) as err:
            self.restarts += 1
            self.close()
            if isinstance(err, SandboxTimeout):
                raise SandboxTimeout from None
            raise SandboxCrashed from None


def trafilatura_options(config: ExtractConfig) -> dict:
    return {
        "favor_precision": config.favor_precision,
        "favor_recall": config.favor_recall,
        "include_tables": config.include_tables,
        "include_comments": config.include_comments,
    }


def engine_options(config: ExtractConfig) -> dict:
    """What the sandbox needs to build the job's engine (`extract_engines.make_engine`)."""
    return {"engine": config.engine, **trafilatura_options(config)}


class ExtractText(Stage):
    name = "extract"
    reads = (C.CONTENT, C.CONTENT_TYPE, C.TEXT)
    writes = (C.TEXT, C.CHARSET, C.TEXT_EDITS, C.SKIP_REASON)
    drops = (C.CONTENT,)

    config: ExtractConfig

    def setup(self) -> None:
        # Started on the first HTML page, so text-only inputs never pay for it.
        self.sandbox = ExtractionSandbox(engine_options(self.config), self.config.timeout_s, self.config.sandbox_memory_mb)

    def process(self, table: pa.Table, counts: Counter) -> pa.Table:
        active = active_mask(table).to_pylist()
        bodies = table[C.CONTENT]  # one body at a time as Python bytes, not all of them at once
        has_body = pc.is_valid(bodies).to_pylist()
        content_types = table[C.CONTENT_TYPE].to_pylist()
        skip = table[C.SKIP_REASON].to_pylist()
        texts: list[str | bytes | None] = table[C.TEXT].to_pylist()
        charsets: list[str | None] = [None] * table.num_rows
        for i, is_doc in enumerate(active):
            if not is_doc or not has_body[i]:  # not a document, or text given by the source
                continue
            try:
                text, charsets[i], has_text = self.sandbox.extract_utf8(bodies[i].as_py(), content_types[i])
            except SandboxTimeout:
                skip[i] = R.EXTRACTION_TIMEOUT
            except SandboxCrashed:
                skip[i] = R.EXTRACTION_FAILED
            else:
                if has_text:
                    texts[i] = text  # UTF-8 bytes: Arrow takes them as the string they encode
                else:
                    skip[i] = R.NO_MAIN_TEXT
            counts[skip[i] or "extracted"] += 1
        del bodies
        table = table.drop_columns([C.CONTENT])
        table = set_column(table, C.TEXT, texts)
        table = set_column(table, C.CHARSET, charsets)
        edits = table[C.TEXT_EDITS].to_pylist() if C.TEXT_EDITS in table.column_names else [None] * table.num_rows
        table = set_column(table, C.TEXT_EDITS, [e if e is not None else ([] if t is not None else None) for e, t in zip(edits, texts)])
        return set_column(table, C.SKIP_REASON, skip)

    def bytes_in(self, table: pa.Table) -> int:
        return int(pc.sum(pc.binary_length(table[C.CONTENT])).as_py() or 0)

    def __del__(self):
        sandbox = getattr(self, "sandbox", None)
        if sandbox is not None:
            sandbox.close()
