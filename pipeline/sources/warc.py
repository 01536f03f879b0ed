"""WARC and ARC reading: one row per record, every record accounted for.

Each record becomes exactly one row of `columns.SOURCE_SCHEMA`:
- an HTML response with status 200 carries its decoded body in `content`;
- a WET `conversion` record carries its (already extracted) text in `text`;
- any other record carries a `skip_reason` (request, metadata, revisit, non-HTML, 404, oversized…);
- a record that cannot be read (bad gzip, clipped record, undecodable body) carries a
  `quarantine_reason`; a clipped record is one whose file ends before its Content-Length (warcio
  returns the partial body silently; we do not pass a partial page off as a document). When the archive itself breaks, the rest of the file from the last good offset
  becomes one quarantined row, since nothing after it can be re-synchronized.

HTTP bodies are de-chunked and decompressed here, with a cap on the decoded size, so a
decompression bomb costs at most `max_page_bytes`. (warcio's own decoder breaks on brotli >= 1.2.)
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field

import pyarrow as pa
import xxhash
from warcio.archiveiterator import ArchiveIterator

from gristmill.pipeline.sources.base import (WHOLE, SplitRange, SplitReport, generated_id, open_input, quarantine_row,
                                             to_table)
from gristmill.schemas import columns as C
from gristmill.schemas import reasons as R
from gristmill.schemas.job import ExtractConfig

_READ_CHUNK = 1 << 16


def record_id(warc_record_id: str | None, source_file: str, offset: int) -> str:
    """Deterministic document id, the same on every machine and worker count: a hash of the
    WARC-Record-ID (globally unique by the WARC spec), else of the file's name and the offset."""
    if not warc_record_id:
        return generated_id(source_file, offset)
    return xxhash.xxh3_64_hexdigest(warc_record_id.encode("utf-8", "surrogatepass"))


class BodyError(ValueError):
    """An HTTP body that cannot be de-chunked or decompressed."""


class BodyTooLarge(Exception):
    pass


def dechunk(raw: bytes) -> bytes:
    """Undo HTTP/1.1 chunked transfer coding; raises BodyError on a malformed chunk header."""
    out, pos = bytearray(), 0
    while pos < len(raw):
        end = raw.find(b"\r\n", pos)
        if end < 0:
            raise BodyError("chunked body: chunk size line without CRLF")
        size_field = raw[pos:end].split(b";", 1)[0].strip()
        try:
            size = int(size_field, 16)
        except ValueError:
            raise BodyError(f"chunked body: bad chunk size {size_field[:20]!r}") from None
        if size == 0:
            break
        start = end + 2
        out += raw[start : start + size]
        pos = start + size + 2
    return bytes(out)


def decompress(data: bytes, encoding: str, max_bytes: int) -> bytes:
    """gzip / deflate / br with the output capped at max_bytes (+1 to detect overflow)."""
    if encoding in ("gzip", "x-gzip", "deflate"):
        wbits = 47 if encoding != "deflate" else 15  # 47: auto-detect gzip or zlib header
        try:
            inflater = zlib.decompressobj(wbits)
            out = inflater.decompress(data, max_bytes + 1)
        except zlib.error:
            if encoding != "deflate":
                raise
            inflater = zlib.decompressobj(-15)  # raw deflate, as some servers send it
            out = inflater.decompress(data, max_bytes + 1)
    elif encoding == "br":
        import brotli

        decoder = brotli.Decompressor()
        out = decoder.process(data, output_buffer_limit=max_bytes + 1)
    else:
        raise BodyError(f"unsupported Content-Encoding {encoding!r}")
    if len(out) > max_bytes:
        raise BodyTooLarge
    return out


