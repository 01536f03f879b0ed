"""The bundled pretraining step: a small GPT trained on gristmill's tokenized shards.

- `model.py`: `GPTConfig` and `GPT` (tied embeddings, pre-LN blocks, causal SDPA attention).
- `data.py`: `SplitLoader`, random training windows over one split's shards, and the unigram baseline.
- `train.py`: `TrainConfig`, `train(cfg) -> dict` and the `python -m gristmill.train.train` command line.

This package reads shards only through `gristmill.schemas.shards` and needs nothing but torch and
numpy, so it runs on a GPU box without Ray or pydantic. Nothing is imported here, so
`python -m gristmill.train.train` does not load the module twice.
"""
