"""`gristmill train-classifier CONFIG.yaml`: a supervised fastText quality classifier from labeled
sources, evaluated on sources held out whole (never a random split of documents: a random split lets the
model learn each source's style and score it on its own documents).

Config (YAML; relative paths resolve against the config file):

    output: model.ftz              # .ftz: quantized; .bin: full model
    positive_label: __label__hq
    negative_label: __label__cc
    chunk_words: 400               # training documents are cut into chunks of ≤ this many words (by line)
    min_chunk_words: 20
    fasttext: {lr: 0.2, epoch: 20, wordNgrams: 2, dim: 32, minCount: 2, bucket: 200000, seed: 0}
    quantize: {cutoff: 20000, qnorm: true, retrain: false, dsub: 2}   # with an .ftz output
    sources:
      - {name: wikipedia, kind: mediawiki_xml, path: ..., label: positive, split: train}
      - {name: lee-news, kind: lines, path: ..., label: positive, split: heldout}

Evaluation: for each held-out source, the AUC of its documents against the held-out documents of the
other label (whole documents, scored as the pipeline scores them), beside a length-only baseline (score
= characters) on the same documents; then all held-out documents pooled. The figures go to
`<output>.eval.json`. fastText runs on one thread with a fixed seed: the same config gives the same model.
"""

from __future__ import annotations

import json
import os
import random
import tempfile
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gristmill.filters.quality_model import NEGATIVE_LABEL, POSITIVE_LABEL, QualityModel, model_text
from gristmill.filters.training.classifier_data import read_documents


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TrainSource(_Model):
    name: str
    kind: Literal["jsonl", "lines", "file", "mediawiki_xml", "wikitext_tokens", "article_json", "warc"]
    path: str
    label: Literal["positive", "negative"]
    split: Literal["train", "heldout"]
    text_key: str = "text"
    # Held-out only: keep documents py3langid calls English with at least this probability (None: all).
    english_min_score: float | None = None
    # Where the data comes from and under what license (copied into the eval report).
    license: str = ""


class TrainConfig(_Model):
    output: str
    positive_label: str = POSITIVE_LABEL
    negative_label: str = NEGATIVE_LABEL
    chunk_words: int = Field(default=400, ge=10)
    min_chunk_words: int = Field(default=20, ge=1)
    fasttext: dict = Field(default_factory=lambda: {"lr": 0.2, "epoch": 20, "wordNgrams": 2, "dim": 32,
                                                    "minCount": 2, "bucket": 200_000, "seed": 0})
    quantize: dict = Field(default_factory=lambda: {"cutoff": 20_000, "qnorm": True, "retrain": False, "dsub": 2})
    sources: list[TrainSource] = Field(min_length=2)


def load_config(path: str | Path) -> TrainConfig:
    path = Path(path)
    raw = yaml.safe_load(path.read_text())
    try:
        config = TrainConfig.model_validate(raw)
    except ValidationError as err:
        problems = [f"{path}: {'.'.join(map(str, e['loc']))}: {'unknown key' if e['type'] == 'extra_forbidden' else e['msg']}"
                    for e in err.errors()]
        raise ValueError("\n".join(problems)) from None
    base = path.parent

    def absolute(p: str) -> str:
        return p if Path(p).is_absolute() else str((base / p).resolve())

    sources = [s.model_copy(update={"path": absolute(s.path)}) for s in config.sources]
    config = config.model_copy(update={"output": absolute(config.output), "sources": sources})
    splits = {(s.label, s.split) for s in config.sources}
    for need in (("positive", "train"), ("negative", "train")):
        if need not in splits:
            raise ValueError(f"{path}: no {need[0]} source with split: {need[1]}")
    return config


def chunks(text: str, max_words: int, min_words: int) -> list[str]:
    """Consecutive lines grouped into pieces of at most `max_words` words (a longer line is cut)."""
    out, current, count = [], [], 0
    for line in text.splitlines():
        words = line.split()
        while words:
            room = max_words - count
            take, words = words[:room], words[room:]
            current.append(" ".join(take))
            count += len(take)
            if count >= max_words:
                out.append(" ".join(current))
                current, count = [], 0
    if count >= min_words:
        out.append(" ".join(current))
    return [c for c in out if len(c.split()) >= min_words]


def auc(positives: list[float], negatives: list[float]) -> float | None:
    """Area under the ROC curve (Mann–Whitney U, ties count half)."""
    if not positives or not negatives:
        return None
    scored = sorted([(s, 1) for s in positives] + [(s, 0) for s in negatives])
    rank_sum, i = 0.0, 0
    while i < len(scored):
        j = i
        while j < len(scored) and scored[j][0] == scored[i][0]:
            j += 1
        mean_rank = (i + j + 1) / 2  # ranks i+1..j
        rank_sum += mean_rank * sum(1 for k in range(i, j) if scored[k][1])
        i = j
    n_pos, n_neg = len(positives), len(negatives)
    return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def _held_out_docs(source: TrainSource) -> list[str]:
    docs = [d for d in read_documents(source.kind, source.path, source.text_key) if model_text(d)]
    if source.english_min_score is not None:
        from gristmill.filters.language import LanguageScorer

        scorer = LanguageScorer()
        docs = [d for d in docs if (lambda r: r[0] == "en" and r[1] >= source.english_min_score)(scorer.score(d))]
    return docs


