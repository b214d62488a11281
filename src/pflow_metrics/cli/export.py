"""`export`, `ingest` and `prune`: moving run records between ledgers and trimming old ones."""

from __future__ import annotations

import csv
import sys
from collections.abc import Iterator
from contextlib import nullcontext
from pathlib import Path
from typing import BinaryIO

import typer

from pflow_metrics.cli.options import open_existing_ledger, open_ledger
from pflow_metrics.cli.query_options import Since, Status, Tag, Until, Workflow, build_filters
from pflow_metrics.errors import EXIT_FAILURE, UsageError
from pflow_metrics.timewindow import parse_moment

CSV_COLUMNS = ("run_id", "workflow", "status", "started_at", "ended_at", "duration_ms", "cost_usd",
               "unpriced_calls", "host")


def export(ctx: typer.Context,
           format: str = typer.Option("jsonl", "--format", help="jsonl (run records) or csv (one row per run)."),
           since: Since = "30d", until: Until = None, workflow: Workflow = None, status: Status = None,
           tag: Tag = None) -> None:
    """Write run records to stdout: JSON lines in the run-record shape, or CSV."""
    from decimal import Decimal

    from pflow_metrics.ledger.queries import iter_records
    from pflow_metrics.money import plain

    if format not in ("jsonl", "csv"):
        raise UsageError(f"--format: must be jsonl or csv, got '{format}'")
    filters = build_filters(since, until, workflow, None, status, tag)
    ledger = open_existing_ledger(ctx)
    records = iter_records(ledger, filters) if ledger is not None else iter(())
    out = sys.stdout
    if format == "jsonl":
        for record in records:
            out.write(record.to_json() + "\n")
        return
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for record in records:
        data = record.to_dict()
        writer.writerow([plain(data[c]) if isinstance(data[c], Decimal) else data[c] for c in CSV_COLUMNS])


def ingest(ctx: typer.Context, files: list[str] = typer.Argument(..., help="JSON-lines files, or - for stdin.")) -> None:
    """Add run records to the ledger (idempotent by run id). Exit 1 if any line was bad."""
    from pflow_metrics.ledger.ingest import ingest_lines

    ledger = open_ledger(ctx)
    landed, new, bad = 0, 0, 0
    for name in files:
        # Bytes, split on b"\n" only: each line is decoded on its own, so a byte that is not
        # UTF-8 costs its line, not the file.
        try:
            source = nullcontext(sys.stdin.buffer) if name == "-" else Path(name).open("rb")
        except OSError as exc:
            raise UsageError(f"cannot read {name}: {exc.strerror}") from None
        with source as stream:
            result = ingest_lines(ledger, _read_lines(stream, name))
        landed += result.landed
        new += result.new
        bad += len(result.problems)
        for number, message in result.problems:
            typer.echo(f"{name}:{number}: skipped: {message}", err=True)
    again = f" ({landed - new} already in the ledger, written again)" if landed - new else ""
    typer.echo(f"ingested {landed} runs{again}" + (f"; {bad} bad lines skipped" if bad else ""))
    if bad:
        sys.exit(EXIT_FAILURE)


def _read_lines(stream: BinaryIO, name: str) -> Iterator[bytes]:
    try:
        yield from stream
    except OSError as exc:  # the file went away or the disk failed while reading it
        raise UsageError(f"cannot read {name}: {exc.strerror or exc}") from None


def prune(ctx: typer.Context,
          older_than: str = typer.Option(..., "--older-than", help="e.g. 90d"),
          dry_run: bool = typer.Option(False, "--dry-run", help="Only count what would go.")) -> None:
    """Delete runs that started before the given age."""
    from pflow_metrics.ledger.queries import prune as prune_runs
    from pflow_metrics.record import utcnow

    now = utcnow()
    age = now - parse_moment(older_than, "--older-than", now=now)
    ledger = open_existing_ledger(ctx, write=True)
    count = prune_runs(ledger, age, dry_run) if ledger is not None else 0
    typer.echo(f"{'would delete' if dry_run else 'deleted'} {count} runs older than {older_than}")
