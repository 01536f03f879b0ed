"""The bundled pretraining step: a small GPT trained on gristmill's tokenized shards.

- `model.py`: `GPTConfig` and `GPT` (tied embeddings, pre-LN blocks, causal SDPA attention).
- `data.py`: `SplitLoader` (windows over one split's shards), `StepSampler` (each step's windows from
  (seed, step), rows r::world for rank r), `Prefetcher` (a background thread, pinned on CUDA) and the
  unigram baseline.
- `train.py`: `TrainConfig`, `train(cfg) -> dict` (gradient accumulation, DDP under torchrun, optional
  torch.compile, checkpoints and exact resume, loss / tokens/s / MFU / loader-wait logging) and the
  `python -m gristmill.train.train` command line. `bench/train_gpu.sh` runs the 124M configuration.

This package reads shards only through `gristmill.schemas.shards` and needs nothing but torch and
numpy, so it runs on a GPU box without Ray or pydantic. Nothing of the package is imported here, so
`python -m gristmill.train.train` does not load the module twice.
"""

import os

# OpenMP threads that wait by spinning (libgomp's default) collapse when other processes share the cores:
# the demo's CPU training ran at 2,483 tokens/s with spinning and 20,937 with passive waiting on the 2-core
# machine under load (bench/RESULTS.md, "CPU training on busy cores"). Set before torch loads libgomp, and
# only where the user chose nothing.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
