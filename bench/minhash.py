"""MinHash signature throughput, one process (= one core): gristmill's vectorized signatures against
datatrove's MinhashDedupSignature and datasketch's MinHash on the same ~3 KB documents, after checking
that the three estimate the same Jaccard on the same pairs.

    .venv/bin/python bench/minhash.py [--docs 1000] [--datatrove-docs 300] [--data ../shared/data]

Text: wikitext-2 (test + valid) and Dolma CCNet web pages from ../shared/data/quality-text-samples, cut
into ~3 KB documents at line boundaries. All use word 5-grams and 112 permutations (datatrove: 14 × 8).
What is timed, per library: text → normalized words → shingles → signature.
  gristmill  filters.minhash.signatures over the batch (Arrow normalization, one xxh3 per distinct word,
             numpy folds and affine32 permutations)
  datatrove  MinhashDedupSignature.get_shingles + get_signature per document (its simplify_text, spaCy
             word tokenizer, xxhash64 per n-gram, 64-bit (a·h+b) mod p); its xxhash64 wrapper passes str,
             which xxhash 4 rejects, so the bench gives it the same hash of the utf-8 bytes
  datasketch MinHash(num_perm=112).update_batch(utf-8 n-grams) per document, shingles from str.split on
             the same normalized text (datasketch has no shingler; default sha1_hash32, affine32)
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import numpy as np
import xxhash

from gristmill.filters import minhash

N, NUM_PERM = 5, 112


def load_documents(data: Path, count: int, size: int = 3000) -> list[str]:
    samples = data / "quality-text-samples" / "positive"
    lines = []
    for name in ("wikitext-2-test.tokens.txt", "wikitext-2-valid.tokens.txt"):
        lines += [line for line in (samples / name).read_text(encoding="utf-8").splitlines() if line.strip() and not line.startswith(" =")]
    for name in sorted(samples.glob("dolma-*.jsonl")):
        for row in name.read_text(encoding="utf-8").splitlines():
            lines += json.loads(row)["text"].splitlines()
    docs, current = [], []
    length = 0
    for line in lines:
        current.append(line)
        length += len(line) + 1
        if length >= size:
            docs.append("\n".join(current))
            current, length = [], 0
            if len(docs) == count:
                break
    return docs


def mutate(rng: random.Random, text: str, rate: float) -> str:
    words = text.split()
    for i in range(len(words)):
        if rng.random() < rate:
            words[i] = "zq" + words[i]
    return " ".join(words)


def gristmill_signatures(docs: list[str]) -> np.ndarray:
    return minhash.signatures(docs, N, NUM_PERM, 1)[0]


def datatrove_signatures(docs: list[str]) -> np.ndarray:
    from datatrove.pipeline.dedup.minhash import MinhashConfig, MinhashDedupSignature

    step = MinhashDedupSignature(output_folder="/tmp/gristmill-bench-unused", config=MinhashConfig(n_grams=N, num_buckets=14, hashes_per_bucket=8))
    # datatrove 0.10.1 hands str to xxhash, which xxhash >= 4 refuses; the same hash on the utf-8 bytes.
    step._hash_func = lambda text: xxhash.xxh64_intdigest(text.encode())
    out = []
    for doc in docs:
        sig = step.get_signature(step.get_shingles(doc))
        out.append([h for bucket in sig for h in bucket])
    return np.array(out, np.uint64)


def datasketch_signatures(docs: list[str]) -> np.ndarray:
    from datasketch import MinHash

    permutations = MinHash(num_perm=NUM_PERM).permutations  # built once, as a user would reuse them
    word_lists = minhash.words(docs).to_pylist()  # normalization is not what is measured here
    out = []
    for words in word_lists:
        m = MinHash(num_perm=NUM_PERM, permutations=permutations, scheme="affine32")
        m.update_batch([" ".join(words[i:i + N]).encode() for i in range(len(words) - N + 1)])
        out.append(m.hashvalues)
    return np.array(out)


def timed(fn, docs, repeat: int = 1) -> tuple[np.ndarray, float]:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        out = fn(docs)
        best = min(best, time.perf_counter() - started)
    return out, best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--docs", type=int, default=1000)
    parser.add_argument("--datatrove-docs", type=int, default=300)
    parser.add_argument("--pairs", type=int, default=200)
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    args = parser.parse_args()

    docs = load_documents(args.data, args.docs)
    megabytes = sum(len(d.encode()) for d in docs) / 1e6

    # 1. Agreement: estimated Jaccard of the same pairs (a document and an edited copy).
    rng = random.Random(0)
    base = docs[: args.pairs]
    edited = [mutate(rng, d, rng.uniform(0.0, 0.08)) for d in base]
    estimates = {}
    for name, fn in (("gristmill", gristmill_signatures), ("datatrove", datatrove_signatures), ("datasketch", datasketch_signatures)):
        sigs = fn(base + edited)
        estimates[name] = np.mean(sigs[: args.pairs] == sigs[args.pairs:], axis=1)
    words = minhash.words(base + edited)
    shingles = [set(s) for s in minhash.shingles(words, N)]
    exact = np.array([minhash.exact_jaccard(shingles[i], shingles[i + args.pairs]) for i in range(args.pairs)])
    for name, est in estimates.items():
        error = np.abs(est - exact)
        print(f"{name:10s} estimated Jaccard vs exact: mean |error| {error.mean():.4f}, max {error.max():.3f}, bias {np.mean(est - exact):+.4f}")
        assert error.mean() < 0.05 and abs(np.mean(est - exact)) < 0.02, name
    gap = np.abs(estimates["gristmill"] - estimates["datatrove"])
    print(f"gristmill vs datatrove: mean |difference| {gap.mean():.4f} (range of exact Jaccard {exact.min():.2f}–{exact.max():.2f})")
    assert gap.mean() < 0.06

    # 2. Throughput, one process.
    results = {}
    _, seconds = timed(gristmill_signatures, docs, repeat=3)
    results["gristmill"] = (len(docs), megabytes, seconds)
    subset = docs[: args.datatrove_docs]
    sub_mb = sum(len(d.encode()) for d in subset) / 1e6
    _, seconds = timed(datatrove_signatures, subset)
    results["datatrove"] = (len(subset), sub_mb, seconds)
    _, seconds = timed(datasketch_signatures, docs)
    results["datasketch"] = (len(docs), megabytes, seconds)
    print(f"\n{'library':10s} {'docs':>6s} {'MB':>6s} {'s':>7s} {'MB/s/core':>10s} {'docs/s':>8s}")
    rate = {}
    for name, (count, mb, seconds) in results.items():
        rate[name] = mb / seconds
        print(f"{name:10s} {count:6d} {mb:6.2f} {seconds:7.3f} {rate[name]:10.2f} {count / seconds:8.0f}")
    print(f"\ngristmill / datatrove: {rate['gristmill'] / rate['datatrove']:.1f}×   "
          f"gristmill / datasketch: {rate['gristmill'] / rate['datasketch']:.1f}×")


if __name__ == "__main__":
    main()
