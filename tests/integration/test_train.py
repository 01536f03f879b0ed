"""The bundled pretraining step on a real, tiny shards folder.

The fixture trains a byte-level BPE tokenizer on templated English (structured enough that a small GPT
learns it within a hundred or two steps), encodes documents with it and writes them as shards with a
manifest, exactly as the tokenize stage hands them to the trainer.

Besides learning: a run interrupted and resumed from its checkpoint reproduces the uninterrupted loss
curve; gradient accumulation and two DDP processes (gloo, launched by torchrun) give the loss of one
process with the whole batch; the loader's windows are fixed by (seed, step) and partitioned by rank.
One test needs CUDA and is skipped without it.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tokenizers

torch = pytest.importorskip("torch", reason="torch is optional (the train extra: pip install 'gristmill[train]')",
                            exc_type=ModuleNotFoundError)

from gristmill.schemas.shards import (  # noqa: E402
    EOS_TOKEN,
    HEADER_BYTES,
    SPECIAL_TOKENS,
    Manifest,
    ShardEntry,
    ShardError,
    sha256_file,
    token_dtype,
    write_shard,
)
from gristmill.train.data import Prefetcher, SplitLoader, StepSampler, unigram_cross_entropy  # noqa: E402
from gristmill.train.model import GPT, GPTConfig  # noqa: E402
from gristmill.train.train import METRICS_NAME, TrainConfig, cosine_lr, train  # noqa: E402

SUBJECTS = ["the miller", "the baker", "a farmer", "my sister", "the old dog", "a young cat", "the teacher", "our neighbour"]
VERBS = ["carried", "found", "sold", "ground", "bought", "lost", "cleaned", "painted"]
OBJECTS = ["a sack of wheat", "the red apples", "three loaves of bread", "the wooden cart", "a basket of eggs", "the blue door"]
PLACES = ["at the market", "near the river", "in the mill", "behind the barn", "on the hill"]
TIMES = ["on Monday", "every morning", "before the rain", "after supper", "in the spring"]
ADJECTIVES = ["heavy", "fresh", "cheap", "old", "bright", "wet"]


def _sentence(rng: random.Random) -> str:
    if rng.random() < 0.6:
        text = f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)} {rng.choice(PLACES)} {rng.choice(TIMES)}."
    else:
        text = f"when {rng.choice(SUBJECTS)} came home, {rng.choice(SUBJECTS)} said that {rng.choice(OBJECTS)} was {rng.choice(ADJECTIVES)}."
    return text[0].upper() + text[1:]


def _documents(n_docs: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(_sentence(rng) for _ in range(rng.randint(2, 6))) for _ in range(n_docs)]


def _train_tokenizer(texts: list[str], path: Path) -> tokenizers.Tokenizer:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=384,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer)
    tokenizer.save(str(path))
    return tokenizer


def _build_shards(directory: Path, splits: dict[str, list[list[str]]]) -> Manifest:
    """Write `splits` ({split: [documents of shard 0, documents of shard 1, ...]}) as a shards folder."""
    directory.mkdir(parents=True, exist_ok=True)
    all_texts = [t for shards in splits.values() for docs in shards for t in docs]
    tokenizer = _train_tokenizer(all_texts, directory / "tokenizer.json")
    eos_id = tokenizer.token_to_id(EOS_TOKEN)
    dtype = token_dtype(tokenizer.get_vocab_size())
    entries = []
    for split, shards in splits.items():
        for i, docs in enumerate(shards):
            name = f"{split}_{i:05d}.bin"
            arrays = [np.array(e.ids + [eos_id], dtype=dtype) for e in tokenizer.encode_batch(docs)]
            n_tokens, n_docs = write_shard(directory / name, arrays, dtype)
            entries.append(ShardEntry(file=name, split=split, sha256=sha256_file(directory / name), tokens=n_tokens, docs=n_docs))
    manifest = Manifest(
        tokenizer_file="tokenizer.json",
        tokenizer_sha256=sha256_file(directory / "tokenizer.json"),
        vocab_size=tokenizer.get_vocab_size(),
        eos_id=eos_id,
        dtype=dtype.name,
        special_tokens={t: tokenizer.token_to_id(t) for t in SPECIAL_TOKENS},
        seed=0,
        val_fraction=0.1,
        shards=entries,
    )
    manifest.write(directory)
    return manifest


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """One intra-op thread: these tiny models gain nothing from a second, and on a busy 2-core box
    OpenMP threads spinning against other processes made the same run 5-20x slower (3 s -> 24-90 s)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def shards_dir(tmp_path_factory) -> Path:
    """Two train shards (so windows cross a shard boundary) and one small val shard (a few thousand tokens)."""
    docs = _documents(700, seed=7)
    directory = tmp_path_factory.mktemp("shards")
    _build_shards(directory, {"train": [docs[:320], docs[320:640]], "val": [docs[640:]]})
    return directory


