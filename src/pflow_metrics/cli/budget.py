"""`pflow-metrics budget`: exit 1 when spend in the window is over the limit (for CI)."""

from __future__ import annotations

import sys
from decimal import Decimal, InvalidOperation

import typer

from pflow_metrics.cli.options import open_existing_ledger
from pflow_metrics.cli.query_options import Format, Since, Tag, Until, Workflow, build_filters, check_format
from pflow_metrics.cli.render import clean, money, table, to_json
from pflow_metrics.errors import EXIT_FAILURE, UsageError
from pflow_metrics.money import ZERO, ratio, usd
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
    from pflow_metrics.ledger.queries import spend

    fmt = check_format(format)
    limit = _limit(max_usd)
    warn_ratio = _percent(warn_at)
    filters = build_filters(since, until, workflow, None, None, tag)
    ledger = open_existing_ledger(ctx)
    found = spend(ledger, filters) if ledger is not None else {"cost_usd": ZERO, "unpriced_calls": 0, "runs": []}
    spent = found["cost_usd"]
    # Exact comparisons: spend equal to the limit is within it.
    offenders = [run for run in found["runs"] if run["cost_usd"] > limit] if per_run else []
    checked = max((r["cost_usd"] for r in found["runs"]), default=ZERO) if per_run else spent
    share = ratio(checked, limit) if limit else None  # no share of a $0 limit
    over = bool(offenders) if per_run else spent > limit
    unpriced_fail = fail_on_unpriced and found["unpriced_calls"] > 0
    near = share >= warn_ratio if share is not None else False
    status = "over" if over else "unpriced" if unpriced_fail else "warn" if near else "ok"
    window = describe_window(filters.since, filters.until, since)
    shown_share = f" ({share:.0%})" if share is not None else ""
    verdict = f"budget: {money(spent)} of {money(limit)}{shown_share} {window}"
    if per_run:
        verdict = f"budget: {len(offenders)} of {len(found['runs'])} runs over {money(limit)} per run {window}"
    if found["unpriced_calls"]:
        verdict += f"; {found['unpriced_calls']} unpriced calls not counted"
    if fmt == "json":
        typer.echo(to_json({"spend_usd": spent, "limit_usd": limit, "ratio": share, "status": status,
                            "unpriced_calls": found["unpriced_calls"],
                            "offenders": [{"run_id": r["id"], "workflow": r["workflow"], "cost_usd": r["cost_usd"]}
                                          for r in offenders]}))
    elif fmt == "markdown":
        mark = {"ok": "✅", "warn": "⚠️", "over": "❌", "unpriced": "❌"}[status]
        lines = [f"### {mark} LLM budget", "", verdict]
        if offenders:
            lines += ["", table([[r["id"][:8], clean(r["workflow"]), money(r["cost_usd"])] for r in offenders],
                                ["run", "workflow", "cost"], "markdown")]
        typer.echo("\n".join(lines))
    else:
        typer.echo(verdict)
        for run in offenders:
            typer.echo(f"  over: run {run['id'][:8]} {clean(run['workflow'])} {money(run['cost_usd'])}")
    if over or unpriced_fail:
        sys.exit(EXIT_FAILURE)
