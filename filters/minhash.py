"""MinHash signatures and exact-duplicate hashes, vectorized over a batch of documents.

Pure: text in, hashes out; no Ray, no config objects, no I/O.

- **Normalization** (`normalize`), as datatrove's `simplify_text` does it: lowercase, strip diacritics (NFD,
  drop combining marks), every number → `0`, punctuation and symbols → space, whitespace collapsed. Done
  with Arrow kernels over the whole batch.
- **Exact hash**: xxh3-128 (hex) of the normalized words joined by one space, so two documents that differ
  only in case, punctuation, numbers or spacing share it.
- **Shingles**: word n-grams of the normalized words. A word is hashed once (xxh3-64, once per distinct
  word in the batch); an n-gram's 32-bit hash folds its word hashes in order (`shingle_hash32` is the
  reference, one n-gram at a time). A document with 1..n-1 words is one shingle of all its words; a
  document without words has no signature.
- **Signatures** follow datasketch's `affine32` scheme (datasketch ≥ 2.0's default) exactly: the 32-bit
  shingle hash is pre-mixed with the MurmurHash3 32-bit finalizer, permuted with `a·h + b mod 2^32` (`a`
  odd), and the minimum kept per permutation, with `a`, `b` drawn as datasketch draws them from
  `RandomState(seed)`. So `datasketch.LeanMinHash(seed=seed, hashvalues=sig, scheme="affine32")` is the
  same sketch as `datasketch.MinHash(num_perm, seed, hashfunc=shingle_hash32)` updated with the
  document's shingles (space-joined n-gram strings), and `jaccard()` between them agrees.
  Stored as `num_perm` little-endian uint32 (`signature_bytes` / `signatures_from_bytes`).
"""

from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import xxhash

from gristmill.filters.pieces import Utf8Text, text_pieces


# Fold multiplier for n-gram hashes (odd, the 64-bit golden ratio): order-sensitive, wraps mod 2^64.
_FOLD = np.uint64(0x9E3779B97F4A7C15)
_MASK64 = (1 << 64) - 1
# Shingles per permutation block: the (num_perm × shingles) uint32 scratch stays ~4 MB, in cache.
_BLOCK_SHINGLES = 1 << 13
SIGNATURE_DTYPE = np.dtype("<u4")
EMPTY_HASH = np.uint32(0xFFFFFFFF)


def normalize(texts: pa.Array | pa.ChunkedArray | list) -> pa.Array:
    """Normalized text per document (null stays null): lowercase, no diacritics, numbers → 0,
    punctuation/symbols → space. Whitespace is collapsed later by the word split."""
    if not isinstance(texts, (pa.Array, pa.ChunkedArray)):
        texts = pa.array(texts, pa.large_string())
    out = pc.utf8_normalize(pc.utf8_lower(texts), form="NFD")
    out = pc.replace_substring_regex(out, r"\p{Mn}+", "")
    out = pc.replace_substring_regex(out, r"\p{Nd}+([.,]\p{Nd}+)?", "0")
    out = pc.replace_substring_regex(out, r"[\p{P}\p{S}]+", " ")
    return out.combine_chunks() if isinstance(out, pa.ChunkedArray) else out


def words(texts) -> pa.ListArray:
    """The normalized words of each document (an empty list for empty or null text)."""
    # Trimmed first: Arrow 26's utf8_split_whitespace, on a string that ends in whitespace and holds some
    # non-ASCII whitespace, now and then returns a whitespace character as the last word (a different
    # answer from run to run); on a trimmed string it is stable. Trimming drops only empty words.
    split = pc.utf8_split_whitespace(pc.utf8_trim_whitespace(normalize(texts)))
    split = pc.fill_null(split, pa.scalar([], split.type))
    # utf8_split_whitespace yields "" at the edges of text with leading/trailing space.
    flat = pc.list_flatten(split)
    if len(flat) and pc.any(pc.equal(pc.binary_length(flat), 0)).as_py():
        lengths = pc.list_value_length(split).to_numpy(zero_copy_only=False)
        doc = np.repeat(np.arange(len(split)), lengths)
        keep = pc.greater(pc.binary_length(flat), 0).to_numpy(zero_copy_only=False)
        counts = np.bincount(doc[keep], minlength=len(split))
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
        split = pa.ListArray.from_arrays(pa.array(offsets), flat.filter(pa.array(keep)))
    return split