def decode_body(raw: bytes, transfer_encoding: str, content_encoding: str, max_bytes: int) -> bytes:
    """The HTTP entity body as the server meant it. Bodies that archives stored already decoded while
    keeping the Content-Encoding header are recognised (decompression fails, raw looks like markup)."""
    if "chunked" in transfer_encoding:
        try:
            raw = dechunk(raw)
        except BodyError:
            # Some crawlers de-chunk before archiving but keep the header.
            if not raw.lstrip()[:1] == b"<":
                raise
    for encoding in [e.strip() for e in content_encoding.split(",") if e.strip() and e.strip() != "identity"][::-1]:
        try:
            raw = decompress(raw, encoding, max_bytes)
        except BodyTooLarge:
            raise
        except Exception as err:
            if raw.lstrip()[:1] == b"<":
                break  # stored decoded
            raise BodyError(f"Content-Encoding {encoding}: {type(err).__name__}: {err}") from None
    if len(raw) > max_bytes:
        raise BodyTooLarge
    return raw


def _read_capped(stream, cap: int) -> tuple[bytes, bool]:
    """Read up to cap bytes; report whether more remained (the rest is skipped by the iterator)."""
    buf = bytearray()
    while len(buf) <= cap:
        chunk = stream.read(min(_READ_CHUNK, cap + 1 - len(buf)))
        if not chunk:
            return bytes(buf), False
        buf += chunk
    return bytes(buf[:cap]), True


def _row_for_record(record, max_page_bytes: int) -> dict:
    """Everything but the id and offset, which warcio knows only once the record is read to its end."""
    row = {name: None for name in C.SOURCE_COLUMNS}
    headers = record.rec_headers
    row[C.WARC_TYPE] = record.rec_type
    row[C.URL] = headers.get_header("WARC-Target-URI")
    row[C.WARC_RECORD_ID] = headers.get_header("WARC-Record-ID")
    row[C.PAYLOAD_DIGEST] = headers.get_header("WARC-Payload-Digest")
    row[C.FETCH_DATE] = headers.get_header("WARC-Date")
    if record.rec_type == "revisit":
        row[C.SKIP_REASON] = R.REVISIT
        return row
    if record.rec_type == "conversion":  # WET: the text was extracted by whoever wrote the file
        raw, truncated = _read_capped(record.raw_stream, max_page_bytes)
        row[C.CONTENT_TYPE] = headers.get_header("Content-Type")
        row[C.CONTENT_BYTES] = len(raw)
        if truncated:  # a text record, as a JSONL line: quarantined unread past the cap (issue 20)
            row[C.QUARANTINE_REASON] = (f"record too large: a WET conversion record over the {max_page_bytes}-byte "
                                        "cap (max_page_bytes)")
        elif not raw.strip():
            row[C.SKIP_REASON] = R.EMPTY_PAYLOAD
        else:
            row[C.TEXT] = raw.decode("utf-8", errors="replace")
        if language := headers.get_header("WARC-Identified-Content-Language"):
            row[C.METADATA] = f'{{"warc_language": "{language}"}}'
        return row
    if record.rec_type != "response":
        row[C.SKIP_REASON] = R.NOT_RESPONSE
        return row
    http = record.http_headers
    if http is None:  # a response record of a non-HTTP protocol (dns:, ftp:)
        row[C.SKIP_REASON] = R.NOT_HTML
        return row
    try:
        row[C.HTTP_STATUS] = int(http.get_statuscode())
    except (TypeError, ValueError):
        row[C.QUARANTINE_REASON] = f"malformed HTTP status line: {http.protocol!r} {http.statusline!r}"[:500]
        return row
    content_type = http.get_header("Content-Type") or ""
    row[C.CONTENT_TYPE] = content_type
    if "html" not in content_type.lower():
        row[C.SKIP_REASON] = R.NOT_HTML
        return row
    if row[C.HTTP_STATUS] != 200:
        row[C.SKIP_REASON] = R.HTTP_STATUS_NOT_OK
        return row
    raw, truncated = _read_capped(record.raw_stream, max_page_bytes)
    if truncated:
        row[C.SKIP_REASON] = R.PAGE_TOO_LARGE
        return row
    try:
        body = decode_body(raw, (http.get_header("Transfer-Encoding") or "").lower(),
                           (http.get_header("Content-Encoding") or "").lower(), max_page_bytes)
    except BodyTooLarge:
        row[C.SKIP_REASON] = R.PAGE_TOO_LARGE
        return row
    except BodyError as err:
        row[C.QUARANTINE_REASON] = f"undecodable HTTP body: {err}"[:500]
        return row
    row[C.CONTENT_BYTES] = len(body)
    if not body.strip():
        row[C.SKIP_REASON] = R.EMPTY_PAYLOAD
        return row
    row[C.CONTENT] = body
    return row


