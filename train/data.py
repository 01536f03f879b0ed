"""The shard loader: one split's token stream, sampled as training windows.

A split ("train" or "val") is the concatenation of its shards' token streams in manifest order
(documents already end with eos, so concatenating keeps their boundaries). Batches are
(seq_len + 1)-token windows at random offsets drawn from a numpy Generator the caller owns, so a
batch sequence is fixed by the seed and, with the generator's state saved, resumable. Windows may
overlap and may cross shard boundaries; shards stay memory-mapped, so a split may be larger than RAM.

Also here: token counts per split and the unigram baseline a trained model's loss must beat.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from gristmill.schemas.shards import Manifest, ShardError, read_shard

# bincount widens tokens to int64, so count in chunks: 16M tokens is 128 MiB of scratch at most.
_COUNT_CHUNK_TOKENS = 1 << 24


class SplitLoader:
    """Random (x, y) batches of `seq_len` tokens from one split of a verified shards folder."""

    def __init__(self, shards_dir: str | os.PathLike, manifest: Manifest, split: str, seq_len: int, device: torch.device | str = "cpu"):
        self.split = split
        self.seq_len = seq_len
        self.device = torch.device(device)
        files = manifest.split_files(split)
        # Empty shards would give repeated offsets and confuse the shard lookup; they hold nothing anyway.
        self._shards = [t for t in (read_shard(Path(shards_dir) / f).tokens for f in files) if len(t)]
        self._offsets = np.cumsum([0] + [len(t) for t in self._shards], dtype=np.int64)
        self.n_tokens = int(self._offsets[-1])
        if self.n_tokens < seq_len + 1:
            raise ValueError(
                f"split {split!r} has {self.n_tokens} tokens in {len(files)} shard(s) under {shards_dir}; "
                f"a training window needs seq_len + 1 = {seq_len + 1}. Use a shorter seq_len or more data."
            )

    def sample(self, batch_size: int, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """x, y: int64 tensors (batch_size, seq_len) on the loader's device, y being x shifted by one."""
        # The last start that still leaves seq_len + 1 tokens is n_tokens - seq_len - 1 (integers' high is exclusive).
        starts = rng.integers(0, self.n_tokens - self.seq_len, size=batch_size)
        windows = torch.from_numpy(self._gather(starts))
        x, y = windows[:, :-1].contiguous(), windows[:, 1:].contiguous()
        if self.device.type == "cuda":
            # Pinned host memory lets the copy run asynchronously with the previous step's kernels.
            return x.pin_memory().to(self.device, non_blocking=True), y.pin_memory().to(self.device, non_blocking=True)
        return x, y

    def _gather(self, starts: np.ndarray) -> np.ndarray:
        positions = starts[:, None] + np.arange(self.seq_len + 1)
        if len(self._shards) == 1:
            return self._shards[0][positions].astype(np.int64)
        shard_of = np.searchsorted(self._offsets, positions, side="right") - 1
        windows = np.empty(positions.shape, dtype=np.int64)
        for i in np.unique(shard_of):
            in_shard = shard_of == i
            windows[in_shard] = self._shards[i][positions[in_shard] - self._offsets[i]]
        return windows

    def token_counts(self, vocab_size: int) -> np.ndarray:
        """How often each token id occurs in the split (length vocab_size); ShardError on an id >= vocab_size."""
        counts = np.zeros(vocab_size, dtype=np.int64)
        for tokens in self._shards:
            for begin in range(0, len(tokens), _COUNT_CHUNK_TOKENS):
                chunk = np.bincount(tokens[begin : begin + _COUNT_CHUNK_TOKENS], minlength=vocab_size)
                if len(chunk) > vocab_size:
                    raise ShardError(f"split {self.split!r} holds token id {len(chunk) - 1}, outside the vocabulary of {vocab_size}")
                counts += chunk
        return counts


def unigram_cross_entropy(train_counts: np.ndarray, eval_counts: np.ndarray, smoothing: float = 0.5) -> float:
    """Nats per token of the eval tokens under the train split's unigram distribution.

    The baseline a language model must beat: a model that learned nothing but token frequencies
    scores this. The train distribution is add-`smoothing` (default 0.5, the Jeffreys / KT estimate)
    over the whole vocabulary, so an eval token never seen in training costs a finite amount instead
    of making the cross-entropy infinite. With no eval tokens there is nothing to score: NaN.
    """
    n_eval = eval_counts.sum()
    if n_eval == 0:
        return float("nan")
    probs = (train_counts + smoothing) / (train_counts.sum() + smoothing * len(train_counts))
    return float(-(eval_counts * np.log(probs)).sum() / n_eval)