def _tiny_config(shards: Path, **overrides) -> TrainConfig:
    settings = dict(
        shards_dir=shards, steps=150, batch_size=16, seq_len=64, n_layer=2, n_head=2, n_embd=64,
        lr=3e-3, min_lr=3e-4, warmup_steps=15, eval_every=50, eval_batches=4, seed=0, device="cpu", log_every=25,
    )
    return TrainConfig(**(settings | overrides))


def test_training_learns_the_corpus_and_beats_the_unigram_baseline(shards_dir, tmp_path, capsys):
    result = train(_tiny_config(shards_dir, out_dir=tmp_path / "run"))

    losses = result["losses"]
    assert result["steps"] == len(losses) == 150
    assert result["device"] == "cpu" and result["eval_split"] == "val"
    # Starts near ln(vocab) (~5.9 nats) and ends far below it.
    assert np.mean(losses[-10:]) < 0.5 * np.mean(losses[:5])
    assert result["final_val_loss"] < result["unigram_entropy"]
    assert result["tokens_per_s"] > 0

    assert 0 <= result["loader_wait_fraction"] < 1
    assert result["mfu"] is None  # no peak on a CPU unless one is given

    out = capsys.readouterr().out
    assert "step    150 | loss" in out and "tok/s | loader wait" in out and "mfu" not in out
    assert f"final val loss {result['final_val_loss']:.4f} | unigram entropy {result['unigram_entropy']:.4f}" in out

    checkpoint = torch.load(tmp_path / "run" / "ckpt.pt", weights_only=True)
    assert checkpoint["step"] == 150 and checkpoint["train_config"]["seq_len"] == 64
    assert checkpoint["train_shards_sha256"] == [e.sha256 for e in Manifest.read(shards_dir).shards if e.split == "train"]
    logged = _logged_losses(tmp_path / "run")
    assert list(logged) == list(range(1, 151)) and list(logged.values()) == losses
    model = GPT(GPTConfig.from_dict(checkpoint["model_config"]))
    model.load_state_dict(checkpoint["model"])  # strict: the saved config rebuilds the same model
    assert checkpoint["optimizer"]["state"]


def test_a_corrupted_shard_stops_training_before_it_starts(shards_dir, tmp_path, capsys):
    corrupted = tmp_path / "shards"
    shutil.copytree(shards_dir, corrupted)
    shard = corrupted / "train_00001.bin"
    data = bytearray(shard.read_bytes())
    data[HEADER_BYTES + 10] ^= 0xFF  # one token's byte: the header still parses, only the checksum can tell
    shard.write_bytes(bytes(data))

    with pytest.raises(ShardError, match="train_00001.bin: sha256"):
        train(_tiny_config(corrupted, out_dir=tmp_path / "run"))
    assert "step" not in capsys.readouterr().out
    assert not (tmp_path / "run").exists()


def test_a_split_shorter_than_one_window_is_refused(shards_dir):
    val_tokens = sum(e.tokens for e in Manifest.read(shards_dir).shards if e.split == "val")
    with pytest.raises(ValueError, match=f"split 'val' has {val_tokens} tokens.*seq_len \\+ 1 = {val_tokens + 1}"):
        train(_tiny_config(shards_dir, seq_len=val_tokens, steps=1))


def test_a_vocab_size_below_the_manifest_is_refused(shards_dir):
    vocab = Manifest.read(shards_dir).vocab_size
    with pytest.raises(ValueError, match=f"vocab_size {vocab - 1} is smaller than the shards' vocabulary of {vocab}"):
        train(_tiny_config(shards_dir, vocab_size=vocab - 1, steps=1))


def test_without_val_shards_evaluation_uses_train_and_says_so(tmp_path, capsys):
    directory = tmp_path / "shards"
    _build_shards(directory, {"train": [_documents(60, seed=3)]})
    result = train(_tiny_config(directory, steps=3, eval_every=0))
    assert result["eval_split"] == "train" and np.isfinite(result["final_val_loss"])
    assert "no val shards in the manifest: evaluating on the train split" in capsys.readouterr().out


