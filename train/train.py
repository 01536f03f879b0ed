"""The training loop: config, optimizer, LR schedule, evaluation, checkpoint, and the command line.

`train(cfg)` reads like its phases: verify the shards, load the splits and their unigram baseline,
build the model and optimizer, loop (warmup + cosine LR, bf16 autocast on CUDA, gradient clipping,
periodic logging and evaluation), evaluate once more and save a checkpoint. The project CLI calls
`train(cfg)`; `python -m gristmill.train.train SHARDS --steps N` runs the same thing standalone.

Not here yet, by design: resume, DDP and torch.compile. The loop keeps what they need in one place
(the step counter, the data generator's state in the checkpoint, model construction before the
optimizer) so each is a local change.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from gristmill.schemas.shards import Manifest, verify_shards
from gristmill.train.data import SplitLoader, unigram_cross_entropy
from gristmill.train.model import GPT, GPTConfig

CHECKPOINT_NAME = "ckpt.pt"


@dataclass
class TrainConfig:
    """One flat, typed training config; saved into the checkpoint. Defaults suit a CPU smoke run."""

    shards_dir: str
    steps: int = 300
    batch_size: int = 16
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
    out_dir: str | None = None  # where ckpt.pt goes; None saves nothing
    log_every: int = 10
    vocab_size: int | None = None  # None: the manifest's; larger pads the embedding, smaller is refused
    dropout: float = 0.0

    def __post_init__(self) -> None:
        # Plain strings, so the config pickles into a checkpoint that torch.load(weights_only=True) reads.
        self.shards_dir = os.fspath(self.shards_dir)
        self.out_dir = None if self.out_dir is None else os.fspath(self.out_dir)
        for name in ("steps", "batch_size", "seq_len", "eval_batches", "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("warmup_steps", "eval_every", "grad_clip", "weight_decay", "min_lr"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative, got {getattr(self, name)}")
        if not 0 < self.lr or self.min_lr > self.lr:
            raise ValueError(f"need 0 < min_lr <= lr, got lr={self.lr}, min_lr={self.min_lr}")


def train(cfg: TrainConfig) -> dict:
    """Train a GPT on the shards in `cfg.shards_dir`; return the run's numbers.

    Raises ShardError (from verify_shards, unchanged) before any training if a shard or the
    tokenizer does not match the manifest, and ValueError for a config the data cannot support.
    Returns final_val_loss, unigram_entropy (nats/token), tokens_per_s, steps, losses (train loss
    per step), device, eval_split.
    """
    # Phase 1: trust the data, then fix the vocabulary and device.
    manifest = verify_shards(cfg.shards_dir)
    vocab_size = resolve_vocab_size(cfg.vocab_size, manifest)
    device = pick_device(cfg.device)
    print(f"shards: {cfg.shards_dir} ({len(manifest.shards)} shards, vocab {manifest.vocab_size}) | device: {device}", flush=True)

    # Phase 2: the splits and the baseline the model must beat.
    train_data = SplitLoader(cfg.shards_dir, manifest, "train", cfg.seq_len, device)
    eval_split = "val" if manifest.split_files("val") else "train"
    if eval_split == "train":
        print("no val shards in the manifest: evaluating on the train split (the loss measures fit, not generalisation)", flush=True)
    eval_data = train_data if eval_split == "train" else SplitLoader(cfg.shards_dir, manifest, "val", cfg.seq_len, device)
    unigram_entropy = unigram_cross_entropy(train_data.token_counts(vocab_size), eval_data.token_counts(vocab_size))
    print(
        f"tokens: train {train_data.n_tokens:,} | {eval_split} {eval_data.n_tokens:,} "
        f"| unigram entropy {unigram_entropy:.4f} nats/token",
        flush=True,
    )

    # Phase 3: model and optimizer. Seed torch before building the model so its init is reproducible.
    torch.manual_seed(cfg.seed)
    model_config = GPTConfig(
        n_layer=cfg.n_layer, n_head=cfg.n_head, n_embd=cfg.n_embd, seq_len=cfg.seq_len, vocab_size=vocab_size, dropout=cfg.dropout
    )
    model = GPT(model_config).to(device)
    optimizer = make_optimizer(model, cfg.weight_decay, cfg.lr, device)
    autocast = mixed_precision(device)
    print(f"model: {model.num_params():,} parameters, {model.flops_per_token():,} FLOPs/token", flush=True)

    # Phase 4: the loop. The data generator is the whole data-stream state: save it to resume the stream.
    data_rng = np.random.default_rng(cfg.seed)
    tokens_per_step = cfg.batch_size * cfg.seq_len
    losses: list[torch.Tensor] = []  # kept on the device so logging, not every step, pays for a sync
    clock = TrainClock(device)
    last_log = (0, 0.0)  # (tokens, seconds) at the previous log line
    after_first_step = (0, 0.0)
    val_loss = float("nan")
    model.train()
    clock.start()
    for step in range(cfg.steps):
        lr = cosine_lr(step, lr=cfg.lr, min_lr=cfg.min_lr, warmup_steps=cfg.warmup_steps, total_steps=cfg.steps)
        for group in optimizer.param_groups:
            group["lr"] = lr
        x, y = train_data.sample(cfg.batch_size, data_rng)
        with autocast:
            _, loss = model(x, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        losses.append(loss.detach())

        done, tokens = step + 1, (step + 1) * tokens_per_step
        if done == 1:
            # The first step pays for allocator and kernel warm-up; the reported rate leaves it out.
            after_first_step = (tokens, clock.seconds())
        if done == 1 or done % cfg.log_every == 0 or done == cfg.steps:
            seconds = clock.seconds()
            rate = (tokens - last_log[0]) / max(seconds - last_log[1], 1e-9)
            print(f"step {done:6d} | loss {loss.item():.4f} | lr {lr:.2e} | {rate:,.0f} tok/s", flush=True)
            last_log = (tokens, seconds)
        if cfg.eval_every and done % cfg.eval_every == 0 and done < cfg.steps:
            with clock.paused():
                val_loss = evaluate(model, eval_data, cfg.eval_batches, cfg.batch_size, cfg.seed, autocast)
            print(f"step {done:6d} | {eval_split} loss {val_loss:.4f}", flush=True)
    clock.stop()

    # Phase 5: the final evaluation, beside the baseline, and the checkpoint.
    val_loss = evaluate(model, eval_data, cfg.eval_batches, cfg.batch_size, cfg.seed, autocast)
    print(f"final {eval_split} loss {val_loss:.4f} | unigram entropy {unigram_entropy:.4f} nats/token", flush=True)
    timed_tokens, timed_seconds = (cfg.steps * tokens_per_step, clock.elapsed)
    if cfg.steps > 1:
        timed_tokens, timed_seconds = timed_tokens - after_first_step[0], timed_seconds - after_first_step[1]
    tokens_per_s = timed_tokens / max(timed_seconds, 1e-9)
    if cfg.out_dir is not None:
        path = save_checkpoint(Path(cfg.out_dir), model, optimizer, model_config, cfg, cfg.steps, data_rng, manifest)
        print(f"checkpoint: {path}", flush=True)
    return {
        "final_val_loss": val_loss,
        "unigram_entropy": unigram_entropy,
        "tokens_per_s": tokens_per_s,
        "steps": cfg.steps,
        "losses": torch.stack(losses).float().tolist(),
        "device": str(device),
        "eval_split": eval_split,
    }


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


def pick_device(name: str) -> torch.device:
    """'auto' is cuda when torch sees a GPU, else cpu; an explicit 'cuda' without one is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} requested, but this torch ({torch.__version__}) sees no CUDA device")
    return device


