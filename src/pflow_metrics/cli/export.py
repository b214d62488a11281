"""`export`: run records out of the ledger, as JSON lines or CSV."""

from __future__ import annotations

import csv
import sys

import typer

from pflow_metrics.cli.options import open_existing_ledger
from pflow_metrics.cli.query_options import Since, Status, Tag, Until, Workflow, build_filters
from pflow_metrics.errors import UsageError

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
