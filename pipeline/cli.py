"""The `gristmill` command: run a job, print its stats, train on its shards."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Web-scale pretraining-data curation on Ray.")
console = Console(width=None if sys.stdout.isatty() else 160)


def _fail(message: str) -> None:
    console.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(2)


@app.command("run")
def run_command(
    job_file: Path = typer.Argument(..., help="YAML job file (e.g. jobs/quickstart.yaml)"),
    input: Optional[list[str]] = typer.Option(None, "--input", "-i", help="input path or glob; replaces the job's sources"),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="run folder (default: the job's output, or runs/NAME)"),
):
    """Run a job on Ray (local, or the cluster in RAY_ADDRESS): WARC → curated Parquet → shards."""
    from gristmill.pipeline.runner import run
    from gristmill.schemas.job import JobError, load_job
    from gristmill.schemas.stats import LedgerError

    try:
        job = load_job(job_file)
        result = run(job, output=output, inputs=input, log=lambda m: console.print(m, highlight=False))
    except JobError as err:
        _fail(str(err))
    except LedgerError as err:
        _fail(f"the run lost or duplicated records: {err}")
    print_stats(json.loads((result.output / "stats.json").read_text()))
    console.print(f"run folder: {result.output}")


def print_stats(stats: dict) -> None:
    ledger = stats["ledger"]
    table = Table(title="ledger: every input record ends in exactly one place")
    table.add_column("outcome")
    table.add_column("records", justify="right")
    table.add_row("input", str(ledger["input"]))
    table.add_row("kept", str(ledger["kept"]))
    for reason, n in sorted(ledger["dropped"].items(), key=lambda kv: -kv[1]):
        table.add_row(f"  dropped: {reason}", str(n))
    table.add_row("quarantined", str(ledger["quarantined"]))
    accounted = ledger["kept"] + sum(ledger["dropped"].values()) + ledger["quarantined"]
    table.add_row("sum check", f"{'OK' if accounted == ledger['input'] else 'MISMATCH'} ({accounted})")
    console.print(table)

    seconds = {s["stage"]: s for s in stats["stages"]}
    stages = Table(title="funnel: what each stage removed (reasons it owns), and its time")
    for name in ("stage", "dropped", "remaining", "seconds", "MB in", "MB/s", "top reasons"):
        stages.add_column(name, justify="left" if name in ("stage", "top reasons") else "right")
    for row in stats.get("funnel", []):
        s = seconds.get(row["stage"], {})
        dropped = sum(row["dropped"].values()) + row.get("quarantined", 0)
        mb = s.get("bytes_in", 0) / 1e6
        rate = f"{mb / s['seconds']:.2f}" if s.get("seconds") and mb else "-"
        top = ", ".join(f"{k} {v}" for k, v in sorted(row["dropped"].items(), key=lambda kv: -kv[1])[:3])
        stages.add_row(row["stage"], str(dropped), str(row["remaining"]), f"{s.get('seconds', 0):.2f}",
                       f"{mb:.2f}", rate, top)
    console.print(stages)
    if stats.get("tokens"):
        t = stats["tokens"]
        console.print(f"shards: {t['shards']} files, {t['train_tokens']} train tokens ({t['train_docs']} docs), "
                      f"{t['val_tokens']} val tokens ({t['val_docs']} docs), vocab {t['vocab_size']}", highlight=False)
    console.print(f"seconds: {stats['seconds']}", highlight=False)


@app.command("stats")
def stats_command(
    run_dir: Path = typer.Argument(..., help="run folder"),
    as_json: bool = typer.Option(False, "--json", help="print stats.json as is"),
):
    """Print a run's ledger and per-stage table."""
    path = run_dir / "stats.json"
    if not path.exists():
        _fail(f"{path} not found: is {run_dir} a finished gristmill run?")
    stats = json.loads(path.read_text())
    if as_json:
        sys.stdout.write(json.dumps(stats, indent=2) + "\n")
    else:
        print_stats(stats)


@app.command("columns")
def columns_command():
    """Every score column: name, Arrow type, range and meaning (from gristmill.schemas.columns)."""
    from gristmill.schemas import columns as C

    table = Table(title="score columns")
    for name in ("column", "type", "range", "meaning"):
        table.add_column(name)
    for column in C.SCORES.values():
        low = "-inf" if column.low is None else f"{column.low:g}"
        high = "inf" if column.high is None else f"{column.high:g}"
        table.add_row(column.name, str(C.TYPES[column.name]), f"[{low}, {high}]", column.meaning)
    console.print(table)


@app.command("train", context_settings={"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []})
def train_command(ctx: typer.Context):
    """Train the bundled GPT on verified shards (all options: gristmill train --help).

    The same command as `python -m gristmill.train.train`, which needs only torch and numpy on a GPU box.
    """
    try:
        from gristmill.train.train import main as train_main
    except ImportError as err:
        _fail(f"the trainer needs torch: pip install 'gristmill[train]' ({err})")
    raise typer.Exit(train_main(list(ctx.args)))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