def test_batches_are_windows_of_the_concatenated_split_and_fixed_by_the_seed(shards_dir):
    manifest = Manifest.read(shards_dir)
    loader = SplitLoader(shards_dir, manifest, "train", seq_len=64)
    stream = np.concatenate([np.fromfile(shards_dir / f, dtype=manifest.dtype, offset=HEADER_BYTES, count=e.tokens)
                             for f, e in ((e.file, e) for e in manifest.shards if e.split == "train")])
    # Force windows that straddle the boundary between the two train shards, plus the very last window.
    boundary = next(e.tokens for e in manifest.shards if e.file == "train_00000.bin")
    starts = np.array([boundary - 30, boundary - 1, len(stream) - 65, 0])
    windows = loader.gather(starts)
    for start, window in zip(starts, windows):
        assert np.array_equal(window, stream[start : start + 65])

    # A window spanning three shards: the reader walks on until the window is full.
    tiny = SplitLoader(shards_dir, manifest, "train", seq_len=64)
    tiny._shards = [stream[:40], stream[40:50], stream[50:200]]
    tiny._offsets = np.array([0, 40, 50, 200])
    assert np.array_equal(tiny.gather(np.array([30]))[0], stream[30:95])

    x, y = loader.sample(8, np.random.default_rng(5))
    x2, y2 = loader.sample(8, np.random.default_rng(5))
    assert x.dtype == y.dtype == torch.int64 and x.shape == y.shape == (8, 64)
    assert torch.equal(x, x2) and torch.equal(y, y2)
    assert torch.equal(x[:, 1:], y[:, :-1])


def test_unigram_cross_entropy_is_finite_for_tokens_unseen_in_train():
    train_counts = np.array([3, 1, 0, 0])
    assert unigram_cross_entropy(train_counts, np.array([3, 1, 0, 0])) == pytest.approx(
        -(3 * np.log(3.5 / 6) + np.log(1.5 / 6)) / 4
    )
    unseen = unigram_cross_entropy(train_counts, np.array([0, 0, 1, 0]))
    assert unseen == pytest.approx(-np.log(0.5 / 6))


def test_cosine_lr_warms_up_linearly_then_decays_to_min_lr():
    schedule = [cosine_lr(s, lr=1.0, min_lr=0.1, warmup_steps=10, total_steps=110) for s in range(110)]
    assert schedule[0] == pytest.approx(0.1) and schedule[9] == pytest.approx(1.0)
    assert schedule[60] == pytest.approx(0.55)
    assert all(a >= b for a, b in zip(schedule[9:], schedule[10:]))
    assert cosine_lr(110, lr=1.0, min_lr=0.1, warmup_steps=10, total_steps=110) == pytest.approx(0.1)


def test_flops_per_token_follows_the_nanogpt_estimate():
    model = GPT(GPTConfig(n_layer=2, n_head=2, n_embd=64, seq_len=32, vocab_size=100))
    n_params = sum(p.numel() for p in model.parameters()) - 32 * 64
    assert model.flops_per_token() == 6 * n_params + 12 * 2 * 2 * 32 * 32


def test_importing_the_trainer_does_not_pull_in_ray_or_pydantic():
    code = "import gristmill.train.train, sys; assert 'ray' not in sys.modules and 'pydantic' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


# --- checkpoints and resume, gradient accumulation, data parallelism ---------------------------------


def _logged_losses(run_dir: Path) -> dict[int, float]:
    """step -> train loss from a run's metrics.jsonl (which must hold each step exactly once)."""
    records = [json.loads(line) for line in (run_dir / METRICS_NAME).read_text().splitlines()]
    steps = [r["step"] for r in records if "loss" in r]
    assert len(steps) == len(set(steps)), "a step logged twice"
    return {r["step"]: r["loss"] for r in records if "loss" in r}


def _small_config(shards: Path, **overrides) -> TrainConfig:
    """Few, cheap steps: enough to compare curves, not to learn."""
    return _tiny_config(shards, **({"steps": 24, "batch_size": 8, "seq_len": 32, "warmup_steps": 4, "eval_every": 12,
                                    "log_every": 5, "eval_batches": 2} | overrides))


