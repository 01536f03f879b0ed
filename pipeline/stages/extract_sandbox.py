"""The extraction sandbox: a child process that decodes HTML bytes and runs the job's extraction engine.

Untrusted pages run here, not in the Ray worker: the parent (`ExtractText`) enforces a per-document
timeout by waiting on the pipe and kills and restarts this process when a page hangs; an address-space
limit (RLIMIT_AS) turns a memory blow-up into a crash of this process alone.

Protocol on stdin/stdout: frames of an 8-byte little-endian length and a pickle. The child first sends
("ready",); then for each request (body, content_type) it replies (text as UTF-8 bytes or None, charset,
whether the text has anything but whitespace): the parent hands the bytes to Arrow as they are, so a page
near max_page_bytes never becomes a Python str in the Ray worker (its str and that str's UTF-8 copy for
Arrow were ~14 MB more than the bytes).
`decode_html` and `extract_page` are importable so tests and benchmarks use the same decoding and call.
Every engine (`extract_engines.py`) runs here, behind the same decoding, limits and answers.
"""

from __future__ import annotations

import codecs
import pickle
import re
import struct
import sys

from gristmill.pipeline.stages.extract_engines import make_engine

FRAME = struct.Struct("<Q")
_META_CHARSET = re.compile(rb"""<meta[^>]{0,200}?charset\s*=\s*["']?\s*([A-Za-z0-9_.:\-]{2,40})""", re.I)
_HEADER_CHARSET = re.compile(r"charset\s*=\s*[\"']?([A-Za-z0-9_.:\-]{2,40})", re.I)
# Browsers decode these labels as windows-1252 (WHATWG Encoding Standard); so do we.
_WHATWG_ALIASES = {"iso-8859-1": "cp1252", "latin-1": "cp1252", "latin1": "cp1252", "ascii": "cp1252", "us-ascii": "cp1252"}


def _codec(label: str | None) -> str | None:
    if not label:
        return None
    label = label.strip().lower()
    label = _WHATWG_ALIASES.get(label, label)
    try:
        return codecs.lookup(label).name
    except LookupError:
        return None


def decode_html(body: bytes, content_type: str | None) -> tuple[str, str]:
    """Decode an HTML body; survives lying headers.

    Order: a BOM; strict UTF-8 (valid UTF-8 is almost never another encoding by accident, so it beats
    a header that claims latin-1); the HTTP header's charset, then the meta charset, each only if the
    bytes decode strictly; charset-normalizer's guess; windows-1252 with replacement.
    """
    for bom, name in ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16")):
        if body.startswith(bom):
            return body.decode(name, errors="replace").lstrip("\ufeff"), name
    try:
        return body.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    candidates = []
    if content_type and (match := _HEADER_CHARSET.search(content_type)):
        candidates.append(match.group(1))
    if match := _META_CHARSET.search(body[:4096]):
        candidates.append(match.group(1).decode("ascii", "ignore"))
    for label in candidates:
        if (name := _codec(label)) and name != "utf-8":
            try:
                return body.decode(name), name
            except (UnicodeDecodeError, LookupError):
                continue
    from charset_normalizer import from_bytes

    matches = list(from_bytes(body[:200_000]))
    if matches:
        best = min(matches, key=lambda m: (m.chaos, -m.coherence))
        # Short Western pages fit many Latin code pages equally; windows-1252 is by far the most common
        # mislabelled one on the web, so it wins any near-tie (it is absent for Cyrillic, CJK, …).
        near_tie = [m for m in matches if m.chaos <= best.chaos + 0.1 and m.coherence >= best.coherence - 0.05]
        chosen = "cp1252" if any(_codec(m.encoding) == "cp1252" for m in near_tie) else _codec(best.encoding)
        if chosen:
            return body.decode(chosen, errors="replace"), chosen
    return body.decode("cp1252", errors="replace"), "cp1252"


_BINARY_SHARE = 0.05
_BINARY_SAMPLE_CHARS = 65_536
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1a\x1c-\x1f\x7f\ufffd]")


def looks_binary(html: str, charset: str) -> bool:
    """True for a body that is not text: not UTF-8 (nor BOM-marked UTF-16), and over 5% control or
    U+FFFD characters in its first 64 KiB once decoded. Random bytes score ~13%, a real page in a legacy
    charset ~0. No engine sees such a body: trafilatura made "text" of about 1 random body in 40."""
    if charset in ("utf-8", "utf-16"):
        return False
    sample = html[:_BINARY_SAMPLE_CHARS]
    return bool(sample) and len(_CONTROL.findall(sample)) > _BINARY_SHARE * len(sample)


def write_frame(stream, obj) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(FRAME.pack(len(data)))  # two writes: header + data would copy a page near max_page_bytes
    stream.write(data)
    stream.flush()


def _read_exact(stream, n: int) -> bytes | None:
    buf = bytearray()
    while len(buf) < n:
        chunk = stream.read(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)


def extract_page(engine, body: bytes, content_type: str | None) -> tuple[str | None, str]:
    """(text or None, charset) of one page with an engine from `make_engine`."""
    extract, broken_tree_errors = engine
    html, charset = decode_html(body, content_type)
    if looks_binary(html, charset):
        return None, charset
    try:
        return extract(html, charset), charset
    except broken_tree_errors:
        return None, charset


def _utf8(text: str) -> bytes | str:
    """The text's UTF-8, or the str itself if it holds a lone surrogate (which Arrow rejects either way)."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return text


def main() -> None:
    memory_mb = int(sys.argv[1])
    options = pickle.loads(bytes.fromhex(sys.argv[2]))
    if memory_mb > 0:
        import resource

        limit = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    engine = make_engine(options)

    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    write_frame(stdout, ("ready",))
    while (header := _read_exact(stdin, FRAME.size)) is not None:
        body, content_type = pickle.loads(_read_exact(stdin, FRAME.unpack(header)[0]))
        text, charset = extract_page(engine, body, content_type)
        del body
        write_frame(stdout, (None if text is None else _utf8(text), charset, bool(text and text.strip())))


if __name__ == "__main__":
    main()
