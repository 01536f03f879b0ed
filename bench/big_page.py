"""Memory and time of one page near max_page_bytes, stage by stage (issue 21).

    .venv/bin/python bench/big_page.py [--pages 256] [--memo-pages 6] [--data ../shared/data] [--json OUT.json]

The big page is built as bench/corpus.py builds `--big` pages (about 4.9 MB of HTML, about 4.76 MB of
extracted text: the corpus's own paragraphs, each numbered, so every paragraph is distinct but its
sentences repeat). Three measurements, each in a fresh process:

- **worker**: the split worker's own code (`SplitWorker.process`: read, the per-batch stages of
  jobs/demo-archive.yaml, decide, write the parts) on a WARC of `--pages` ordinary pages (batches of 32),
  then on a WARC of 31 of them plus the big page (one batch). Per stage and WARC: wall seconds and the
  process's peak RSS while the stage ran and its rise above the RSS the stage started from (exact: the
  kernel's high-water mark, reset before each stage through /proc/self/clear_refs; where that is not
  allowed, sampled every 2 ms, so a shorter spike can be missed); and the process's peak after each WARC,
  the figure to compare.
  Extraction runs in its sandbox process, as in a run, so its memory is not the worker's.
- **steps**: the quality and dedup scoring steps on the big page's text alone: wall (untraced) and
  tracemalloc peak (a second, traced pass: tracemalloc slows allocation-heavy Python several times, so
  the traced walls are not speed figures).
- **memo**: `--memo-pages` more big pages through the word tokenizer: the distinct chunks each leaves
  in its memo (kept across documents until MAX_CHUNKS), and the RSS that costs.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from corpus import BIG, big_pages, build, write_warc  # noqa: E402

MIB = 1024 * 1024
PAGE = os.sysconf("SC_PAGE_SIZE")


def prepare(work: Path, pages: int, data: Path | None, memo_pages: int) -> dict:
    """normal.warc.gz, big.warc.gz, big.txt (the big page's extracted text) and big-K.txt (`memo_pages`
    more big pages' texts) under `work`."""
    from gristmill.pipeline.stages.extract_engines import make_engine
    from gristmill.schemas.job import ExtractConfig

    work.mkdir(parents=True, exist_ok=True)
    corpus = build(max(pages, 2000), 0, 0.05, data)
    bigs = [p for p in big_pages(corpus, 1 + memo_pages, 0) if p.kind == BIG]
    big = bigs[0]
    write_warc(work / "normal.warc.gz", corpus[:pages])
    write_warc(work / "big.warc.gz", [*corpus[:31], big])
    extract, _ = make_engine(ExtractConfig().model_dump())
    for k, page in enumerate(bigs):
        text = extract(page.body.decode("utf-8"), "utf-8")
        (work / (f"big-{k}.txt" if k else "big.txt")).write_text(text, encoding="utf-8")
    text = (work / "big.txt").read_text(encoding="utf-8")
    return {"big_html_bytes": len(big.body), "big_text_chars": len(text), "big_text_lines": text.count("\n") + 1,
            "normal_pages": pages, "memo_pages": memo_pages}


def memo(work: Path) -> dict:
    """What each big page leaves in the word tokenizer's chunk memo (kept across documents until it holds
    MAX_CHUNKS chunks): distinct chunks and tokens known, and the process's RSS, after each page."""
    from gristmill.filters.english import EnglishTokenizer
    from gristmill.filters.textsplit import SplitText

    try:
        from gristmill.pipeline.engine.process import release_memory
    except ImportError:  # before issue 21's change
        def release_memory(collect_garbage=False):
            pass
    tokenizer = EnglishTokenizer.shared()
    tokenizer.learn(["warm", "up"])
    release_memory(collect_garbage=True)
    start, out = _rss(), []
    for path in sorted(work.glob("big-*.txt"), key=lambda p: int(p.stem.split("-")[1])):
        text = path.read_text(encoding="utf-8")
        tokenizer.start_document()
        SplitText(text, tokenizer).word_ids  # learns the page's new chunks, as ScoreQuality does
        del text
        release_memory(collect_garbage=True)
        out.append({"chunks": len(tokenizer.chunk_index), "tokens": len(tokenizer.tokens),
                    "rss_growth_mib": (_rss() - start) / MIB})
    return {"max_chunks": tokenizer.max_chunks, "after_each_page": out}


def _rss() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * PAGE


def _maxrss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class PeakRss:
    """The process's peak RSS since the last `reset`: exact where the kernel lets a process reset its
    high-water mark (writing 5 to /proc/self/clear_refs, then reading VmHWM), else sampled by a thread
    every `interval_s` (a spike shorter than that can be missed)."""

    def __init__(self, interval_s: float = 0.002):
        self.overall = _hwm()
        self.exact = _reset_hwm()
        self.peak = _rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(interval_s,), daemon=True)
        if not self.exact:
            self._thread.start()

    def _run(self, interval_s: float) -> None:
        while not self._stop.wait(interval_s):
            self.peak = max(self.peak, _rss())

    def reset(self) -> None:
        self.peak = _rss()
        if self.exact:  # resetting VmHWM resets ru_maxrss too: keep the process's peak here
            self.overall = max(self.overall, _hwm())
            _reset_hwm()

    def process_peak(self) -> int:
        """The process's peak RSS since it started (ru_maxrss, which `reset` would otherwise lose)."""
        return max(self.overall, _hwm()) if self.exact else int(_maxrss_mib() * MIB)

    def read(self) -> int:
        if self.exact:
            return _hwm()
        self.peak = max(self.peak, _rss())
        return self.peak

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()