def test_an_interrupted_run_resumed_from_its_checkpoint_reproduces_the_uninterrupted_curve(shards_dir, tmp_path, monkeypatch, capsys):
    # Dropout and micro-batches on, so the resumed run must also restore the dropout masks' stream.
    settings = dict(ckpt_every=8, dropout=0.1, grad_accum_steps=2)
    whole = train(_small_config(shards_dir, out_dir=tmp_path / "whole", **settings))

    # The interrupted run crashes while fetching step 19's batch (index 19 = the 20th step): steps
    # 1-19 ran, the last checkpoint is step 16's, and metrics.jsonl already holds steps past it.
    original_batch = StepSampler.batch

    def crash_at_step_19(self, step, pin_memory=False):
        if step == 19:
            raise RuntimeError("simulated crash")
        return original_batch(self, step, pin_memory)

    with monkeypatch.context() as patch:
        patch.setattr(StepSampler, "batch", crash_at_step_19)
        with pytest.raises(RuntimeError, match="simulated crash"):
            train(_small_config(shards_dir, out_dir=tmp_path / "cut", **settings))
    assert torch.load(tmp_path / "cut" / "ckpt.pt", weights_only=True)["step"] == 16
    capsys.readouterr()

    resumed = train(_small_config(shards_dir, out_dir=tmp_path / "cut", resume=True, **settings))
    assert "resumed from" in capsys.readouterr().out and resumed["start_step"] == 16
    # Bitwise on the same CPU and thread count: same weights, optimizer state, windows and dropout masks.
    assert resumed["losses"] == whole["losses"][16:]
    assert resumed["final_val_loss"] == whole["final_val_loss"]
    # The log holds one curve: the records the crashed run wrote past step 16 were dropped on resume.
    assert _logged_losses(tmp_path / "cut") == _logged_losses(tmp_path / "whole")
    final_whole = torch.load(tmp_path / "whole" / "ckpt.pt", weights_only=True)["model"]
    final_resumed = torch.load(tmp_path / "cut" / "ckpt.pt", weights_only=True)["model"]
    assert all(torch.equal(final_whole[k], final_resumed[k]) for k in final_whole)


def test_resume_without_a_checkpoint_starts_fresh_and_says_so(shards_dir, tmp_path, capsys):
    result = train(_small_config(shards_dir, steps=2, out_dir=tmp_path / "new", resume=True))
    assert result["start_step"] == 0 and len(result["losses"]) == 2
    assert f"resume: no {tmp_path / 'new' / 'ckpt.pt'} yet, starting from step 0" in capsys.readouterr().out


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(settings={"lr": 1e-3}), r"cannot continue this run; lr 0.003 \(checkpoint\) vs 0.001 \(now\)"),
        (dict(settings={"n_embd": 32}), r"n_embd 64 \(checkpoint\) vs 32 \(now\)"),
        (dict(checkpoint={"model_config.vocab_size": 300}), r"embedding has 300 rows, but the shards' vocabulary has \d+ tokens"),
        (dict(checkpoint={"train_shards_sha256": ["0" * 64]}), "trained on other train shards"),
    ],
    ids=["lr", "model shape", "embedding smaller than the vocab", "other shards"],
)
def test_a_checkpoint_that_cannot_continue_the_run_is_refused(shards_dir, tmp_path, change, message):
    train(_small_config(shards_dir, steps=2, out_dir=tmp_path / "run"))
    path = tmp_path / "run" / "ckpt.pt"
    checkpoint = torch.load(path, weights_only=True)
    for dotted, value in change.get("checkpoint", {}).items():
        *parents, key = dotted.split(".")
        target = checkpoint
        for parent in parents:
            target = target[parent]
        target[key] = value
    torch.save(checkpoint, path)
    with pytest.raises(ValueError, match=message):
        train(_small_config(shards_dir, steps=2, out_dir=tmp_path / "run", resume=True, **change.get("settings", {})))


def test_gradient_accumulation_gives_the_loss_of_one_big_batch(shards_dir, capsys):
    one = train(_small_config(shards_dir, steps=8, eval_every=0))
    accumulated = train(_small_config(shards_dir, steps=8, eval_every=0, grad_accum_steps=4, peak_tflops=1.0))
    # The same windows, the gradient summed in four parts instead of one: equal up to float rounding.
    assert np.allclose(accumulated["losses"], one["losses"], rtol=0, atol=1e-5)
    assert accumulated["final_val_loss"] == pytest.approx(one["final_val_loss"], abs=1e-5)
    # With a peak given, MFU is reported even on a CPU: FLOPs per token x tokens/s / peak.
    assert accumulated["mfu"] > 0 and "| mfu " in capsys.readouterr().out
    with pytest.raises(ValueError, match="batch_size 8 does not split into grad_accum_steps 3"):
        _small_config(shards_dir, grad_accum_steps=3)


