"""The options every query command shares, and turning them into ledger Filters."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer

from pflow_metrics.cli.options import parse_pairs
from pflow_metrics.errors import UsageError
from pflow_metrics.ledger.queries import Filters
from pflow_metrics.record import RUN_STATUSES
from pflow_metrics.timewindow import parse_moment

Since = Annotated[str, typer.Option("--since", help="Start of the window: 30m, 24h, 7d, 2w, 3mo, 2026-11-01, today.")]
Until = Annotated[str | None, typer.Option("--until", help="End of the window (same forms as --since).")]
Workflow = Annotated[list[str] | None, typer.Option("--workflow", help="Workflow name or glob (repeatable).")]
Model = Annotated[str | None, typer.Option("--model", help="Only calls to this model.")]
Status = Annotated[str | None, typer.Option("--status", help="Only runs with this status.")]
Tag = Annotated[list[str] | None, typer.Option("--tag", help="K=V (repeatable).")]
Format = Annotated[str, typer.Option("--format", help="table, json, csv or markdown.")]
Utc = Annotated[bool, typer.Option("--utc", help="Show times in UTC instead of local time.")]

FORMATS = ("table", "json", "csv", "markdown")


def parse_tags(pairs: list[str] | None) -> dict[str, str]:
    return parse_pairs(pairs, lambda pair: f"--tag: expected K=V, got '{pair}'")


def build_filters(since: str | None, until: str | None, workflow: list[str] | None, model: str | None,
                  status: str | None, tag: list[str] | None) -> Filters:
    if status is not None and status not in RUN_STATUSES:
        raise UsageError(f"--status: must be one of {', '.join(RUN_STATUSES)}, got '{status}'")
    start = parse_moment(since, "--since") if since else None
    end = parse_moment(until, "--until") if until else None
    if start is not None and end is not None and start >= end:
        raise UsageError(f"--since {since} is not before --until {until}: the window is empty")
    return Filters(
        since=start,
        until=end,
        workflows=list(workflow or []),
        model=model,
        status=status,
        tags=parse_tags(tag),
    )


def check_format(value: str) -> str:
    if value not in FORMATS:
        raise UsageError(f"--format: must be one of {', '.join(FORMATS)}, got '{value}'")
    return value


def show_time(moment: datetime | None, utc: bool) -> str:
    if moment is None:
        return "-"
    return moment.strftime("%Y-%m-%d %H:%M:%SZ") if utc else moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")
