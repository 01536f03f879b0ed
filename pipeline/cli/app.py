"""The `gristmill` command: run a job, print its stats, train on its shards."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table
from gristmill.pipeline.engine.run_folder import STATS, RunFolder

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Web-scale pretraining-data curation on Ray.")
console = Console(width=None if sys.stdout.isatty() else 160)


def _fail(message: str) -> None:
    console.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(2)


def _local_only(path: Path) -> None:
    """Commands that read a run folder read a local one; a URI (which Path turned into `s3:/…`) is refused."""
    import re

    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]+:/", str(path)):  # two letters at least: not a drive letter
        _fail(f"{path}: this command reads a local run folder; copy the published run down first "
              "(e.g. aws s3 cp --recursive URI DIR); `gristmill stats` reads a URI itself")


@app.command("run")
def run_command(
    job_file: Path = typer.Argument(..., help="YAML job file (e.g. jobs/quickstart.yaml)"),
    input: Optional[list[str]] = typer.Option(None, "--input", "-i", help="input paths, globs or URIs (--input A B ... or --input A --input B); they replace the job's sources"),
    # click gives an option one value each time it is named, so the values after the first one of
    # `--input A B` arrive here as positional arguments; they are inputs only when --input was given.
    more_inputs: Optional[list[str]] = typer.Argument(None, hidden=True, metavar="INPUT"),
    output: Optional[str] = typer.Option(None, "--output", "-o", help="run folder or URI, e.g. s3://bucket/prefix (default: the job's output, or runs/NAME)"),
    resume: bool = typer.Option(False, "--resume", help="finish the interrupted run in the run folder: skip its completed inputs and steps"),
    staging: Optional[Path] = typer.Option(None, "--staging", help="with an output URI: the local folder the run works in before it is uploaded (default: ~/.cache/gristmill/staging/...)"),
):
    """Run a job on Ray (local, or the cluster in RAY_ADDRESS): WARC → curated Parquet → shards."""
    from gristmill.pipeline.engine.api import run
    from gristmill.schemas.job import JobError, load_job
    from gristmill.schemas.stats import LedgerError

    if more_inputs and not input:
        _fail(f"unexpected argument {more_inputs[0]!r}: inputs go after --input (--input PATH_OR_GLOB ...)")
    inputs = [*input, *(more_inputs or [])] if input else None
    try:
        job = load_job(job_file)
        result = run(job, output=output, inputs=inputs, log=lambda m: console.print(m, highlight=False), resume=resume,
                     staging=staging)
    except JobError as err:
        _fail(str(err))
    except LedgerError as err:
        _fail(f"the run lost or duplicated records: {err}")
    from gristmill.pipeline.engine.storage import read_run_file

    print_stats(json.loads(read_run_file(result.uri or result.output, STATS)))
    console.print(f"run folder: {result.uri or result.output}")


def print_stats(stats: dict) -> None:
    from gristmill.pipeline.cli.report import ledger_table

    console.print(ledger_table(stats["ledger"], by_reason=True))

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
    print_sections(stats)


def print_sections(stats: dict) -> None:
    """The parts of stats.json other stages add: crawl, PII, seconds, representation."""
    for index, crawled in sorted((stats.get("crawl") or {}).items()):
        console.print(f"crawl {index}: {crawled['fetched']} fetched ({crawled['pages_per_s']} pages/s), status "
                      f"{crawled['status']}, robots-disallowed {crawled['robots_disallowed']}, refused "
                      f"{crawled['refused']}, aborted {crawled['aborted']}; WARC in {crawled['folder']}", highlight=False)
    if stats.get("pii"):
        pii = stats["pii"]
        found = ", ".join(f"{entity} {n}" for entity, n in pii["by_type"].items())
        console.print(f"pii: {pii['documents_with_pii']} documents with PII; redacted {found}", highlight=False)
    console.print(f"seconds: {stats['seconds']}", highlight=False)
    if stats.get("representation"):
        from gristmill.pipeline.cli.bias import representation_table

        console.print(representation_table(stats["representation"]))


job_app = typer.Typer(no_args_is_help=True, help="Read a job file as the run will.")
app.add_typer(job_app, name="job")


@job_app.command("show")
def job_show_command(job_file: Path = typer.Argument(..., help="YAML job file (e.g. jobs/demo-archive.yaml)")):
    """Print the resolved job as YAML: every option with its value, defaults and `extends:` applied, paths
    made absolute; a section that is off lists its options as comments. The options: schemas/job.py."""
    from gristmill.schemas.job import JobError, load_job, show_yaml

    try:
        job = load_job(job_file)
    except JobError as err:
        _fail(str(err))
    sys.stdout.write(f"# {job_file}, resolved\n{show_yaml(job)}")


@app.command("stats")
def stats_command(
    run_dir: str = typer.Argument(..., help="run folder, or the URI a run was published to (s3://bucket/prefix)"),
    as_json: bool = typer.Option(False, "--json", help="print stats.json as is"),
):
    """Print a run's funnel (per stage in/out/dropped by reason, seconds, throughput) and kept vs dropped by
    language and domain; --json: the same as JSON."""
    from gristmill.pipeline.cli.report import print_stats_view, stats_view
    from gristmill.pipeline.engine.storage import StorageError, stats_of_uri, is_uri

    try:
        view = stats_of_uri(run_dir, stats_view) if is_uri(run_dir) else stats_view(Path(run_dir))
    except (FileNotFoundError, StorageError) as err:
        _fail(str(err))
    if as_json:
        sys.stdout.write(json.dumps(view, indent=2) + "\n")
    else:
        print_stats_view(view, console)
        print_sections(view)


@app.command("report")
def report_command(
    run_dir: Path = typer.Argument(..., help="run folder"),
    seed: int = typer.Option(0, "--seed", help="which sample documents are shown"),
):
    """Write RUN/report.html: one self-contained page (no network) with the funnel, score histograms and
    thresholds, kept vs dropped by language and domain, dedup, PII, representation and sample documents."""
    from gristmill.pipeline.tools.report_html import build_report

    _local_only(run_dir)
    try:
        path = build_report(run_dir, seed=seed)
    except FileNotFoundError as err:
        _fail(str(err))
    console.print(f"report: {path}", highlight=False)


@app.command("inspect")
def inspect_command(
    run_dir: Path = typer.Argument(..., help="run folder"),
    reason: Optional[str] = typer.Option(None, "--reason", "-r", help="drop reason to page through (see gristmill stats)"),
    kept: bool = typer.Option(False, "--kept", help="show kept documents instead"),
    n: int = typer.Option(5, "--n", help="documents to show"),
    seed: int = typer.Option(0, "--seed", help="which documents are sampled"),
    as_json: bool = typer.Option(False, "--json", help="print the documents as JSON"),
):
    """Show sampled dropped (or kept) documents with their scores and the spans behind the reason highlighted."""
    from gristmill.pipeline.cli.report import inspect_documents

    _local_only(run_dir)
    if not kept and not reason:
        _fail("give --reason REASON (or --kept)")
    if not RunFolder(run_dir).stats.exists():
        _fail(f"{RunFolder(run_dir).stats} not found: is {run_dir} a finished gristmill run?")
    inspect_documents(run_dir, reason, kept, n, seed, console, as_json=as_json)


@app.command("rethreshold")
def rethreshold_command(
    run_dir: Path = typer.Argument(..., help="run folder"),
    settings: list[str] = typer.Option(..., "--set", help="KEY=VALUE of the job, e.g. quality.min_words=200 (repeatable)"),
    write: Optional[Path] = typer.Option(None, "--write", help="write the new run folder (curated/, rejected/, stats.json) here"),
):
    """What-if: recompute decisions from the stored scores (no model runs; dedup re-clusters stored
    signatures) and print how the funnel changes."""
    from gristmill.pipeline.cli.report import print_rethreshold
    from gristmill.pipeline.tools.rethreshold import RethresholdError, rethreshold

    try:
        result = rethreshold(run_dir, settings, write=write, log=lambda m: console.print(m, highlight=False))
    except RethresholdError as err:
        _fail(str(err))
    print_rethreshold(result, console)


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


shards_app = typer.Typer(no_args_is_help=True, help="Check a tokenized shards folder, or export it for other trainers.")
app.add_typer(shards_app, name="shards")


def _print_shards_summary(manifest) -> None:
    table = Table(title="shards: verified (checksums, headers, indexes, tokenizer)")
    for name in ("split", "shards", "tokens", "docs"):
        table.add_column(name, justify="left" if name == "split" else "right")
    for split, row in manifest.split_totals().items():
        table.add_row(split, str(row["shards"]), str(row["tokens"]), str(row["docs"]))
    console.print(table)
    console.print(f"tokenizer sha256 {manifest.tokenizer_sha256[:16]}…, vocab {manifest.vocab_size}, eos {manifest.eos_id}, "
                  f"{manifest.dtype}; seed {manifest.seed}, shuffle {manifest.shuffle_method}, split by {manifest.split_by} "
                  f"(val_fraction {manifest.val_fraction:g})", highlight=False)


@shards_app.command("verify")
def shards_verify_command(shards_dir: Path = typer.Argument(..., help="shards folder (RUN/shards)")):
    """Check every shard and the tokenizer against manifest.json; exit 2 naming the first mismatch."""
    from gristmill.pipeline.steps.tokenize import verify_run_shards
    from gristmill.schemas.shards import ShardError

    _local_only(shards_dir)
    try:
        manifest = verify_run_shards(shards_dir)
    except ShardError as err:
        _fail(str(err))
    _print_shards_summary(manifest)


@shards_app.command("export")
def shards_export_command(
    shards_dir: Path = typer.Argument(..., help="shards folder (RUN/shards)"),
    fmt: str = typer.Option(..., "--format", "-f", help="megatron (.bin/.idx) or datatrove (.ds/.ds.index)"),
    out: Path = typer.Option(..., "--out", "-o", help="folder to write the export into"),
):
    """Verify the shards, then write them as Megatron-LM indexed datasets or datatrove token files."""
    from gristmill.pipeline.tools.shards_export import ExportError, export_shards
    from gristmill.schemas.shards import ShardError

    try:
        summary = export_shards(shards_dir, out, fmt)
    except (ShardError, ExportError) as err:
        _fail(str(err))
    for split, part in summary["splits"].items():
        if summary["format"] == "megatron":
            console.print(f"{split}: {out / part['prefix']}.bin/.idx ({part['documents']} docs, {part['tokens']} tokens)",
                          highlight=False)
        else:
            tokens = sum(f["tokens"] for f in part["files"])
            console.print(f"{split}: {out / part['folder']}/ ({len(part['files'])} .ds files, {tokens} tokens)", highlight=False)
    console.print(f"export: {out} ({summary['format']})", highlight=False)


@app.command("crawl")
def crawl_command(
    seeds: Optional[list[str]] = typer.Argument(None, help="seed URLs"),
    out: Path = typer.Option(..., "--out", "-o", help="crawl folder (WARC, journal, frontier, crawl_stats.json); an existing one resumes"),
    seeds_file: Optional[Path] = typer.Option(None, "--seeds-file", help="file with one seed URL a line (# comments)"),
    max_pages: Optional[int] = typer.Option(None, "--max-pages", help="stop after this many fetches"),
    max_depth: int = typer.Option(3, "--max-depth", help="link depth from the seeds"),
    scope: str = typer.Option("seed_hosts", "--scope", help="seed_hosts, domains or any"),
    domain: Optional[list[str]] = typer.Option(None, "--domain", help="with --scope domains: a domain to stay in (repeatable)"),
    include: Optional[list[str]] = typer.Option(None, "--include", help="regex a URL must match (repeatable)"),
    exclude: Optional[list[str]] = typer.Option(None, "--exclude", help="regex of URLs never fetched (repeatable)"),
    allow_host: Optional[list[str]] = typer.Option(None, "--allow-host", help="private/loopback address or network that may be fetched, e.g. 127.0.0.1 (repeatable)"),
    user_agent: Optional[str] = typer.Option(None, "--user-agent", help="user agent; must name a contact URL"),
    delay: float = typer.Option(1.0, "--delay", help="minimum seconds between requests to one host (robots Crawl-delay may raise it)"),
    fetchers: int = typer.Option(2, "--fetchers", help="fetcher actors (hosts are split between them by hash)"),
    connections: int = typer.Option(8, "--connections", help="requests at once per fetcher (to different hosts)"),
    timeout: float = typer.Option(30.0, "--timeout", help="seconds per request, all included"),
    max_body_bytes: int = typer.Option(5_000_000, "--max-body-bytes", help="cap on a body as received and after decompression"),
    no_ray: bool = typer.Option(False, "--no-ray", help="run the fetchers as threads in this process"),
    opt_out_list: Optional[list[str]] = typer.Option(None, "--opt-out-list", help="opt-out list file or URI: its URLs are never fetched (repeatable)"),
):
    """Crawl the web politely from SEEDS into WARC files (robots.txt obeyed; private addresses refused)."""
    from pydantic import ValidationError

    from gristmill.pipeline.crawl import CrawlConfig, crawl

    urls = list(seeds or [])
    if seeds_file is not None:
        urls += [line.strip() for line in seeds_file.read_text().splitlines() if line.strip() and not line.startswith("#")]
    settings = {"seeds": urls, "max_pages": max_pages, "max_depth": max_depth, "scope": scope,
                "domains": domain or [], "include_patterns": include or [], "exclude_patterns": exclude or [],
                "allow_addresses": allow_host or [], "min_delay_s": delay, "fetchers": fetchers,
                "connections_per_fetcher": connections, "timeout_s": timeout, "max_body_bytes": max_body_bytes,
                "max_decoded_bytes": max_body_bytes, "use_ray": not no_ray, "opt_out_lists": opt_out_list or []}
    if user_agent:
        settings["user_agent"] = user_agent
    try:
        config = CrawlConfig(**settings)
        result = crawl(config, out, log=lambda m: console.print(m, highlight=False))
    except (ValidationError, ValueError) as err:
        _fail(str(err))
    stats = result.stats
    table = Table(title=f"crawl: {'complete' if result.completed else 'stopped (resume by running it again)'}")
    table.add_column("what")
    table.add_column("count", justify="right")
    table.add_row("pages fetched", str(stats["pages"]))
    for status_class, n in sorted(stats["status"].items()):
        table.add_row(f"  status {status_class}", str(n))
    table.add_row("robots.txt disallowed", str(stats["robots_disallowed"]))
    table.add_row("opted out (links not queued)", str(stats.get("opted_out", 0)))
    for group in ("refused", "aborted", "errors"):
        for reason, n in sorted(stats[group].items()):
            table.add_row(f"{group}: {reason}", str(n))
    table.add_row("bytes received", str(stats["bytes"]["received"]))
    table.add_row("pages/s", f"{stats['session']['pages_per_s']:.2f}")
    console.print(table)
    console.print(f"WARC: {', '.join(str(p) for p in result.warc_paths) or '(none)'}", highlight=False)


@app.command("takedown")
def takedown_command(
    run_dir: Path = typer.Argument(..., help="a finished run folder"),
    list_file: list[str] = typer.Option(..., "--list", help="opt-out list (domain:/prefix:/url:/sha256:/id: lines, or YAML); repeatable"),
    near_copies: bool = typer.Option(False, "--near-copies", help="also remove documents in the same dedup cluster"),
):
    """Remove listed documents from a finished run: curated Parquet, affected shards, manifest, ledger, audit."""
    from gristmill.pipeline.cli.takedown import takedown_main

    takedown_main(run_dir, list_file, near_copies, console, _fail)


@app.command("demo-server")
def demo_server_command(
    port: int = typer.Option(8000, "--port", help="first port; the four demo hosts take port..port+3 (0: any free ports)"),
    seed: int = typer.Option(0, "--seed", help="demo site seed"),
    crawl_delay: float = typer.Option(0.1, "--crawl-delay", help="Crawl-delay in each robots.txt (negative: none)"),
    log: Optional[Path] = typer.Option(None, "--log", help="append each request as a JSON line to this file"),
):
    """Serve the demo web on 127.0.0.1 (one port per host) until Ctrl-C; crawl it with --allow-host 127.0.0.1."""
    from gristmill.pipeline.demo.server import serve

    serve(port=port, seed=seed, crawl_delay_s=crawl_delay if crawl_delay >= 0 else None,
          log_path=str(log) if log else None, echo=lambda m: console.print(m, highlight=False))


@app.command("train-toxicity")
def train_toxicity_command(
    shared_data: Path = typer.Argument(..., help="the shared data folder (needs toxicity-davidson/; uses quality-text-samples/)"),
    out: Path = typer.Option(Path("filters/models/toxicity-davidson.ftz"), "--out", "-o", help="model file to write"),
    seed: int = typer.Option(0, "--seed", help="held-out split and training seed"),
):
    """Train the fastText toxicity model by each recipe, audit each, ship the one chosen on the tuning half; see its MODEL_CARD.md."""
    from gristmill.pipeline.cli.bias import train_toxicity

    try:
        train_toxicity(shared_data, out, seed, console)
    except FileNotFoundError as err:
        _fail(str(err))


@app.command("audit-bias")
def audit_bias_command(
    model: Optional[str] = typer.Option(None, "--model", help="fastText model (default: the shipped one)"),
    label: str = typer.Option("toxic", "--label", help="the model's toxic label"),
    holistic: Optional[str] = typer.Option(None, "--holistic-templates", help="HolisticBias sentence_templates.json, added to the paired audit's frames"),
    half: str = typer.Option("report", "--half", help="the audit half: report (figures) or tune (choosing methods)"),
    audit_file: Optional[str] = typer.Option(None, "--audit", help="neutral-template audit instead: YAML {templates, terms}"),
    templates: Optional[str] = typer.Option(None, "--templates", help="neutral-template audit instead: templates file (YAML list, or HolisticBias sentence_templates.json)"),
    terms: Optional[str] = typer.Option(None, "--terms", help="terms file (one a line, 'axis<TAB>term'; or HolisticBias descriptors.json)"),
    threshold: float = typer.Option(0.5, "--threshold", help="score above which a non-toxic sentence is a false positive"),
    as_json: bool = typer.Option(False, "--json", help="print the report as JSON"),
):
    """The paired identity audit: per term, the false-positive rate on non-toxic sentences at the threshold and
    at 90% specificity, recall on their toxic twins; the spread over terms and the template AUC."""
    from gristmill.pipeline.cli.bias import audit_bias

    if half not in ("report", "tune"):
        _fail(f"--half must be 'report' or 'tune', not {half!r}")
    try:
        audit_bias(model, label, audit_file, templates, terms, threshold, as_json, console, holistic, half)
    except (FileNotFoundError, ValueError) as err:
        _fail(str(err))


@app.command("train-classifier")
def train_classifier_command(config: Path = typer.Argument(..., help="training config YAML (filters/training/classifier_train.py)")):
    """Train a fastText quality classifier; evaluate it on held-out sources (AUC beside length-only)."""
    from gristmill.filters.training.classifier_train import load_config, train

    try:
        train(load_config(config))
    except (OSError, ValueError) as err:
        _fail(str(err))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
