"""`prune`: delete runs older than an age."""

from __future__ import annotations

import typer

from pflow_metrics.cli.options import open_existing_ledger
from pflow_metrics.cli.render import progress_bar
from pflow_metrics.timewindow import parse_moment


def prune(ctx: typer.Context,
          older_than: str = typer.Option(..., "--older-than", metavar="AGE",
                                         help="Delete runs that started longer ago than this: 30m, 24h, 90d, 2w, "
                                              "3mo, or a date. Example: --older-than 90d."),
          dry_run: bool = typer.Option(False, "--dry-run", help="Only count what would go. Default: delete.")) -> None:
    """Delete runs that started before the given age."""
    from pflow_metrics.ledger.queries import prune as prune_runs
    from pflow_metrics.record import utcnow

    now = utcnow()
    age = now - parse_moment(older_than, "--older-than", now=now)
    ledger = open_existing_ledger(ctx, write=True)
    with progress_bar("pruning runs", "runs") as progress:
        count = prune_runs(ledger, age, dry_run, progress) if ledger is not None else 0
    typer.echo(f"{'would delete' if dry_run else 'deleted'} {count} runs older than {older_than}")