def _reset_hwm() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def _hwm() -> int:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


class Measured:
    """A stage as the split worker sees it, timed and with the process's peak RSS while it runs."""

    def __init__(self, stage, sampler: PeakRss, figures: dict):
        vars(self).update(_stage=stage, _sampler=sampler, _figures=figures)

    def __getattr__(self, name):
        return getattr(self._stage, name)

    def __setattr__(self, name, value):
        setattr(self._stage, name, value)

    def __call__(self, batch):
        before = _rss()
        self._sampler.reset()
        started = time.perf_counter()
        out = self._stage(batch)
        figures = self._figures.setdefault(self._stage.name, {"wall_s": 0.0, "peak_rss_mib": 0.0, "rise_mib": 0.0})
        figures["wall_s"] += time.perf_counter() - started
        peak = self._sampler.read()
        figures["peak_rss_mib"] = max(figures["peak_rss_mib"], peak / MIB)
        figures["rise_mib"] = max(figures["rise_mib"], (peak - before) / MIB)  # above the RSS it started from
        figures["maxrss_after_mib"] = self._sampler.process_peak() / MIB  # the process's peak so far: which stage raised it
        return out


def worker(work: Path) -> dict:
    """The split worker's own code (`SplitWorker.process`: read, stages, decide, write) on each WARC."""
    import tempfile

    from gristmill.pipeline.engine.api import default_stages
    from gristmill.pipeline.stages.decide import Decide
    from gristmill.pipeline.engine.input_task import SplitTask, SplitWorker
    from gristmill.pipeline.sources.warc import WarcSource
    from gristmill.schemas.job import load_job

    job = load_job(ROOT / "jobs" / "demo-archive.yaml")
    stages = default_stages(job)
    stages.append(Decide([rule for stage in stages for rule in stage.rules()]))
    sampler = PeakRss()
    out = {"start_rss_mib": _rss() / MIB, "exact_peaks": sampler.exact}
    with tempfile.TemporaryDirectory() as folder:
        for index, name in enumerate(("normal", "big")):
            figures: dict = {}
            split_worker = SplitWorker([WarcSource([], job.extract.max_page_bytes)],
                                       [Measured(stage, sampler, figures) for stage in stages],
                                       folder, job.batch_size, job.batch_bytes)
            started = time.perf_counter()
            split_worker.process(SplitTask(index, 0, str(work / f"{name}.warc.gz"), 0))
            out[name] = {"wall_s": time.perf_counter() - started, "rss_after_mib": _rss() / MIB,
                         "maxrss_mib": sampler.process_peak() / MIB, "stages": figures}
    sampler.stop()
    return out


