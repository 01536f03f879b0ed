"""The training loop: config, data parallelism, optimizer, LR schedule, evaluation, checkpoints, command line.

`train(cfg)` reads like its phases: join the data-parallel group when torchrun started several
processes, verify the shards, load the splits and their unigram baseline, build the model and
optimizer (or restore them from a checkpoint), loop (warmup + cosine LR, bf16 autocast on CUDA,
gradient accumulation, gradient clipping, periodic logging, evaluation and checkpoints), evaluate
once more and save the final checkpoint. The project CLI calls `train(cfg)`;
`python -m gristmill.train.train SHARDS --steps N` runs the same thing standalone, and
`torchrun --nproc-per-node G -m gristmill.train.train SHARDS ...` runs it on G GPUs.

`batch_size` is the global batch: windows per optimizer step over all ranks and micro-batches. Which
windows a step reads depends only on (seed, step) (see `data.StepSampler`), so the loss curve is the
same whatever the number of ranks or micro-batches (up to float summation order), and a run resumed
from a checkpoint at step k reads exactly what the uninterrupted run read from step k on.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from gristmill.schemas.shards import Manifest, ShardError, verify_shards
from gristmill.train.data import Prefetcher, SplitLoader, StepSampler, unigram_cross_entropy
from gristmill.train.model import GPT, GPTConfig

CHECKPOINT_NAME = "ckpt.pt"
METRICS_NAME = "metrics.jsonl"
# Dense bf16 tensor-core peak of an H100 SXM (989.4 TFLOP/s; the 1979 on the datasheet assumes sparsity).
H100_BF16_PEAK_TFLOPS = 989.0
# What a resumed run must share with its checkpoint besides the model's shape: these fix the data
# stream and the loss curve. Everything else (device, logging, micro-batching, compile, the number of
# ranks) may change between the interrupted run and its resumption.
_RESUME_MUST_MATCH = ("steps", "batch_size", "lr", "min_lr", "warmup_steps", "weight_decay", "grad_clip", "seed")


@dataclass
class TrainConfig:
    """One flat, typed training config; saved into the checkpoint. Defaults suit a CPU smoke run."""

    shards_dir: str
    steps: int = 300
    batch_size: int = 16  # windows per optimizer step over all ranks and micro-batches (the global batch)
    grad_accum_steps: int = 1  # micro-batches per step on each rank: batch_size / (ranks x this) windows each
    seq_len: int = 128
    n_layer: int = 2
    n_head: int = 4
    n_embd: int = 128
    lr: float = 3e-3
    min_lr: float = 3e-4
    warmup_steps: int = 20
    weight_decay: float = 0.1
    grad_clip: float = 1.0  # max global gradient norm; 0 turns clipping off
    eval_every: int = 100  # steps between validation passes; 0 evaluates only at the end
    eval_batches: int = 10
    seed: int = 1337
    device: str = "auto"  # "auto" picks cuda when torch sees one, else cpu
    out_dir: str | None = None  # where ckpt.pt and metrics.jsonl go; None saves nothing
    ckpt_every: int = 1000  # steps between checkpoints (with out_dir); 0 saves only at the end
    resume: bool = False  # continue from out_dir/ckpt.pt when there is one (else start fresh, saying so)
    log_every: int = 10
    vocab_size: int | None = None  # None: the manifest's; larger pads the embedding, smaller is refused
    dropout: float = 0.0
    compile: bool = False  # torch.compile the model (CUDA; needs a C++ compiler and Triton)
    peak_tflops: float | None = None  # the accelerator's peak for MFU; None: H100 bf16 dense on CUDA, no MFU on CPU

    def __post_init__(self) -> None:
        # Plain strings, so the config pickles into a checkpoint that torch.load(weights_only=True) reads.
        self.shards_dir = os.fspath(self.shards_dir)
        self.out_dir = None if self.out_dir is None else os.fspath(self.out_dir)
        for name in ("steps", "batch_size", "grad_accum_steps", "seq_len", "eval_batches", "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("warmup_steps", "eval_every", "ckpt_every", "grad_clip", "weight_decay", "min_lr"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative, got {getattr(self, name)}")
        if not 0 < self.lr or self.min_lr > self.lr:
            raise ValueError(f"need 0 < min_lr <= lr, got lr={self.lr}, min_lr={self.min_lr}")
        if self.batch_size % self.grad_accum_steps:
            raise ValueError(
                f"batch_size {self.batch_size} does not split into grad_accum_steps {self.grad_accum_steps} equal micro-batches"
            )
        if self.resume and self.out_dir is None:
            raise ValueError("resume needs out_dir: the folder whose ckpt.pt to continue")
        if self.peak_tflops is not None and self.peak_tflops <= 0:
            raise ValueError(f"peak_tflops must be positive, got {self.peak_tflops}")


@dataclass(frozen=True)
class DataParallel:
    """This process's place in the data-parallel group (rank 0 of 1 without torchrun)."""

    rank: int = 0
    world: int = 1
    owns_group: bool = False  # whether train() created the process group, and so must destroy it

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def mean(self, tensor: torch.Tensor) -> torch.Tensor:
        """The mean of `tensor` over the ranks, in place (a no-op for one process)."""
        if self.world > 1:
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)  # SUM then divide: gloo has no AVG
            tensor /= self.world
        return tensor