def sniff_archive(path: str) -> str | None:
    """None if the file starts like a WARC or ARC (plain or gzip); else why it is not one.

    Needed because warcio's ARC fallback parses any line of text as an ARC header and invents records.
    """
    with open_input(path) as handle:
        head = handle.read(4096)
    if head[:2] == b"\x1f\x8b":
        try:
            head = zlib.decompressobj(31).decompress(head, 64)
        except zlib.error as err:
            return f"gzip header but undecodable start: {err}"
    if head.startswith((b"WARC/", b"filedesc://")):
        return None
    return f"not a WARC or ARC file (starts with {head[:24]!r})"


class _Records(ArchiveIterator):
    """warcio's iterator without its stderr warning; `err_count` still counts records followed by bytes
    that are not blank lines (their Content-Length was too short), which we quarantine instead."""

    INC_RECORD = ""


_TAIL_PEEK = 1 << 16


def _unread_tail(handle, end: int) -> str | None:
    """After the last record warcio returned (ending at byte `end`), why the rest of the file is not
    blank: warcio stops silently when a gzip member or a record header is cut off, which would lose
    that record without a trace. None when only blank lines (or nothing) follow."""
    handle.seek(0, 2)
    size = handle.tell()
    if size <= end:
        return None
    handle.seek(end)
    tail = handle.read(_TAIL_PEEK)
    text = tail
    if tail[:2] == b"\x1f\x8b":
        inflater = zlib.decompressobj(31)
        try:
            text = inflater.decompress(tail, _TAIL_PEEK)
        except zlib.error:
            text = b"?"
        if inflater.eof and not text.strip() and not inflater.unused_data.strip():
            return None  # a complete, empty gzip member: padding, not a record
    elif not tail.strip():
        return None
    what = "a cut-off gzip member" if tail[:2] == b"\x1f\x8b" else "bytes that are not a complete record"
    for line in text.split(b"\r\n", 40)[:40]:
        if line.lower().startswith(b"warc-target-uri:"):
            what += f" (WARC-Target-URI {line.split(b':', 1)[1].strip().decode('utf-8', 'replace')[:200]})"
            break
    return f"truncated archive: {size - end} bytes from byte {end} to the end are {what}"


_ARC_HEADER = re.compile(rb"^\S+ \d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3} \d{14} \S* \d+\r?\n")
_SYNC_WINDOW = 1 << 16


def _starts_a_record(head: bytes) -> bool:
    return head.startswith(b"WARC/") or bool(_ARC_HEADER.match(head))


def find_member(handle, start: int, end: int | None) -> int | None:
    """The offset of the first gzip member at or after `start` (and before `end`) that inflates to a WARC
    or ARC record header; None if there is none. Bytes 1f 8b 08 inside compressed data are rejected
    because they do not inflate to a header."""
    pos = start
    while end is None or pos < end:
        handle.seek(pos)
        window = handle.read(_SYNC_WINDOW + 4096)  # a candidate near the window's end still has its header
        if len(window) < 3:
            return None
        limit = min(_SYNC_WINDOW, len(window)) if end is None else min(_SYNC_WINDOW, len(window), end - pos)
        found = window.find(b"\x1f\x8b\x08")
        while 0 <= found < limit:
            try:
                head = zlib.decompressobj(31).decompress(window[found:found + 4096], 64)
            except zlib.error:
                head = b""
            if _starts_a_record(head):
                return pos + found
            found = window.find(b"\x1f\x8b\x08", found + 1)
        if len(window) <= _SYNC_WINDOW:
            return None  # the file ended
        pos += _SYNC_WINDOW
    return None


