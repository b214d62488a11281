"""`pflow-metrics budget`: exit 1 when spend in the window is over the limit (for CI)."""

from __future__ import annotations

import sys
from decimal import Decimal, InvalidOperation

import typer

from pflow_metrics.cli.options import open_existing_ledger
from pflow_metrics.cli.query_options import Format, Since, Tag, Until, Workflow, build_filters, check_format
from pflow_metrics.cli.render import clean, money, one_line, table, to_json
from pflow_metrics.errors import EXIT_FAILURE, UsageError
from pflow_metrics.money import plain, usd
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


def budget(ctx: typer.Context,
           max_usd: str = typer.Option(..., "--max-usd", help="The limit in USD; spend equal to it is within."),
           since: Since = "24h", until: Until = None, workflow: Workflow = None, tag: Tag = None,
           per_run: bool = typer.Option(False, "--per-run", help="Check each run against the limit."),
           warn_at: str = typer.Option("80%", "--warn-at", help="Warn from this share of the limit."),
           fail_on_unpriced: bool = typer.Option(False, "--fail-on-unpriced", help="Unpriced calls fail the check."),
           format: Format = "table") -> None:
    """Exit 0 within budget, 1 over it (or unpriced calls with --fail-on-unpriced), 2 on usage errors."""
    from pflow_metrics.ledger.budgets import check_budget

    fmt = check_format(format)
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
    if fmt == "json":
        typer.echo(to_json({"spend_usd": check.spend_usd, "limit_usd": limit, "ratio": check.ratio,
                            "status": check.status, "unpriced_calls": check.unpriced_calls,
                            "offenders": check.offenders}))
    elif fmt == "csv":  # one tidy table: the verdict, then one row per run over the limit
        rows = [[check.status, plain(check.spend_usd), plain(limit), "" if check.ratio is None else plain(check.ratio),
                 check.unpriced_calls, check.runs, "", "", ""]]
        rows += [[check.status, plain(check.spend_usd), plain(limit), "", "", "", r["run_id"], r["workflow"],
                  plain(r["cost_usd"])] for r in check.offenders]
        typer.echo(table(rows, ["status", "spend_usd", "limit_usd", "ratio", "unpriced_calls", "runs",
                                "over_run_id", "over_workflow", "over_cost_usd"], "csv"))
    elif fmt == "markdown":
        mark = {"ok": "✅", "warn": "⚠️", "over": "❌", "unpriced": "❌"}[check.status]
        lines = [f"### {mark} LLM budget", "", verdict]
        if check.offenders:
            lines += ["", table([[r["run_id"][:8], clean(r["workflow"]), money(r["cost_usd"])] for r in check.offenders],
                                ["run", "workflow", "cost"], "markdown")]
        typer.echo("\n".join(lines))
    else:
        typer.echo(one_line(verdict))
        for run in check.offenders:
            typer.echo(f"  over: run {run['run_id'][:8]} {clean(run['workflow'])} {money(run['cost_usd'])}")
    if check.failed:
        sys.exit(EXIT_FAILURE)