def train(cfg: TrainConfig) -> dict:
    """Train a GPT on the shards in `cfg.shards_dir`; return the run's numbers.

    Raises ShardError (from verify_shards, unchanged) before any training if a shard or the
    tokenizer does not match the manifest, and ValueError for a config the data cannot support or a
    checkpoint that does not fit the run. Returns final_val_loss, unigram_entropy (nats/token),
    tokens_per_s (global), loader_wait_fraction, mfu (None without a peak), steps, start_step,
    losses (global train loss per step run here), device, world_size, eval_split.
    """
    group, device = join_data_parallel(cfg.device)
    try:
        result = _train(cfg, group, device)
        if group.owns_group:
            # Every rank reaches here before any tears its group down: a gloo rank that destroyed
            # its pairs while another still wrote its checkpoint aborted ("terminate called
            # without an active exception") about one run in six.
            dist.barrier()
        return result
    finally:
        if group.owns_group:
            dist.destroy_process_group()


def _train(cfg: TrainConfig, group: DataParallel, device: torch.device) -> dict:
    say = _printer(group)
    out_dir = None if cfg.out_dir is None else Path(cfg.out_dir)

    # Phase 1: trust the data, then fix the vocabulary and the micro-batch.
    manifest = verify_shards(cfg.shards_dir)
    vocab_size = resolve_vocab_size(cfg.vocab_size, manifest)
    micro_batch = micro_batch_size(cfg.batch_size, group.world, cfg.grad_accum_steps)
    say(
        f"shards: {cfg.shards_dir} ({len(manifest.shards)} shards, vocab {manifest.vocab_size}) | device: {device}"
        + (f" x {group.world} ranks" if group.world > 1 else "")
        + f" | batch {cfg.batch_size} windows = {group.world} rank(s) x {cfg.grad_accum_steps} micro-batch(es) x {micro_batch}"
    )

    # Phase 2: the splits and the baseline the model must beat.
    train_data = SplitLoader(cfg.shards_dir, manifest, "train", cfg.seq_len)
    eval_split = "val" if manifest.split_files("val") else "train"
    if eval_split == "train":
        say("no val shards in the manifest: evaluating on the train split (the loss measures fit, not generalisation)")
    eval_data = train_data if eval_split == "train" else SplitLoader(cfg.shards_dir, manifest, "val", cfg.seq_len)
    unigram_entropy = unigram_cross_entropy(train_data.token_counts(vocab_size), eval_data.token_counts(vocab_size))
    say(
        f"tokens: train {train_data.n_tokens:,} | {eval_split} {eval_data.n_tokens:,} "
        f"| unigram entropy {unigram_entropy:.4f} nats/token"
    )

    # Phase 3: model and optimizer, fresh or from the checkpoint. Seed torch before building the
    # model so its init is reproducible (and the same on every rank; DDP broadcasts rank 0's anyway).
    torch.manual_seed(cfg.seed)
    model_config = GPTConfig(
        n_layer=cfg.n_layer, n_head=cfg.n_head, n_embd=cfg.n_embd, seq_len=cfg.seq_len, vocab_size=vocab_size,
        dropout=cfg.dropout,
    )
    model = GPT(model_config).to(device)
    optimizer = make_optimizer(model, cfg.weight_decay, cfg.lr, device)
    start_step = 0
    checkpoint_path = None if out_dir is None else out_dir / CHECKPOINT_NAME
    if cfg.resume and checkpoint_path.exists():
        checkpoint = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
        check_resumable(checkpoint, cfg, model_config, manifest, checkpoint_path)
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        start_step = checkpoint["step"]
        del checkpoint
        say(f"resumed from {checkpoint_path} at step {start_step}: the data stream continues from there")
    elif cfg.resume:
        say(f"resume: no {checkpoint_path} yet, starting from step 0")
    elif checkpoint_path is not None and checkpoint_path.exists():
        say(f"starting from step 0: {checkpoint_path} will be overwritten (pass resume to continue it)")
    # Compile, then wrap in DDP (nanoGPT's order); `model` stays the plain module to save and evaluate.
    step_model = torch.compile(model) if cfg.compile else model
    ddp = None
    if group.world > 1:
        step_model = ddp = DistributedDataParallel(step_model, device_ids=[device.index] if device.type == "cuda" else None)
    autocast = mixed_precision(device)
    peak_tflops = cfg.peak_tflops or (H100_BF16_PEAK_TFLOPS if device.type == "cuda" else None)
    flops_per_token = model.flops_per_token()
    say(
        f"model: {model.num_params():,} parameters, {flops_per_token:,} FLOPs/token"
        + (f" | MFU against {peak_tflops:g} TFLOP/s" if peak_tflops else "")
    )

    # Phase 4: the loop. A step's windows depend only on (seed, step), so the prefetch thread can run
    # ahead and a resumed run picks the stream up at its step.
    sampler = StepSampler(train_data, cfg.batch_size, cfg.seed, group.rank, group.world)
    tokens_per_step = cfg.batch_size * cfg.seq_len
    metrics = MetricsLog(out_dir / METRICS_NAME, start_step) if out_dir is not None and group.is_main else None
    losses: list[float] = []
    pending: list[tuple[int, float, torch.Tensor]] = []  # (step, lr, loss on the device): one sync per log, not per step
    clock = TrainClock(device)
    # Progress points: (tokens, train seconds, loader wait seconds) since this invocation started.
    origin = last_log = after_first_step = (start_step * tokens_per_step, 0.0, 0.0)
    model.train()
    with Prefetcher(sampler, start_step, cfg.steps, pin_device=device if device.type == "cuda" else None) as prefetch:
        clock.start()
        for step in range(start_step, cfg.steps):
            lr = cosine_lr(step, lr=cfg.lr, min_lr=cfg.min_lr, warmup_steps=cfg.warmup_steps, total_steps=cfg.steps)
            for param_group in optimizer.param_groups:
                param_group["lr"] = lr
            if cfg.dropout > 0:
                # Dropout masks from (seed, step, rank) too, so a resumed run draws the same ones.
                torch.manual_seed(int(np.random.SeedSequence([cfg.seed, step, group.rank]).generate_state(1)[0]))
            windows = prefetch.get(step).to(device, non_blocking=True)
            optimizer.zero_grad(set_to_none=True)
            step_loss = accumulate_gradients(step_model, ddp, windows.split(micro_batch), autocast)
            if cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            optimizer.step()

            done = step + 1
            pending.append((done, lr, step_loss))
            checkpoint_due = out_dir is not None and cfg.ckpt_every and done % cfg.ckpt_every == 0 and done < cfg.steps
            log_due = done == start_step + 1 or done % cfg.log_every == 0 or done == cfg.steps
            if log_due or checkpoint_due:
                losses += flush_losses(pending, group, metrics)
            if log_due:
                now = (done * tokens_per_step, clock.seconds(), prefetch.wait_seconds)
                rate, wait = throughput(last_log, now)
                if done == start_step + 1:
                    # The first step pays for allocator and kernel warm-up (and compilation); totals leave it out.
                    after_first_step = now
                mfu = flops_per_token * rate / group.world / (peak_tflops * 1e12) if peak_tflops else None
                say(
                    f"step {done:6d} | loss {losses[-1]:.4f} | lr {lr:.2e} | {rate:,.0f} tok/s | loader wait {wait:.1%}"
                    + (f" | mfu {mfu:.1%}" if mfu is not None else "")
                )
                if metrics is not None:
                    metrics.write({"step": done, "tokens_per_s": rate, "loader_wait_fraction": wait, "mfu": mfu})
                last_log = now
            if checkpoint_due:
                with clock.paused():
                    if group.is_main:
                        path = save_checkpoint(out_dir, model, optimizer, model_config, cfg, done, manifest)
                        say(f"step {done:6d} | checkpoint {path}")
            if cfg.eval_every and done % cfg.eval_every == 0 and done < cfg.steps:
                with clock.paused():
                    val_loss = evaluate(model, eval_data, cfg, micro_batch, group, autocast, device)
                say(f"step {done:6d} | {eval_split} loss {val_loss:.4f}")
                if metrics is not None:
                    metrics.write({"step": done, f"{eval_split}_loss": val_loss})
        clock.stop()

    # Phase 5: the final evaluation, beside the baseline; the totals; the checkpoint.
    val_loss = evaluate(model, eval_data, cfg, micro_batch, group, autocast, device)
    say(f"final {eval_split} loss {val_loss:.4f} | unigram entropy {unigram_entropy:.4f} nats/token")
    end = (cfg.steps * tokens_per_step, clock.elapsed, prefetch.wait_seconds)
    tokens_per_s, loader_wait = throughput(after_first_step if cfg.steps - start_step > 1 else origin, end)
    mfu = flops_per_token * tokens_per_s / group.world / (peak_tflops * 1e12) if peak_tflops else None
    say(
        f"throughput: {tokens_per_s:,.0f} tok/s | loader wait {loader_wait:.2%}"
        + (f" | mfu {mfu:.1%} of {peak_tflops:g} TFLOP/s per device" if mfu is not None else "")
        + (" (first step excluded)" if cfg.steps - start_step > 1 else "")
    )
    if metrics is not None:
        metrics.write({"step": cfg.steps, f"{eval_split}_loss": val_loss, "final": True})
        metrics.close()
    if out_dir is not None and group.is_main:
        path = save_checkpoint(out_dir, model, optimizer, model_config, cfg, cfg.steps, manifest)
        say(f"checkpoint: {path}")
    return {
        "final_val_loss": val_loss,
        "unigram_entropy": unigram_entropy,
        "tokens_per_s": tokens_per_s,
        "loader_wait_fraction": loader_wait,
        "mfu": mfu,
        "steps": cfg.steps,
        "start_step": start_step,
        "losses": losses,
        "device": str(device),
        "world_size": group.world,
        "eval_split": eval_split,
    }


