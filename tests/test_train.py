"""The bundled pretraining step on a real, tiny shards folder.

The fixture trains a byte-level BPE tokenizer on templated English (structured enough that a small GPT
learns it within a hundred or two steps), encodes documents with it and writes them as shards with a
manifest, exactly as the tokenize stage hands them to the trainer.
"""

from __future__ import annotations

import random
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
tokenizers = pytest.importorskip("tokenizers")

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
from gristmill.train.data import SplitLoader, unigram_cross_entropy  # noqa: E402
from gristmill.train.model import GPT, GPTConfig  # noqa: E402
from gristmill.train.train import TrainConfig, cosine_lr, train  # noqa: E402

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

    out = capsys.readouterr().out
    assert "step    150 | loss" in out and "tok/s" in out
    assert f"final val loss {result['final_val_loss']:.4f} | unigram entropy {result['unigram_entropy']:.4f}" in out

    checkpoint = torch.load(tmp_path / "run" / "ckpt.pt", weights_only=True)
    assert checkpoint["step"] == 150 and checkpoint["train_config"]["seq_len"] == 64
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
    windows = loader._gather(starts)
    for start, window in zip(starts, windows):
        assert np.array_equal(window, stream[start : start + 65])

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
