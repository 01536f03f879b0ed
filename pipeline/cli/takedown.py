"""The body of `gristmill takedown` (registered in cli/app.py): run it, print what it did."""

from __future__ import annotations

from pathlib import Path


def takedown_main(run_dir: Path, lists: list[str], near_copies: bool, console, fail) -> None:
    from rich.table import Table

    from gristmill.pipeline.lists.optout import OptOutError
    from gristmill.pipeline.tools.takedown import TakedownError, takedown
    from gristmill.schemas.shards import ShardError
    from gristmill.schemas.stats import LedgerError

    try:
        result = takedown(run_dir, lists, near_copies=near_copies, log=lambda m: console.print(m, highlight=False))
    except (OptOutError, TakedownError, ShardError) as err:
        fail(str(err))
    except LedgerError as err:
        fail(f"the ledger would not sum after the takedown: {err}")
    table = Table(title="takedown")
    table.add_column("what")
    table.add_column("count", justify="right")
    table.add_row("documents removed", str(result.removed))
    table.add_row("  listed", str(result.matched))
    table.add_row("  near copies (same dedup cluster)", str(result.near_copies))
    table.add_row("curated parts rewritten", str(len(result.curated_parts_rewritten)))
    table.add_row("shards rewritten", str(len(result.shards_rewritten)))
    table.add_row("shards deleted (emptied)", str(len(result.shards_deleted)))
    table.add_row("tokens removed", str(result.tokens_removed))
    table.add_row("already rejected: text cleared", str(result.rejected_scrubbed))
    console.print(table)
    console.print(f"audit record: {result.audit_file}", highlight=False)
