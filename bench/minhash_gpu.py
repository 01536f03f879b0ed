"""MinHash signatures on a GPU (issue 7's GPU point): checks that the torch path
(`filters.minhash.signatures_from_hashes_torch`, what `dedup.gpu: true` uses) is bit-identical to the numpy
path on DEVICE, then times both: whole (text → signatures; normalization and shingle hashing stay on one
CPU core in both) and the permutation step alone (the part the GPU takes).

    python3 bench/minhash_gpu.py [--device cuda] [--docs 20000] [--json FILE]

It needs only numpy, pyarrow, xxhash and torch, so it runs on a bare GPU machine after
`pip install --no-deps --no-build-isolation -e .` (no network needed). Documents: ~3 KB of words drawn
from a Zipf vocabulary of 50,000 (a GPU machine has no ../shared data), plus the edge cases of
tests/integration/test_dedup.py (empty, fewer words than n). `--device cpu` runs the same check and timings with
torch on the CPU (how this script is tested without a GPU).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np

from gristmill.filters import minhash

N, NUM_PERM, SEED = 5, 112, 1  # the defaults of DedupConfig (bench/minhash.py uses the same)


def documents(count: int, seed: int = 0, words_per_doc: int = 500) -> list[str]:
    rng = np.random.default_rng(seed)
    vocabulary = np.array([f"w{i:x}" for i in range(50_000)])
    ranks = np.minimum(rng.zipf(1.2, size=(count, words_per_doc)), len(vocabulary)) - 1
    texts = [" ".join(vocabulary[row]) for row in ranks]
    return texts + ["", "a b", "one two three four", "Five Words, here: exactly five."]


def best_of(repeat: int, fn):
    best, out = float("inf"), None
    for _ in range(repeat):
        started = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - started)
    return out, best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--docs", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("no CUDA device: torch.cuda.is_available() is False (use --device cpu to test the script)")
    texts = documents(args.docs)
    megabytes = sum(len(t.encode()) for t in texts) / 1e6
    word_lists = minhash.words(texts)
    hashes, doc_of = minhash.shingle_hashes(word_lists, N)
    a, b = minhash.permutations(NUM_PERM, SEED)

    # 1. Bit-identical, whole and step (the first GPU call also warms the context up).
    expected = minhash.signatures(texts, N, NUM_PERM, SEED)[0]
    on_device = minhash.signatures(texts, N, NUM_PERM, SEED, device=args.device)[0]
    identical = bool(np.array_equal(on_device, expected)) and on_device.dtype == expected.dtype
    assert identical, f"{args.device} signatures differ from numpy in {int((on_device != expected).sum())} values"
    for seed in (0, 3, 2**31 - 1):  # other permutation draws, the same shingles
        pa_, pb_ = minhash.permutations(NUM_PERM, seed)
        assert np.array_equal(minhash.signatures_from_hashes_torch(hashes, doc_of, len(texts), pa_, pb_, args.device),
                              minhash.signatures_from_hashes(hashes, doc_of, len(texts), pa_, pb_)), seed

    # 2. Timings, best of --repeat.
    _, cpu_whole = best_of(args.repeat, lambda: minhash.signatures(texts, N, NUM_PERM, SEED))
    _, dev_whole = best_of(args.repeat, lambda: minhash.signatures(texts, N, NUM_PERM, SEED, device=args.device))
    _, cpu_step = best_of(args.repeat, lambda: minhash.signatures_from_hashes(hashes, doc_of, len(texts), a, b))
    _, dev_step = best_of(args.repeat, lambda: minhash.signatures_from_hashes_torch(hashes, doc_of, len(texts), a, b, args.device))
    _, front = best_of(args.repeat, lambda: minhash.shingle_hashes(minhash.words(texts), N))
    result = {
        "device": args.device, "device_name": torch.cuda.get_device_name() if args.device.startswith("cuda") else platform.processor() or "cpu",
        "torch": torch.__version__, "docs": len(texts), "megabytes": round(megabytes, 2), "shingles": int(len(hashes)),
        "num_perm": NUM_PERM, "n": N, "bit_identical": identical,
        "cpu_whole_s": round(cpu_whole, 4), "device_whole_s": round(dev_whole, 4),
        "cpu_whole_mb_s": round(megabytes / cpu_whole, 2), "device_whole_mb_s": round(megabytes / dev_whole, 2),
        "normalize_and_hash_s": round(front, 4),
        "cpu_permutation_s": round(cpu_step, 4), "device_permutation_s": round(dev_step, 4),
        "permutation_speedup": round(cpu_step / dev_step, 2), "whole_speedup": round(cpu_whole / dev_whole, 2),
    }
    print(f"{len(texts)} documents, {megabytes:.1f} MB, {len(hashes):,} shingles, {NUM_PERM} permutations; "
          f"{args.device} ({result['device_name']}) bit-identical to numpy: {identical}")
    print(f"whole (text → signatures): numpy {megabytes / cpu_whole:.1f} MB/s, {args.device} {megabytes / dev_whole:.1f} MB/s "
          f"({result['whole_speedup']}×; normalization + shingle hashing on one CPU core: {front:.3f} s of it)")
    print(f"permutation step: numpy {cpu_step:.3f} s, {args.device} {dev_step:.3f} s ({result['permutation_speedup']}×)")
    print(json.dumps(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