def _framing_quarantine(row: dict, reason: str, report: SplitReport) -> None:
    report.broke = True
    row.update({C.CONTENT: None, C.TEXT: None, C.SKIP_REASON: None, C.QUARANTINE_REASON: reason})


def iter_warc_rows(path: str, max_page_bytes: int, split: SplitRange = WHOLE,
                   report: SplitReport | None = None) -> Iterator[dict]:
    """Yield one row per record of a WARC/ARC file (gzipped or not); never raises on bad input.

    With a `split` (start > 0), reading starts at the first record at or after `start`: a gzip member
    that inflates to a record header (gzip files), or `start` itself, which must be a record header
    (plain files, whose splits come from a header-chain pass); it stops before the first record at or
    past `end`. Offsets stay the file's own, so ids and provenance do not depend on the split."""
    report = report if report is not None else SplitReport()
    last_good_end = split.start
    try:
        if split.start == 0:
            if problem := sniff_archive(path):
                raise ValueError(problem)
        with open_input(path) as handle:
            if split.start > 0:
                gzipped = handle.read(2) == b"\x1f\x8b"  # the file's first bytes
                sync = find_member(handle, split.start, split.end) if gzipped else split.start
                if sync is None:
                    return
                handle.seek(sync)
                if not gzipped and not _starts_a_record(handle.read(64)):
                    report.broke = True
                    yield quarantine_row(path, sync, f"split of a plain archive does not start at a record (byte {sync})")
                    return
                handle.seek(sync)
                report.sync = last_good_end = sync
            else:
                report.sync = 0
            records = _Records(handle, arc2warc=True)
            for record in records:
                row = _row_for_record(record, max_page_bytes)
                warnings_before = records.err_count
                # Asking for the offset reads the record to its end: a clipped record fails here.
                offset = records.get_record_offset()
                if split.end is not None and offset >= split.end:
                    report.crossed = offset  # the next split's first record
                    return
                last_good_end = offset + records.get_record_length()
                missing = getattr(record.raw_stream, "limit", 0)  # bytes the WARC header promised but the file lacks
                if missing > 0:
                    _framing_quarantine(row, f"clipped record: {missing} of {record.length} bytes missing", report)
                elif records.err_count > warnings_before and record.format == "warc":
                    # (ARC records may be followed by no blank line at all; only WARC promises them.)
                    _framing_quarantine(row, "wrong Content-Length: the record is followed by bytes that are not "
                                             "blank lines (its declared end falls inside other data)", report)
                row.update({C.ID: record_id(row[C.WARC_RECORD_ID], path, offset), C.SOURCE_FILE: path, C.RECORD_OFFSET: offset})
                yield row
            report.reached_end = True
            if problem := _unread_tail(handle, max(last_good_end, 0)):
                report.broke = True
                yield quarantine_row(path, max(last_good_end, 0), problem)
    except Exception as err:  # noqa: BLE001 - any parser failure becomes a quarantine row, never a crash
        report.broke = True
        last_good_end = max(last_good_end, 0)  # warcio reports negative offsets inside single-member gzip
        yield quarantine_row(path, last_good_end, f"unreadable archive from byte {last_good_end}: {type(err).__name__}: {err}")


def read_warc_table(path: str, max_page_bytes: int) -> pa.Table:
    return to_table(list(iter_warc_rows(path, max_page_bytes)))


@dataclass
class WarcSource:
    """WARC/ARC files (plain or gzip): HTML responses for extraction; WET conversion records as text."""

    paths: list[str]
    max_page_bytes: int = ExtractConfig().max_page_bytes
    type: str = field(default="warc", init=False)

    def rows(self, path: str, split: SplitRange = WHOLE, report: SplitReport | None = None) -> Iterator[dict]:
        """One row per record, read as a stream (a body is read up to max_page_bytes, never past it)."""
        return iter_warc_rows(path, self.max_page_bytes, split, report)

    def read(self, path: str) -> pa.Table:
        return read_warc_table(path, self.max_page_bytes)


@dataclass
class WetSource(WarcSource):
    """Common Crawl WET files: conversion records with extracted text (extraction is skipped)."""

    type: str = field(default="wet", init=False)