def train(config: TrainConfig, log=print) -> dict:
    label = {"positive": config.positive_label, "negative": config.negative_label}
    examples, counts = [], {}
    for source in config.sources:
        if source.split != "train":
            continue
        pieces = [c for doc in read_documents(source.kind, source.path, source.text_key)
                  for c in chunks(doc, config.chunk_words, config.min_chunk_words)]
        counts[source.name] = len(pieces)
        examples += [f"{label[source.label]} {model_text(c)}" for c in pieces]
    random.Random(config.fasttext.get("seed", 0)).shuffle(examples)
    log(f"train-classifier: {len(examples)} training chunks {counts}")
    output = Path(config.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", suffix=".txt", encoding="utf-8") as handle:
        handle.write("\n".join(examples) + "\n")
        handle.flush()
        _train_in_child(handle.name, {"thread": 1, **config.fasttext},
                        config.quantize if output.suffix == ".ftz" else None, output)
    report = evaluate(config, log=log)
    report["train_chunks"] = counts
    report["model_bytes"] = output.stat().st_size
    Path(f"{output}.eval.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


# fastText's trainer runs in a child process whose malloc hands out zeroed memory. fastText 0.9.2's
# DenseMatrix::uniform initializes the input matrix in 10 blocks, one per thread: with thread < 10 the
# rest is left as whatever malloc returns, so training is nondeterministic and often stops with
# "Encountered NaN" (garbage weights). With glibc's MALLOC_PERTURB_=255 every allocation starts as
# zeros (and MALLOC_MMAP_THRESHOLD_ keeps large ones on fresh, zeroed pages): the uninitialized rows
# start at 0 (as fastText's output matrix does), and one thread with a fixed seed gives the same model.
_CHILD = """
import json, sys
import fasttext
args = json.loads(sys.argv[1])
model = fasttext.train_supervised(input=args["input"], **args["params"])
if args["quantize"] is not None:
    model.quantize(input=args["input"], **args["quantize"])
model.save_model(args["output"])
"""


def _train_in_child(path: str, params: dict, quantize: dict | None, output: Path) -> None:
    import subprocess
    import sys

    args = {"input": path, "params": {**params, "verbose": 0},
            "quantize": None if quantize is None else {"thread": params.get("thread", 1), **quantize, "verbose": 0},
            "output": str(output)}
    env = {**os.environ, "MALLOC_PERTURB_": "255", "MALLOC_MMAP_THRESHOLD_": "131072"}
    done = subprocess.run([sys.executable, "-c", _CHILD, json.dumps(args)], capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"fastText training failed: {done.stderr.strip()[-2000:]}")


def evaluate(config: TrainConfig, log=print) -> dict:
    """AUC per held-out source (against the other label's held-out documents), model vs length-only."""
    model = QualityModel(config.output, config.positive_label)
    held = {s.name: (s, _held_out_docs(s)) for s in config.sources if s.split == "heldout"}
    scores = {name: model.score(docs) for name, (_, docs) in held.items()}
    lengths = {name: [float(len(d)) for d in docs] for name, (_, docs) in held.items()}

    def pool(values, label, but=None):
        return [v for name, (s, _) in held.items() if s.label == label and name != but for v in values[name]]

    rows = []
    for name, (source, docs) in held.items():
        other = "negative" if source.label == "positive" else "positive"
        if source.label == "positive":
            model_auc, length_auc = auc(scores[name], pool(scores, other)), auc(lengths[name], pool(lengths, other))
        else:
            model_auc, length_auc = auc(pool(scores, other), scores[name]), auc(pool(lengths, other), lengths[name])
        rows.append({"source": name, "label": source.label, "documents": len(docs), "auc": model_auc,
                     "length_auc": length_auc, "license": source.license})
    pooled = {"auc": auc(pool(scores, "positive"), pool(scores, "negative")),
              "length_auc": auc(pool(lengths, "positive"), pool(lengths, "negative"))}
    for row in rows:
        log(f"  {row['source']:<24} {row['label']:<8} docs={row['documents']:<4} AUC={_fmt(row['auc'])} "
            f"length-only AUC={_fmt(row['length_auc'])}")
    log(f"  {'all held-out':<24} {'':<8} {'':<9} AUC={_fmt(pooled['auc'])} length-only AUC={_fmt(pooled['length_auc'])}")
    return {"heldout": rows, "pooled": pooled, "positive_label": config.positive_label}


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"
