#!/usr/bin/env bash
# NOT YET RUN. This script was written in a session with no GPU, so it has never been run and there
# are no figures from it yet. Issue 8's GPU acceptance point stays open until someone runs it on an
# H100 and records the printed line in bench/RESULTS.md.
#
# The 124M GPT (12 layers, 12 heads, width 768, seq 1024) trained on a run's shards. The trainer prints
# tokens/s, MFU and the loader wait fraction every --log-every steps and once more at the end (the
# `throughput:` line, which leaves out the first step: allocator warm-up and torch.compile).
# MFU = FLOPs per token (6N + 12·L·H·Q·T, model.flops_per_token) x tokens/s per GPU / peak;
# the peak defaults to 989 TFLOP/s (H100 SXM, dense bf16); set PEAK_TFLOPS for another GPU (A100: 312).
# Goal from issue 8: MFU >= 45%, loader wait < 1%, on at least 1 GB of shards from a real run.
#
# usage:   bench/train_gpu.sh RUN/shards [STEPS]
# options: GPUS=8 (one node, via torchrun; default 1)   MICRO=16 (windows per forward pass per GPU)
#          PEAK_TFLOPS=989   OUT=folder for ckpt.pt and metrics.jsonl (default: a temporary one)
#          PYTHON=python (needs torch with CUDA and numpy; gristmill installed, e.g. pip install -e . --no-deps)
set -euo pipefail

SHARDS=${1:?usage: bench/train_gpu.sh RUN/shards [STEPS]}
STEPS=${2:-200}
GPUS=${GPUS:-1}
MICRO=${MICRO:-16}
PEAK_TFLOPS=${PEAK_TFLOPS:-989}
PY=${PYTHON:-python}
OUT=${OUT:-$(mktemp -d -t gristmill-train-gpu.XXXXXX)}
mkdir -p "$OUT"

# GPT-2 small's recipe: a global batch of 512 windows x 1024 tokens = 524,288 tokens per step, made of
# micro-batches of MICRO windows on each of GPUS GPUs.
BATCH=512
if (( BATCH % (MICRO * GPUS) )); then
  echo "MICRO x GPUS = $MICRO x $GPUS must divide the global batch of $BATCH windows" >&2
  exit 2
fi
ACCUM=$(( BATCH / (MICRO * GPUS) ))

# The vocabulary padded to a multiple of 64 (tensor-core tiles for the embedding and the head), and
# how much data there is to train on.
read -r VOCAB TRAIN_TOKENS TRAIN_BYTES < <("$PY" - "$SHARDS" <<'EOF'
import sys
import numpy as np
from gristmill.schemas.shards import Manifest
manifest = Manifest.read(sys.argv[1])
tokens = sum(s.tokens for s in manifest.shards if s.split == "train")
print((manifest.vocab_size + 63) // 64 * 64, tokens, tokens * np.dtype(manifest.dtype).itemsize)
EOF
)
echo "shards: $SHARDS | train tokens $TRAIN_TOKENS ($(( TRAIN_BYTES / 1000000 )) MB) | vocab padded to $VOCAB"
if (( TRAIN_BYTES < 1000000000 )); then
  echo "note: fewer than 1 GB of train shards; issue 8 asks for at least 1 GB from a real run" >&2
fi
echo "batch $BATCH x 1024 tokens = $GPUS GPU(s) x $ACCUM micro-batches x $MICRO | $STEPS steps | out: $OUT"

ARGS=(
  "$SHARDS" --device cuda --compile
  --n-layer 12 --n-head 12 --n-embd 768 --seq-len 1024 --vocab-size "$VOCAB"
  --batch-size "$BATCH" --grad-accum-steps "$ACCUM"
  --steps "$STEPS" --lr 6e-4 --min-lr 6e-5 --warmup-steps 20 --weight-decay 0.1
  --eval-every 0 --eval-batches 2 --log-every 10 --ckpt-every 0
  --peak-tflops "$PEAK_TFLOPS" --out "$OUT"
)
if (( GPUS > 1 )); then
  "$PY" -m torch.distributed.run --standalone --nproc-per-node "$GPUS" -m gristmill.train.train "${ARGS[@]}" | tee "$OUT/train.log"
else
  "$PY" -m gristmill.train.train "${ARGS[@]}" | tee "$OUT/train.log"
fi
echo
grep '^throughput:' "$OUT/train.log"