def join_data_parallel(device_name: str) -> tuple[DataParallel, torch.device]:
    """Join the process group torchrun set up (WORLD_SIZE > 1) and pick this rank's device.

    NCCL with one GPU per rank (cuda:LOCAL_RANK) on CUDA, gloo on CPU. A group the caller already
    initialised is used as it is and left to the caller to destroy.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    device = pick_device(device_name)
    if world == 1 and not dist.is_initialized():
        return DataParallel(), device
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    owns = not dist.is_initialized()
    if owns:
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo", timeout=timedelta(minutes=10))
    return DataParallel(rank=dist.get_rank(), world=dist.get_world_size(), owns_group=owns), device


def micro_batch_size(batch_size: int, world: int, grad_accum_steps: int) -> int:
    """Windows per forward pass: the global batch split over ranks, then over micro-batches."""
    if batch_size % (world * grad_accum_steps):
        raise ValueError(
            f"batch_size {batch_size} (the global batch) must be a multiple of ranks x grad_accum_steps = "
            f"{world} x {grad_accum_steps} = {world * grad_accum_steps}"
        )
    return batch_size // (world * grad_accum_steps)


def resolve_vocab_size(requested: int | None, manifest: Manifest) -> int:
    """The model's vocabulary: the manifest's, or a larger requested size (e.g. padded to a multiple of 64)."""
    if requested is None:
        return manifest.vocab_size
    if requested < manifest.vocab_size:
        raise ValueError(
            f"vocab_size {requested} is smaller than the shards' vocabulary of {manifest.vocab_size} "
            "(from manifest.json): token ids past the embedding would crash training. Leave vocab_size unset."
        )
    return requested


def check_resumable(checkpoint: dict, cfg: TrainConfig, model_config: GPTConfig, manifest: Manifest, path: Path) -> None:
    """ValueError naming what differs if `checkpoint` cannot continue this run exactly."""
    if "train_shards_sha256" not in checkpoint:
        raise ValueError(f"{path} was written by an older trainer that sampled windows differently: it cannot continue this run")
    saved_model = GPTConfig.from_dict(checkpoint["model_config"])
    if saved_model.vocab_size < manifest.vocab_size:
        raise ValueError(
            f"{path}: the checkpoint's embedding has {saved_model.vocab_size} rows, but the shards' vocabulary "
            f"has {manifest.vocab_size} tokens: ids past the embedding cannot be trained on"
        )
    saved = checkpoint["model_config"] | {k: checkpoint["train_config"][k] for k in _RESUME_MUST_MATCH}
    wanted = model_config.to_dict() | {k: getattr(cfg, k) for k in _RESUME_MUST_MATCH}
    if differ := [f"{k} {saved[k]!r} (checkpoint) vs {wanted[k]!r} (now)" for k in wanted if saved.get(k) != wanted[k]]:
        raise ValueError(
            f"{path} cannot continue this run; " + "; ".join(differ) + ". Use the checkpoint's settings or a new out_dir."
        )
    if checkpoint["tokenizer_sha256"] != manifest.tokenizer_sha256:
        raise ValueError(
            f"{path}: trained with tokenizer sha256 {checkpoint['tokenizer_sha256']}, the shards use {manifest.tokenizer_sha256}"
        )
    if checkpoint["train_shards_sha256"] != _train_shard_digests(manifest):
        raise ValueError(
            f"{path}: trained on other train shards than {cfg.shards_dir} holds (sha256 differ): the data stream would not continue"
        )


def pick_device(name: str) -> torch.device:
    """'auto' is cuda when torch sees a GPU, else cpu; an explicit 'cuda' without one is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} requested, but this torch ({torch.__version__}) sees no CUDA device")
    return device