def mixed_precision(device: torch.device) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA (no loss scaling needed, unlike fp16); plain fp32 elsewhere."""
    if device.type == "cuda":
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
def evaluate(model: GPT, data: SplitLoader, batches: int, batch_size: int, seed: int, autocast: contextlib.AbstractContextManager) -> float:
    """Mean loss over `batches` batches. The windows come from a fresh generator seeded the same way
    every time, so successive evaluations score the same tokens and are comparable."""
    rng = np.random.default_rng(seed + 1)
    model.eval()
    total = torch.zeros((), device=data.device)
    for _ in range(batches):
        x, y = data.sample(batch_size, rng)
        with autocast:
            _, loss = model(x, y)
        total += loss
    model.train()
    return (total / batches).item()


def save_checkpoint(
    out_dir: Path,
    model: GPT,
    optimizer: torch.optim.Optimizer,
    model_config: GPTConfig,
    cfg: TrainConfig,
    step: int,
    data_rng: np.random.Generator,
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
        "step": step,
        # Where the data stream stands, so a resume continues it instead of replaying it.
        "data_rng_state": data_rng.bit_generator.state,
        # Which tokenizer the ids mean: a checkpoint is useless with a different one.
        "tokenizer_sha256": manifest.tokenizer_sha256,
    }
    tmp = path.with_suffix(".pt.tmp")
    torch.save(checkpoint, tmp)
    os.replace(tmp, path)
    return path


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


def main(argv: list[str] | None = None) -> int:
    defaults = TrainConfig(shards_dir="")
    parser = argparse.ArgumentParser(prog="python -m gristmill.train.train", description="Train a small GPT on a gristmill shards folder.")
    parser.add_argument("shards_dir", help="folder with manifest.json, tokenizer.json and the *.bin shards")
    parser.add_argument("--steps", type=int, default=defaults.steps)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--seq-len", type=int, default=defaults.seq_len)
    parser.add_argument("--n-layer", type=int, default=defaults.n_layer)
    parser.add_argument("--n-head", type=int, default=defaults.n_head)
    parser.add_argument("--n-embd", type=int, default=defaults.n_embd)
    parser.add_argument("--lr", type=float, default=defaults.lr)
    parser.add_argument("--device", default=defaults.device, help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--out", dest="out_dir", default=None, help="folder for ckpt.pt (default: no checkpoint)")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--eval-every", type=int, default=defaults.eval_every, help="0: evaluate only at the end")
    args = parser.parse_args(argv)
    # The cosine schedule ends at a tenth of the peak, as the defaults do.
    train(TrainConfig(**vars(args), min_lr=args.lr / 10))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