def steps(work: Path) -> dict:
    import tracemalloc

    import pyarrow as pa

    from gristmill.filters import minhash
    from gristmill.filters.c4 import C4LineRules, c4_lines
    from gristmill.filters.english import EnglishTokenizer, paused_gc
    from gristmill.filters.fineweb import fineweb_scores
    from gristmill.filters.gopher import gopher_quality_scores, gopher_repetition_scores
    from gristmill.filters.textsplit import SplitText
    from gristmill.schemas.job import DedupConfig

    text = (work / "big.txt").read_text(encoding="utf-8")
    dedup = DedupConfig()
    # What ComputeDedupSignatures calls (before issue 21's change: `signatures`, the whole text at once).
    sign = getattr(minhash, "document_signatures", minhash.signatures)
    tokenizer = EnglishTokenizer.shared()

    def words():  # as ScoreQuality does it
        tokenizer.start_document()
        try:
            from gristmill.filters.english import chunk_pieces
        except ImportError:  # the code before issue 21's change (for the "before" figures): one list of all chunks
            chunks = text.split()
            tokenizer.learn(chunks)
            split = SplitText(text, tokenizer, chunks)
        else:
            tokenizer.learn(chunk for piece in chunk_pieces(text) for chunk in piece)
            split = SplitText(text, tokenizer)
        split.word_ids
        return split

    def run(traced: bool) -> dict:
        tokenizer._reset()  # each pass learns the text's words afresh
        figures, state = {}, {}
        plan = [
            ("words (SplitText)", lambda: state.setdefault("split", words())),
            ("gopher quality", lambda: gopher_quality_scores(state["split"])),
            ("gopher repetition", lambda: gopher_repetition_scores(state["split"])),
            ("c4 lines", lambda: state.setdefault("c4", c4_lines(state["split"], C4LineRules()))),
            ("fineweb", lambda: fineweb_scores(state["c4"])),
            ("minhash signatures", lambda: sign(pa.array([text], pa.large_string()), dedup.n, dedup.num_perm,
                                                dedup.seed)),
        ]
        with paused_gc():
            for name, step in plan:
                if traced:
                    tracemalloc.start()
                started = time.perf_counter()
                step()
                wall = time.perf_counter() - started
                if traced:
                    figures[name] = {"traced_peak_mib": tracemalloc.get_traced_memory()[1] / MIB, "traced_wall_s": wall}
                    tracemalloc.stop()
                else:
                    figures[name] = {"wall_s": wall}
        return figures

    plain, traced = run(False), run(True)
    return {name: {**plain[name], **traced[name]} for name in plain}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=256, help="ordinary pages in the normal WARC")
    parser.add_argument("--data", type=Path, default=ROOT / ".." / "shared" / "data")
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "bench-big-page")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--memo-pages", type=int, default=6, help="more big pages, for what they leave in the memo")
    parser.add_argument("--part", choices=("worker", "steps", "memo"), help=argparse.SUPPRESS)  # one measurement
    args = parser.parse_args(argv)
    if args.part:
        print(json.dumps({"worker": worker, "steps": steps, "memo": memo}[args.part](args.work)))
        return
    result = {"input": prepare(args.work, args.pages, args.data if args.data.is_dir() else None, args.memo_pages)}
    env = dict(os.environ)
    try:  # each part allocates as a run's workers do: their Arrow pool is set before pyarrow is imported
        from gristmill.pipeline.engine.process import MEMORY_POOL_ENV, memory_pool_name
    except ImportError:  # code before the pool was chosen
        pass
    else:
        env[MEMORY_POOL_ENV] = memory_pool_name()
    for part in ("steps", "worker", "memo"):
        done = subprocess.run([sys.executable, __file__, "--part", part, "--work", str(args.work)],
                              check=True, capture_output=True, text=True, env=env)
        result[part] = json.loads(done.stdout.strip().splitlines()[-1])
    result["load_average"] = os.getloadavg()
    print(f"big page: {result['input']['big_html_bytes']:,} bytes of HTML, "
          f"{result['input']['big_text_chars']:,} characters of text")
    print(f"\n{'step (big page text only)':<22} {'wall s':>7} {'traced peak MiB':>16}")
    for name, f in result["steps"].items():
        print(f"{name:<22} {f['wall_s']:>7.2f} {f['traced_peak_mib']:>16.1f}")
    w = result["worker"]
    print(f"\n{'stage':<12} {'normal: wall s':>14} {'peak RSS MiB':>13}   {'big batch: wall s':>17} {'peak RSS MiB':>13}"
          f" {'rise MiB':>9} {'ru_maxrss after':>16}")
    for name in w["normal"]["stages"]:
        a, b = w["normal"]["stages"][name], w["big"]["stages"][name]
        print(f"{name:<12} {a['wall_s']:>14.2f} {a['peak_rss_mib']:>13.0f}   {b['wall_s']:>17.2f} {b['peak_rss_mib']:>13.0f}"
              f" {b.get('rise_mib', 0):>9.0f} {b['maxrss_after_mib']:>16.0f}")
    print(f"worker ru_maxrss: {w['normal']['maxrss_mib']:.0f} MiB after {args.pages} ordinary pages, "
          f"{w['big']['maxrss_mib']:.0f} MiB after the big batch "
          f"({w['big']['maxrss_mib'] / w['normal']['maxrss_mib'] - 1:+.1%}); RSS at start {w['start_rss_mib']:.0f}, "
          f"after the big batch {w['big']['rss_after_mib']:.0f}")
    for k, page in enumerate(result["memo"]["after_each_page"], 1):
        print(f"memo after big page {k}: {page['chunks']:,} chunks, {page['tokens']:,} tokens, RSS "
              f"+{page['rss_growth_mib']:.0f} MiB ({page['rss_growth_mib'] * MIB / max(1, page['chunks']):.0f} bytes a chunk;"
              f" kept until {result['memo']['max_chunks']:,} chunks)")
    print("load average (1, 5, 15 min) at the end:", ", ".join(f"{x:.2f}" for x in result["load_average"]))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