def mixed_precision(device: torch.device) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA (no loss scaling needed, unlike fp16), TF32 for what stays fp32; plain fp32 elsewhere."""
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def make_optimizer(model: torch.nn.Module, weight_decay: float, lr: float, device: torch.device) -> torch.optim.AdamW:
    """AdamW that decays matrices (matmul weights, embeddings) but not norms or biases; fused on CUDA."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    # The fused kernel updates every parameter in one launch; it needs all of them on CUDA.
    return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.95), fused=device.type == "cuda")


def cosine_lr(step: int, *, lr: float, min_lr: float, warmup_steps: int, total_steps: int) -> float:
    """Linear warmup to `lr` over `warmup_steps`, then cosine decay to `min_lr` at `total_steps`."""
    if step < warmup_steps:
        return lr * (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (lr - min_lr)


@torch.no_grad()
def evaluate(
    model: GPT,
    data: SplitLoader,
    cfg: TrainConfig,
    micro_batch: int,
    group: DataParallel,
    autocast: contextlib.AbstractContextManager,
    device: torch.device,
) -> float:
    """Mean loss over `cfg.eval_batches` global batches of `cfg.batch_size` windows, in micro-batches.

    The windows come from a fresh generator seeded the same way every time, so successive
    evaluations score the same tokens and are comparable; each rank scores its rows r::world of
    every batch and the ranks average, which is the mean over the whole batch (equal-sized parts).
    """
    rng = np.random.default_rng(cfg.seed + 1)
    model.eval()
    total, parts = torch.zeros((), device=device), 0
    for _ in range(cfg.eval_batches):
        starts = data.random_starts(rng, cfg.batch_size)[group.rank :: group.world]
        windows = torch.from_numpy(data.gather(starts)).to(device)
        for chunk in windows.split(micro_batch):
            with autocast:
                _, loss = model(chunk[:, :-1].contiguous(), chunk[:, 1:].contiguous())
            total += loss
            parts += 1
    model.train()
    return group.mean(total / parts).item()


def accumulate_gradients(
    step_model: torch.nn.Module,
    ddp: DistributedDataParallel | None,
    micro_batches: tuple[torch.Tensor, ...],
    autocast: contextlib.AbstractContextManager,
) -> torch.Tensor:
    """Forward and backward each micro-batch of windows; the summed gradients are those of the mean
    loss over all of them (equal sizes). Returns that mean loss, on the device."""
    step_loss = torch.zeros((), device=micro_batches[0].device)
    for i, windows in enumerate(micro_batches):
        if ddp is not None:
            # All-reduce the gradients once per step, on the last micro-batch, not after every one.
            ddp.require_backward_grad_sync = i == len(micro_batches) - 1
        # Contiguous inputs: a compiled model fed the strided slices ran 100x slower (CPU inductor).
        x, y = windows[:, :-1].contiguous(), windows[:, 1:].contiguous()
        with autocast:
            _, loss = step_model(x, y)
        loss = loss / len(micro_batches)
        loss.backward()
        step_loss += loss.detach()
    return step_loss


def flush_losses(
    pending: list[tuple[int, float, torch.Tensor]], group: DataParallel, metrics: MetricsLog | None
) -> list[float]:
    """The pending steps' losses averaged over the ranks (one collective, one sync), logged; `pending` emptied."""
    values = group.mean(torch.stack([loss for _, _, loss in pending]).float()).tolist()
    if metrics is not None:
        for (step, lr, _), value in zip(pending, values):
            metrics.write({"step": step, "loss": value, "lr": lr})
    pending.clear()
    return values


def throughput(before: tuple[int, float, float], after: tuple[int, float, float]) -> tuple[float, float]:
    """(tokens/s, loader wait fraction) between two (tokens, train seconds, loader wait seconds) points."""
    seconds = after[1] - before[1]
    if seconds <= 0:
        return 0.0, 0.0
    return (after[0] - before[0]) / seconds, min(1.0, (after[2] - before[2]) / seconds)


def save_checkpoint(
    out_dir: Path,
    model: GPT,
    optimizer: torch.optim.Optimizer,
    model_config: GPTConfig,
    cfg: TrainConfig,
    step: int,
    manifest: Manifest,
) -> Path:
    """Write out_dir/ckpt.pt whole or not at all (temporary name, then rename)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / CHECKPOINT_NAME
    checkpoint = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "model_config": model_config.to_dict(),
        "train_config": asdict(cfg),
        # Steps done, which is also the data position: step s's windows depend only on (seed, s).
        "step": step,
        # Which tokenizer the ids mean and which train stream the position is in: a resume checks both.
        "tokenizer_sha256": manifest.tokenizer_sha256,
        "train_shards_sha256": _train_shard_digests(manifest),
    }
    tmp = path.with_suffix(".pt.tmp")
    torch.save(checkpoint, tmp)
    os.replace(tmp, path)
    return path


def _train_shard_digests(manifest: Manifest) -> list[str]:
    return [s.sha256 for s in manifest.shards if s.split == "train"]


class MetricsLog:
    """out_dir/metrics.jsonl: a record per step (loss, lr), per log line (tokens/s, loader wait, MFU)
    and per evaluation, each with its `step`.

    A fresh run starts the file anew; a resumed run first drops the records past its checkpoint's
    step (written before the interruption, and about to be redone), so the file holds one curve.
    """

    def __init__(self, path: Path, keep_through_step: int):
        path.parent.mkdir(parents=True, exist_ok=True)
        kept = []
        if keep_through_step and path.exists():
            kept = [line for line in path.read_text().splitlines() if line and json.loads(line)["step"] <= keep_through_step]
        tmp = path.with_suffix(".jsonl.tmp")
        tmp.write_text("".join(line + "\n" for line in kept))
        os.replace(tmp, path)
        self._handle = open(path, "a")

    def write(self, record: dict) -> None:
        self._handle.write(json.dumps(record) + "\n")
        self._handle.flush()

    def close(self) -> None:
        self._handle.close()


class TrainClock:
    """Seconds spent training, not evaluating. Reads synchronize CUDA so queued kernels are counted."""

    def __init__(self, device: torch.device):
        self.device = device
        self.elapsed = 0.0
        self._started: float | None = None

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def start(self) -> None:
        self._started = time.perf_counter()

    def stop(self) -> None:
        self._sync()
        self.elapsed += time.perf_counter() - self._started
        self._started = None

    def seconds(self) -> float:
        self._sync()
        return self.elapsed + (time.perf_counter() - self._started if self._started is not None else 0.0)

    @contextlib.contextmanager
    def paused(self):
        self.stop()
        try:
            yield
        finally:
            self.start()


def _printer(group: DataParallel):
    """print for rank 0; the other ranks stay quiet so torchrun's output reads like one process's."""

    def say(line: str) -> None:
        if group.is_main:
            print(line, flush=True)

    return say


def main(argv: list[str] | None = None) -> int:
    d = TrainConfig(shards_dir="")
    parser = argparse.ArgumentParser(
        prog="python -m gristmill.train.train",
        description="Train a small GPT on a gristmill shards folder. Under torchrun, one process per GPU (DDP).",
    )
    parser.add_argument("shards_dir", help="folder with manifest.json, tokenizer.json and the *.bin shards")
    parser.add_argument("--steps", type=int, default=d.steps)
    parser.add_argument("--batch-size", type=int, default=d.batch_size, help="global batch: windows per step over all ranks")
    parser.add_argument("--grad-accum-steps", type=int, default=d.grad_accum_steps, help="micro-batches per step on each rank")
    parser.add_argument("--seq-len", type=int, default=d.seq_len)
    parser.add_argument("--n-layer", type=int, default=d.n_layer)
    parser.add_argument("--n-head", type=int, default=d.n_head)
    parser.add_argument("--n-embd", type=int, default=d.n_embd)
    parser.add_argument("--vocab-size", type=int, default=None, help="default: the manifest's; larger pads the embedding")
    parser.add_argument("--dropout", type=float, default=d.dropout)
    parser.add_argument("--lr", type=float, default=d.lr)
    parser.add_argument("--min-lr", type=float, default=None, help="where the cosine ends (default: lr / 10)")
    parser.add_argument("--warmup-steps", type=int, default=d.warmup_steps)
    parser.add_argument("--weight-decay", type=float, default=d.weight_decay)
    parser.add_argument("--grad-clip", type=float, default=d.grad_clip, help="0: no clipping")
    parser.add_argument("--device", default=d.device, help="auto, cpu, cuda or cuda:N (under torchrun: cuda:LOCAL_RANK)")
    parser.add_argument("--out", dest="out_dir", default=None, help="folder for ckpt.pt and metrics.jsonl (default: none)")
    parser.add_argument("--ckpt-every", type=int, default=d.ckpt_every, help="steps between checkpoints; 0: only at the end")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/ckpt.pt if there is one")
    parser.add_argument("--seed", type=int, default=d.seed)
    parser.add_argument("--eval-every", type=int, default=d.eval_every, help="0: evaluate only at the end")
    parser.add_argument("--eval-batches", type=int, default=d.eval_batches)
    parser.add_argument("--log-every", type=int, default=d.log_every)
    parser.add_argument("--compile", action="store_true", help="torch.compile the model (CUDA)")
    parser.add_argument(
        "--peak-tflops", type=float, default=None,
        help=f"the GPU's peak TFLOP/s for MFU (default on CUDA: {H100_BF16_PEAK_TFLOPS:g}, H100 bf16 dense; on CPU only when given)",
    )
    args = parser.parse_args(argv)
    # The cosine schedule ends at a tenth of the peak unless told otherwise, as the defaults do.
    settings = vars(args) | {"min_lr": args.lr / 10 if args.min_lr is None else args.min_lr}
    try:
        train(TrainConfig(**settings))
    except (ShardError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr, flush=True)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
