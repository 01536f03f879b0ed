"""The shard loader: one split's token stream, sampled as training windows, step by step and rank by rank.

A split ("train" or "val") is the concatenation of its shards' token streams in manifest order
(documents already end with eos, so concatenating keeps their boundaries). A training window is
seq_len + 1 tokens at a random offset; windows may overlap and may cross shard boundaries, and shards
stay memory-mapped, so a split may be larger than RAM.

Which windows a step reads is a pure function of (seed, step): `StepSampler` draws the step's whole
global batch from a generator seeded with both, and rank r of a data-parallel group takes rows
r::world of it. So the data position is nothing but the step counter (a resumed run continues the
stream exactly, with no generator state to save), a prefetch thread may run ahead freely, and two
ranks together read exactly the batch one process would.

`Prefetcher` builds the next steps' batches in a background thread (pinned host memory on CUDA) and
counts how long the training loop waited for them. Also here: token counts per split and the unigram
baseline a trained model's loss must beat.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from pathlib import Path

import numpy as np
import torch

from gristmill.schemas.shards import Manifest, ShardError, read_shard

# bincount widens tokens to int64, so count in chunks: 16M tokens is 128 MiB of scratch at most.
_COUNT_CHUNK_TOKENS = 1 << 24


class SplitLoader:
    """Token windows from one split of a verified shards folder."""

    def __init__(self, shards_dir: str | os.PathLike, manifest: Manifest, split: str, seq_len: int):
        self.split = split
        self.seq_len = seq_len
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

    def random_starts(self, rng: np.random.Generator, count: int) -> np.ndarray:
        """`count` window offsets, uniform over every start that leaves seq_len + 1 tokens."""
        # The last such start is n_tokens - seq_len - 1, and integers' high is exclusive.
        return rng.integers(0, self.n_tokens - self.seq_len, size=count)

    def gather(self, starts: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """The windows at `starts`: int64 (len(starts), seq_len + 1), written into `out` when given.

        One slice copy per window (per piece, for a window crossing a shard boundary): no index
        array of batch x window positions to build, so a 512 x 1025 batch costs milliseconds.
        """
        width = self.seq_len + 1
        if out is None:
            out = np.empty((len(starts), width), dtype=np.int64)
        first_shard = np.searchsorted(self._offsets, starts, side="right") - 1
        for row, (start, shard) in enumerate(zip(starts.tolist(), first_shard.tolist())):
            filled = 0
            while filled < width:
                begin = start + filled - int(self._offsets[shard])
                piece = self._shards[shard][begin : begin + width - filled]
                out[row, filled : filled + len(piece)] = piece
                filled += len(piece)
                shard += 1
        return out

    def sample(self, batch_size: int, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """x, y: int64 CPU tensors (batch_size, seq_len), y being x shifted by one token."""
        windows = torch.from_numpy(self.gather(self.random_starts(rng, batch_size)))
        return windows[:, :-1].contiguous(), windows[:, 1:].contiguous()

    def token_counts(self, vocab_size: int) -> np.ndarray:
        """How often each token id occurs in the split (length vocab_size); ShardError on an id >= vocab_size."""
        counts = np.zeros(vocab_size, dtype=np.int64)
        for tokens in self._shards:
            for begin in range(0, len(tokens), _COUNT_CHUNK_TOKENS):
                chunk = np.bincount(tokens[begin : begin + _COUNT_CHUNK_TOKENS], minlength=vocab_size)
                if len(chunk) > vocab_size:
                    raise ShardError(
                        f"split {self.split!r} holds token id {len(chunk) - 1}, outside the model's embedding of "
                        f"{vocab_size} rows: the shards were made with a larger vocabulary than the model has"
                    )
                counts += chunk
        return counts


class StepSampler:
    """Each step's windows for one rank: step s's global batch of `global_batch` starts comes from a
    generator seeded with (seed, s), and rank r of `world` takes rows r::world.

    Every rank draws the same global batch, so the ranks' rows partition it: world processes with
    global_batch / world rows each read exactly the windows one process with all of them would.
    """

    def __init__(self, loader: SplitLoader, global_batch: int, seed: int, rank: int = 0, world: int = 1):
        if global_batch % world:
            raise ValueError(f"a global batch of {global_batch} windows does not split evenly over {world} ranks")
        if not 0 <= rank < world:
            raise ValueError(f"rank {rank} outside a world of {world}")
        self.loader, self.global_batch, self.seed, self.rank, self.world = loader, global_batch, seed, rank, world
        self.rows = global_batch // world

    def starts(self, step: int) -> np.ndarray:
        rng = np.random.default_rng([self.seed, step])
        return self.loader.random_starts(rng, self.global_batch)[self.rank :: self.world]

    def batch(self, step: int, pin_memory: bool = False) -> torch.Tensor:
        """This rank's windows for `step`: int64 (rows, seq_len + 1), in page-locked memory if `pin_memory`."""
        host = torch.empty((self.rows, self.loader.seq_len + 1), dtype=torch.int64, pin_memory=pin_memory)
        self.loader.gather(self.starts(step), out=host.numpy())
        return host


class Prefetcher:
    """Builds the batches of steps first .. last - 1 in a background thread, `depth` steps ahead.

    `get(step)` hands them over in order and adds the time it blocked to `wait_seconds`: the loader's
    share of the step time is that over the wall time. With `pin_device` (CUDA) the batches are in
    pinned memory, so their host-to-device copy runs asynchronously with the previous step's kernels.
    An error in the thread is raised again by `get`. Use as a context manager, so the thread stops
    with the loop.
    """

    def __init__(self, sampler: StepSampler, first: int, last: int, depth: int = 4, pin_device: torch.device | None = None):
        self._sampler, self._pin_device = sampler, pin_device
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self.wait_seconds = 0.0
        self._thread = threading.Thread(target=self._fill, args=(first, last), name="gristmill-prefetch", daemon=True)
        self._thread.start()

    def _fill(self, first: int, last: int) -> None:
        step = first
        try:
            if self._pin_device is not None:
                # The current device is per thread: without this, pinning would open a context on
                # cuda:0 from every rank's thread (torch's DataLoader pin thread guards the same way).
                torch.cuda.set_device(self._pin_device)
            for step in range(first, last):
                if not self._put((step, self._sampler.batch(step, pin_memory=self._pin_device is not None))):
                    return
        except BaseException as err:  # handed to the training loop, which raises it
            self._put((step, err))

    def _put(self, item: tuple) -> bool:
        """Queue `item`, waiting for room unless closed; False once closed."""
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def get(self, step: int) -> torch.Tensor:
        began = time.perf_counter()
        got_step, batch = self._queue.get()
        self.wait_seconds += time.perf_counter() - began
        if isinstance(batch, BaseException):
            raise batch
        if got_step != step:  # only a bug in the loop could cause this; never train on the wrong windows
            raise RuntimeError(f"prefetcher handed over step {got_step}'s batch for step {step}")
        return batch

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def __enter__(self) -> "Prefetcher":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


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
