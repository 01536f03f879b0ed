"""Toxicity scoring speed, MB/s on one core, of a model against a baseline model in the same run.

    python bench/toxicity_speed.py ../shared/data --model NEW --baseline OLD [--rounds 3]

Text: the Lee news articles and the WikiText-2 test paragraphs (about 1.5 MB of UTF-8), scored whole
per document with `ToxicityModel.score_many` (normalization, identity-term blinding when the model has
it, fastText). Rounds alternate the two models; the best round of each is reported, and the ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path


def texts(shared: Path) -> list[str]:
    from gristmill.filters.training.toxicity_train import wikitext_paragraphs

    positive = shared / "quality-text-samples" / "positive"
    lee = (positive / "lee_background.cor").read_text(encoding="utf-8", errors="replace").splitlines()
    return [t for t in lee if t.strip()] + wikitext_paragraphs(positive / "wikitext-2-test.tokens.txt")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("shared_data", type=Path)
    parser.add_argument("--model", default=None)
    parser.add_argument("--baseline", required=True)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    from gristmill.filters.toxicity import ToxicityModel

    docs = texts(args.shared_data)
    megabytes = sum(len(t.encode("utf-8")) for t in docs) / 1e6
    models = {"model": ToxicityModel(args.model), "baseline": ToxicityModel(args.baseline)}
    best = {name: float("inf") for name in models}
    for _ in range(args.rounds):
        for name, model in models.items():
            start = time.process_time()  # CPU time of this process: one core, whatever else the machine runs
            model.score_many(docs)
            best[name] = min(best[name], time.process_time() - start)
    result = {"documents": len(docs), "megabytes": round(megabytes, 3), "load_average": os.getloadavg(),
              **{f"{name}_mb_per_cpu_s": round(megabytes / best[name], 2) for name in models},
              "ratio_model_over_baseline": round(best["baseline"] / best["model"], 3),
              "models": {name: m.path for name, m in models.items()}, "blinding": {n: m.blinder is not None for n, m in models.items()}}
    sys.stdout.write(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