def test_ranks_partition_each_steps_global_batch_and_steps_differ(shards_dir):
    loader = SplitLoader(shards_dir, Manifest.read(shards_dir), "train", seq_len=32)
    whole = StepSampler(loader, global_batch=8, seed=3)
    ranks = [StepSampler(loader, global_batch=8, seed=3, rank=r, world=2) for r in range(2)]
    for step in (0, 1, 57):
        interleaved = np.empty(8, dtype=np.int64)
        interleaved[0::2], interleaved[1::2] = ranks[0].starts(step), ranks[1].starts(step)
        assert np.array_equal(interleaved, whole.starts(step))
    assert np.array_equal(whole.starts(5), StepSampler(loader, global_batch=8, seed=3).starts(5))  # a pure function
    assert not np.array_equal(whole.starts(5), whole.starts(6))
    assert not np.array_equal(whole.starts(5), StepSampler(loader, global_batch=8, seed=4).starts(5))
    with pytest.raises(ValueError, match="global batch of 8 windows does not split evenly over 3 ranks"):
        StepSampler(loader, global_batch=8, seed=3, rank=0, world=3)


def test_the_prefetcher_hands_over_batches_in_step_order_and_raises_the_threads_errors(shards_dir):
    loader = SplitLoader(shards_dir, Manifest.read(shards_dir), "train", seq_len=32)
    sampler = StepSampler(loader, global_batch=4, seed=0)
    with Prefetcher(sampler, first=3, last=9, depth=2) as prefetch:
        for step in range(3, 9):
            assert torch.equal(prefetch.get(step), sampler.batch(step))

    class Broken(StepSampler):
        def batch(self, step, pin_memory=False):
            raise OSError(f"disk gone at step {step}")

    with Prefetcher(Broken(loader, global_batch=4, seed=0), first=0, last=5) as prefetch:
        with pytest.raises(OSError, match="disk gone at step 0"):
            prefetch.get(0)


def _run_bounded(command: list[str], timeout_s: float) -> subprocess.CompletedProcess:
    """Run `command` in its own process group and kill the whole group (torchrun and its workers) on timeout."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
                               env=os.environ | {"OMP_NUM_THREADS": "1"})
    try:
        out, _ = process.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        out, _ = process.communicate()
        pytest.fail(f"{' '.join(command[:6])}... did not finish in {timeout_s} s:\n{out[-3000:]}")
    return subprocess.CompletedProcess(command, process.returncode, out)


@pytest.mark.skipif(not torch.distributed.is_available() or not torch.distributed.is_gloo_available(), reason="torch without gloo")
def test_two_ddp_processes_give_the_loss_of_one_process_with_the_whole_batch(shards_dir, tmp_path):
    args = ["--steps", "12", "--batch-size", "8", "--seq-len", "32", "--n-layer", "2", "--n-head", "2", "--n-embd", "64",
            "--lr", "3e-3", "--min-lr", "3e-4", "--warmup-steps", "4", "--eval-every", "6", "--eval-batches", "2",
            "--log-every", "4", "--seed", "0", "--device", "cpu", "--out", str(tmp_path / "ddp")]
    launched = _run_bounded([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                             "-m", "gristmill.train.train", str(shards_dir), *args], timeout_s=120)
    assert launched.returncode == 0, launched.stdout[-3000:]
    assert "device: cpu x 2 ranks | batch 8 windows = 2 rank(s) x 1 micro-batch(es) x 4" in launched.stdout
    assert launched.stdout.count("final val loss") == 1  # only rank 0 speaks

    single = train(_small_config(shards_dir, steps=12, eval_every=6, log_every=4))
    ddp_losses = _logged_losses(tmp_path / "ddp")
    assert list(ddp_losses) == list(range(1, 13))
    # Each rank reads rows r::2 of the step's global batch and the gradients are averaged, so two
    # processes compute what one does with all eight rows; only the float summation order differs.
    assert np.allclose(list(ddp_losses.values()), single["losses"], rtol=0, atol=1e-5)
    records = [json.loads(line) for line in (tmp_path / "ddp" / METRICS_NAME).read_text().splitlines()]
    final = next(r for r in records if r.get("final"))
    assert final["val_loss"] == pytest.approx(single["final_val_loss"], abs=1e-5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (bf16 autocast, fused AdamW, pinned prefetch, torch.compile)")
def test_on_cuda_compiled_bf16_training_learns_and_reports_mfu(shards_dir, tmp_path, capsys):
    result = train(_tiny_config(shards_dir, device="cuda", compile=True, out_dir=tmp_path / "run", ckpt_every=50, grad_accum_steps=2))
    assert result["device"].startswith("cuda") and result["final_val_loss"] < result["unigram_entropy"]
    assert result["mfu"] is not None and 0 < result["mfu"] < 1 and 0 <= result["loader_wait_fraction"] < 1
    assert "| mfu " in capsys.readouterr().out
    resumed = train(_tiny_config(shards_dir, device="cuda", out_dir=tmp_path / "run", resume=True, steps=150))
    assert resumed["start_step"] == 150 and resumed["losses"] == []
