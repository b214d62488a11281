"""`pflow-metrics budget`: exit 1 when spend in the window is over the limit (for CI)."""

from __future__ import annotations

import sys
from decimal import Decimal, InvalidOperation

import typer

from pflow_metrics.cli.options import open_existing_ledger
from pflow_metrics.cli.query_options import (
    Format,
    FormatOption,
    Since,
    Tag,
    Until,
    Workflow,
    build_filters,
)
from pflow_metrics.cli.render import (
    columns,
    json_rows,
    money,
    one_line,
    render_rows,
    to_json,
)
from pflow_metrics.errors import EXIT_FAILURE, UsageError
from pflow_metrics.money import usd
from pflow_metrics.timewindow import describe_window


def _percent(text: str) -> Decimal:
    try:
        value = Decimal(text.strip().rstrip("%"))
    except InvalidOperation:
        value = None
    if value is None or not value.is_finite() or value < 0:
        raise UsageError(f"--warn-at: cannot read '{text}'; try 80%")
    return value / 100 if text.strip().endswith("%") or value > 1 else value


def _limit(text: str) -> Decimal:
    try:
        limit = usd(text.strip())
    except ValueError:
        limit = None
    if limit is None or limit < 0:
        raise UsageError(f"--max-usd: '{text:.40}' is not an amount of USD >= 0; try 5 or 0.25")
    return limit


VERDICT = columns("status", "spend_usd", "limit_usd", "ratio", "unpriced_calls", "runs")
OVER = columns("run_id", "workflow", "cost_usd")


def budget(ctx: typer.Context,
           max_usd: str = typer.Option(..., "--max-usd", metavar="USD",
                                       help="The limit in USD; spend equal to it is within. Example: --max-usd 5."),
           since: Since = "24h", until: Until = None, workflow: Workflow = None, tag: Tag = None,
           per_run: bool = typer.Option(False, "--per-run",
                                        help="Check each run against the limit. Default: the window's total."),
           warn_at: str = typer.Option("80%", "--warn-at", metavar="SHARE",
                                       help="Say warn from this share of the limit. Example: --warn-at 90%."),
           fail_on_unpriced: bool = typer.Option(False, "--fail-on-unpriced",
                                                 help="Unpriced calls fail the check. Default: they are only counted."),
           format: FormatOption = Format.table) -> None:
    """Exit 0 within budget (ok or warn), 1 over it (or unpriced calls with --fail-on-unpriced), 2 on usage errors."""
    from pflow_metrics.ledger.budgets import check_budget

    limit = _limit(max_usd)
    warn_ratio = _percent(warn_at)
    filters = build_filters(since, until, workflow, None, None, tag)
    check = check_budget(open_existing_ledger(ctx), filters, limit, per_run=per_run, warn_at=warn_ratio,
                         fail_on_unpriced=fail_on_unpriced)
    window = describe_window(filters.since, filters.until, since)
    shown_share = f" ({check.ratio:.0%})" if check.ratio is not None else ""
    verdict = f"budget: {check.status}: {money(check.spend_usd)} of {money(limit)}{shown_share} {window}"
    if per_run:
        verdict = (f"budget: {check.status}: {len(check.offenders)} of {check.runs} runs over {money(limit)} "
                   f"per run {window}")
    if check.unpriced_calls:
        verdict += f"; {check.unpriced_calls} unpriced calls not counted"
    if format is Format.json:
        typer.echo(to_json({"spend_usd": check.spend_usd, "limit_usd": limit, "ratio": check.ratio,
                            "status": check.status, "unpriced_calls": check.unpriced_calls,
                            "offenders": json_rows(check.offenders, OVER)}))
    elif format is Format.csv:  # one tidy table: the verdict, then each run over the limit beside it
        head = {"status": check.status, "spend_usd": check.spend_usd, "limit_usd": limit, "ratio": check.ratio,
                "unpriced_calls": check.unpriced_calls, "runs": check.runs}
        rows = [head] + [{**head, "ratio": None, "unpriced_calls": None, "runs": None, **run} for run in check.offenders]
        typer.echo(render_rows(rows, VERDICT + OVER, format))
    elif format is Format.markdown:
        mark = {"ok": "✅", "warn": "⚠️", "over": "❌", "unpriced": "❌"}[check.status]
        lines = [f"### {mark} LLM budget", "", one_line(verdict)]
        if check.offenders:
            lines += ["", render_rows(check.offenders, OVER, format)]
        typer.echo("\n".join(lines))
    else:
        typer.echo(one_line(verdict))
        if check.offenders:
            typer.echo(render_rows(check.offenders, OVER, format))
    if check.failed:
        sys.exit(EXIT_FAILURE)