def exact_hashes(word_lists: pa.ListArray) -> list[str | None]:
    """xxh3-128 hex of each document's normalized words joined by a space; None for a document without words."""
    joined = pc.binary_join(word_lists, pa.scalar(" ", word_lists.type.value_type)).to_pylist()
    return [xxhash.xxh3_128_hexdigest(text.encode()) if text else None for text in joined]


def word_hash(word: str) -> int:
    return xxhash.xxh3_64_intdigest(word.encode())


def _fmix64(h):
    h = h ^ (h >> np.uint64(33))
    h = h * np.uint64(0xFF51AFD7ED558CCD)
    h = h ^ (h >> np.uint64(33))
    h = h * np.uint64(0xC4CEB9FE1A85EC53)
    return h ^ (h >> np.uint64(33))


def _fmix32(h):
    h = h ^ (h >> np.uint32(16))
    h = h * np.uint32(0x85EBCA6B)
    h = h ^ (h >> np.uint32(13))
    h = h * np.uint32(0xC2B2AE35)
    return h ^ (h >> np.uint32(16))


def shingle_hash32(shingle: str | bytes) -> int:
    """The 32-bit hash of one shingle, given as its words joined by single spaces (the reference for the
    vectorized path; pass it to datasketch as `hashfunc`)."""
    if isinstance(shingle, bytes):
        shingle = shingle.decode()
    acc = 0
    for position, word in enumerate(shingle.split(" ")):
        h = word_hash(word)
        acc = h if position == 0 else ((acc * int(_FOLD)) & _MASK64) ^ h
    with np.errstate(over="ignore"):
        return int(_fmix64(np.uint64(acc)) >> np.uint64(32))


def shingles(word_lists: pa.ListArray, n: int) -> list[list[str]]:
    """Each document's shingles as space-joined strings (slow; for tests and reference checks)."""
    out = []
    for doc in word_lists.to_pylist():
        if not doc:
            out.append([])
        elif len(doc) < n:
            out.append([" ".join(doc)])
        else:
            out.append([" ".join(doc[i:i + n]) for i in range(len(doc) - n + 1)])
    return out


def _word_hashes(flat: pa.Array) -> np.ndarray:
    """xxh3-64 of each word (hashing each distinct word once)."""
    encoded = pc.dictionary_encode(flat)
    vocabulary = encoded.dictionary.to_pylist()
    table = np.fromiter((xxhash.xxh3_64_intdigest(w.encode()) for w in vocabulary), np.uint64, len(vocabulary))
    return table[encoded.indices.to_numpy(zero_copy_only=False)]


def _fold(word_h: np.ndarray, n: int) -> np.ndarray:
    """The 64-bit hash of each window of n consecutive words (len - n + 1 of them)."""
    count = len(word_h) - n + 1
    with np.errstate(over="ignore"):
        acc = word_h[:count].copy()
        for k in range(1, n):
            acc = (acc * _FOLD) ^ word_h[k:k + count]
    return acc


