"""The options every query command shares, declared once, and turning them into ledger Filters.

Each option has a metavar (DURATION, NAME, K=V, FORMAT) and help with an example, so that
`--help` reads like a finished tool; Typer adds the default."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from typer.core import TyperArgument, TyperCommand

from pflow_metrics.cli.options import parse_pairs
from pflow_metrics.errors import UsageError
from pflow_metrics.record import RUN_STATUSES
from pflow_metrics.timewindow import parse_moment

if TYPE_CHECKING:
    from pflow_metrics.ledger.filters import Filters


class Format(str, Enum):
    """--format of every listing command (`export` has its own)."""

    table = "table"
    json = "json"
    csv = "csv"
    markdown = "markdown"


class PageFormat(str, Enum):
    """--format of `report` and `runs show`, which also make an HTML page."""

    table = "table"
    json = "json"
    csv = "csv"
    markdown = "markdown"
    html = "html"


class GateFormat(str, Enum):
    """--format of `gate`: a verdict is several tables, so no CSV."""

    table = "table"
    json = "json"
    markdown = "markdown"


FORMAT_HELP = "table, json, csv (one table) or markdown. Example: --format csv."
Since = Annotated[str, typer.Option(
    "--since", metavar="WHEN",
    help="Start of the window: an age (30m, 24h, 7d, 2w, 3mo), a date (2026-11-01) or today. Example: --since 24h.")]
Until = Annotated[str | None, typer.Option(
    "--until", metavar="WHEN", help="End of the window, same forms as --since. Default: now. Example: --until today.")]
Workflow = Annotated[list[str] | None, typer.Option(
    "--workflow", metavar="NAME",
    help="Only this workflow; a glob, repeatable. Default: all. Example: --workflow 'nightly-*'.")]
Model = Annotated[str | None, typer.Option(
    "--model", metavar="MODEL", help="Only calls to this model. Default: all. Example: --model gpt-4o.")]
Status = Annotated[str | None, typer.Option(
    "--status", metavar="STATUS",
    help=f"Only runs with this status: {', '.join(RUN_STATUSES)}. Default: all. Example: --status failed.")]
Tag = Annotated[list[str] | None, typer.Option(
    "--tag", metavar="K=V", help="Only runs with this tag, repeatable. Default: all. Example: --tag team=data.")]
FormatOption = Annotated[Format, typer.Option("--format", metavar="FORMAT", help=FORMAT_HELP)]
PageFormatOption = Annotated[PageFormat, typer.Option(
    "--format", metavar="FORMAT",
    help="table, json, csv (one table), markdown or html (a page; with -o FILE). Example: --format html -o out.html.")]
Output = Annotated[Path | None, typer.Option(
    "-o", "--output", metavar="FILE", help="Write to this file instead of stdout. Default: stdout. Example: -o report.html.")]


class _Argument(TyperArgument):
    """An argument shown in usage and help by its metavar as written (FILE..., RUN_ID), without
    Typer's `{name}` braces and `:TEXT` type placeholders."""

    def make_metavar(self, ctx: typer.Context, *, usage: bool = False) -> str:
        name = self.metavar or self.name.upper() + ("..." if self.nargs != 1 else "")
        return f"[{name}]" if usage and not self.required and not name.startswith("[") else name


class Command(TyperCommand):
    """A command whose arguments read as `_Argument` does (`app.command(..., cls=Command)`)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for param in self.params:
            if type(param) is TyperArgument:
                param.__class__ = _Argument


def parse_tags(pairs: list[str] | None) -> dict[str, str]:
    return parse_pairs(pairs, lambda pair: f"--tag: expected K=V, got '{pair}'")


def build_filters(since: str | None, until: str | None, workflow: list[str] | None, model: str | None,
                  status: str | None, tag: list[str] | None) -> Filters:
    from pflow_metrics.ledger.filters import Filters

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