def _shingle32(acc: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        return (_fmix64(acc) >> np.uint64(32)).astype(np.uint32)


def shingle_hashes(word_lists: pa.ListArray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(hashes uint32, doc index int64) of every shingle of every document, vectorized."""
    flat = pc.list_flatten(word_lists)
    lengths = pc.list_value_length(word_lists).fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
    if len(flat) == 0:
        return np.empty(0, np.uint32), np.empty(0, np.int64)
    word_h = _word_hashes(flat)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    total = len(word_h)
    count = total - n + 1
    if count > 0:
        acc = _fold(word_h, n)
        # A shingle starting at position p of document d is valid when p + n <= length(d).
        doc_of = np.repeat(np.arange(len(lengths)), lengths)[:count]
        position = np.arange(count) - starts[doc_of]
        valid = position + n <= lengths[doc_of]
        acc, doc_of = acc[valid], doc_of[valid]
    else:
        acc, doc_of = np.empty(0, np.uint64), np.empty(0, np.int64)
    short = np.flatnonzero((lengths > 0) & (lengths < n))
    if len(short):  # documents shorter than n: one shingle of all their words
        extra = np.empty(len(short), np.uint64)
        with np.errstate(over="ignore"):
            for i, d in enumerate(short):
                h = word_h[starts[d]]
                for k in range(1, lengths[d]):
                    h = (h * _FOLD) ^ word_h[starts[d] + k]
                extra[i] = h
        acc = np.concatenate([acc, extra])
        doc_of = np.concatenate([doc_of, short])
        order = np.argsort(doc_of, kind="stable")
        acc, doc_of = acc[order], doc_of[order]
    return _shingle32(acc), doc_of.astype(np.int64)


def permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(a, b) uint32, drawn exactly as datasketch's affine32 scheme draws them."""
    gen = np.random.RandomState(seed)
    a = gen.randint(0, 1 << 31, num_perm, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
    b = gen.randint(0, 1 << 32, num_perm, dtype=np.uint32)
    return a, b


def signatures_from_hashes(hashes: np.ndarray, doc_of: np.ndarray, num_docs: int, a: np.ndarray,
                           b: np.ndarray) -> np.ndarray:
    """(num_docs, num_perm) uint32 min-hashes; rows of documents without shingles stay at 2^32-1.
    `doc_of` must be non-decreasing."""
    # Permutation-major (num_perm, shingles) blocks that fit in cache: the min-reduction then runs along
    # contiguous rows (6× faster than shingle-major on 2026 x86).
    out = np.full((len(a), num_docs), EMPTY_HASH, np.uint32)
    if len(hashes) == 0:
        return out.T.copy()
    with np.errstate(over="ignore"):
        mixed = _fmix32(hashes.astype(np.uint32))
    for start in range(0, len(mixed), _BLOCK_SHINGLES):
        block, docs = mixed[start:start + _BLOCK_SHINGLES], doc_of[start:start + _BLOCK_SHINGLES]
        with np.errstate(over="ignore"):
            permuted = a[:, None] * block[None, :]
            permuted += b[:, None]
        heads = np.concatenate([[0], np.flatnonzero(np.diff(docs)) + 1])
        mins = np.minimum.reduceat(permuted, heads, axis=1)
        rows = docs[heads]
        out[:, rows] = np.minimum(out[:, rows], mins)
    return np.ascontiguousarray(out.T)


def signatures_from_hashes_torch(hashes: np.ndarray, doc_of: np.ndarray, num_docs: int, a: np.ndarray,
                                 b: np.ndarray, device: str = "cuda") -> np.ndarray:
    """The same values as `signatures_from_hashes`, computed with torch on `device` (a GPU path). Arithmetic
    is int64 masked to 32 bits: a product that wraps int64 keeps its low 32 bits, so results are bit-identical."""
    import torch

    mask = 0xFFFFFFFF
    out = torch.full((len(a), num_docs), mask, dtype=torch.int64, device=device)
    if len(hashes):
        h = torch.as_tensor(hashes.astype(np.int64), device=device)
        h = h ^ (h >> 16)
        h = (h * 0x85EBCA6B) & mask
        h = h ^ (h >> 13)
        h = (h * 0xC2B2AE35) & mask
        h = h ^ (h >> 16)
        ta = torch.as_tensor(a.astype(np.int64), device=device)[:, None]
        tb = torch.as_tensor(b.astype(np.int64), device=device)[:, None]
        docs = torch.as_tensor(doc_of, device=device)
        step = 1 << 16
        for start in range(0, len(h), step):
            permuted = (ta * h[None, start:start + step] + tb) & mask
            index = docs[None, start:start + step].expand(len(a), -1)
            out.scatter_reduce_(1, index, permuted, reduce="amin", include_self=True)
    return np.ascontiguousarray(out.T.cpu().numpy().astype(np.uint32))


def signatures(texts, n: int, num_perm: int, seed: int, device: str | None = None) -> tuple[np.ndarray, np.ndarray, pa.ListArray]:
    """(signatures (docs, num_perm) uint32, has_shingles bool per doc, the normalized words). `device`: a
    torch device for the permutation step (None: numpy)."""
    word_lists = words(texts)
    hashes, doc_of = shingle_hashes(word_lists, n)
    a, b = permutations(num_perm, seed)
    sigs = _signatures(hashes, doc_of, len(word_lists), a, b, device)
    present = np.zeros(len(word_lists), bool)
    present[doc_of] = True
    return sigs, present, word_lists


# A text longer than this is signed a piece at a time (`document_signatures`): the batch path's Arrow and
# numpy scratch is ~20 bytes per byte of text, so a page near max_page_bytes would cost ~100 MB at once.
PIECE_CHARS = 1 << 17
_PIECE_CUT = re.compile(r"[ \n]")  # unchanged by `normalize` and a separator of the word split


def document_signatures(texts, n: int, num_perm: int, seed: int, device: str | None = None,
                        rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, list[str | None]]:
    """(signatures, has_shingles, exact hash) per document of `texts` (or of `texts[rows]`, in that order):
    what `signatures` and `exact_hashes` give, with each text longer than PIECE_CHARS signed a piece at a
    time (`long_signature`) straight from its Arrow buffer, so the memory of one call stays bounded by the
    batch's short texts plus one piece: a long text is never copied whole, as Arrow or as Python."""
    if not isinstance(texts, (pa.Array, pa.ChunkedArray)):
        texts = pa.array(texts, pa.large_string())
    rows = np.arange(len(texts)) if rows is None else np.asarray(rows, np.int64)
    lengths = pc.fill_null(pc.utf8_length(texts), 0).to_numpy(zero_copy_only=False)[rows]
    long = np.flatnonzero(lengths > PIECE_CHARS)
    if not long.size:
        chosen = texts if len(rows) == len(texts) and np.array_equal(rows, np.arange(len(texts))) \
            else texts.take(pa.array(rows, pa.int64()))
        sigs, present, word_lists = signatures(chosen, n, num_perm, seed, device)
        return sigs, present, exact_hashes(word_lists)
    short = np.flatnonzero(lengths <= PIECE_CHARS)
    sigs = np.empty((len(rows), num_perm), np.uint32)
    present = np.zeros(len(rows), bool)
    exact: list[str | None] = [None] * len(rows)
    if short.size:
        some, has, word_lists = signatures(texts.take(pa.array(rows[short], pa.int64())), n, num_perm, seed, device)
        sigs[short], present[short] = some, has
        for i, digest in zip(short.tolist(), exact_hashes(word_lists)):
            exact[i] = digest
    a, b = permutations(num_perm, seed)
    values = list(Utf8Text.of_values(texts))  # slices of the column's own buffer: no copy
    for i in long.tolist():
        sigs[i], present[i], exact[i] = long_signature(values[int(rows[i])], n, a, b, device)
    return sigs, present, exact


def long_signature(text: str | Utf8Text, n: int, a: np.ndarray, b: np.ndarray, device: str | None = None
                   ) -> tuple[np.ndarray, bool, str | None]:
    """(signature, has_shingles, exact hash) of one text (a str, or UTF-8 bytes read a piece at a time),
    computed a piece of about PIECE_CHARS at a time: the same values as the whole text in `signatures`
    and `exact_hashes`.

    Pieces are cut at a space or newline, which normalization keeps and the word split separates, so the
    text's words are the pieces' words in order. Each piece's shingles are folded with the last n-1 word
    hashes of the pieces before it, so every shingle of the text is seen once or more (a minimum does not
    mind twice); the exact hash streams the words joined by spaces through one xxh3-128."""
    signature = np.full(len(a), EMPTY_HASH, np.uint32)
    digest = xxhash.xxh3_128()
    tail = np.empty(0, np.uint64)  # the last n-1 word hashes so far
    total = 0
    for piece in text_pieces(text, PIECE_CHARS, _PIECE_CUT):
        word_lists = words([piece])
        flat = pc.list_flatten(word_lists)
        if not len(flat):
            continue
        if total:
            digest.update(b" ")
        digest.update(pc.binary_join(word_lists, pa.scalar(" ", word_lists.type.value_type))[0].as_buffer())
        window = np.concatenate([tail, _word_hashes(flat)])
        if len(window) >= n:
            hashes = _shingle32(_fold(window, n))
            signature = np.minimum(signature, _signatures(hashes, np.zeros(len(hashes), np.int64), 1, a, b, device)[0])
        tail = window[max(0, len(window) - (n - 1)):] if n > 1 else window[:0]
        total += len(flat)
    if not total:
        return signature, False, None
    if total < n:  # fewer words than n: one shingle of all of them (all in `tail`)
        hashes = _shingle32(_fold(tail, total))
        signature = _signatures(hashes, np.zeros(1, np.int64), 1, a, b, device)[0]
    return signature, True, digest.hexdigest()


def _signatures(hashes, doc_of, num_docs, a, b, device):
    if device is None:
        return signatures_from_hashes(hashes, doc_of, num_docs, a, b)
    return signatures_from_hashes_torch(hashes, doc_of, num_docs, a, b, device)


def signature_bytes(sigs: np.ndarray) -> list[bytes]:
    """One little-endian uint32 byte string per row."""
    sigs = np.ascontiguousarray(sigs, dtype=SIGNATURE_DTYPE)
    return [row.tobytes() for row in sigs]


def signatures_from_bytes(values: list[bytes] | pa.Array, num_perm: int) -> np.ndarray:
    """Back from `signature_bytes` (all values must be present)."""
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        if isinstance(values, pa.ChunkedArray):
            values = values.combine_chunks()
        if values.null_count:
            raise ValueError("null signature")
        values = values.cast(pa.binary()) if values.type != pa.binary() else values
        buffer = values.buffers()[2]
        offsets = np.frombuffer(values.buffers()[1], np.int32)[values.offset:values.offset + len(values) + 1]
        data = np.frombuffer(buffer, np.uint8)[offsets[0]:offsets[-1]]
        if len(data) != len(values) * num_perm * 4:
            raise ValueError("signature length does not match num_perm")
        return data.view(SIGNATURE_DTYPE).reshape(len(values), num_perm)
    return np.frombuffer(b"".join(values), SIGNATURE_DTYPE).reshape(len(values), num_perm)


def estimated_jaccard(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Share of equal min-hashes, row by row (datasketch's `jaccard`)."""
    return np.mean(left == right, axis=-1)


def band_keys(sigs: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """(docs, bands) uint64: a 64-bit hash of each band's `rows` min-hashes (band i = columns i·r … i·r+r-1,
    as datasketch's MinHashLSH slices them). Equal bands → equal keys; distinct bands collide with
    probability ~2^-64."""
    sigs = sigs.astype(np.uint64)
    out = np.empty((len(sigs), bands), np.uint64)
    with np.errstate(over="ignore"):
        for band in range(bands):
            acc = np.full(len(sigs), np.uint64(band + 1))
            for column in range(band * rows, (band + 1) * rows):
                acc = _fmix64((acc * _FOLD) ^ sigs[:, column])
            out[:, band] = acc
    return out


def exact_jaccard(left: set, right: set) -> float:
    union = len(left | right)
    return len(left & right) / union if union else 0.0
