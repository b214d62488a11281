"""`pflow-metrics budget`: exit 1 when spend in the window is over the limit (for CI)."""

from __future__ import annotations

import sys

import typer

from pflow_metrics.cli.options import open_existing_ledger
from pflow_metrics.cli.query_options import Format, Since, Tag, Until, Workflow, build_filters, check_format
from pflow_metrics.cli.render import clean, money, table, to_json
from pflow_metrics.errors import EXIT_FAILURE, UsageError
from pflow_metrics.timewindow import describe_window


def _percent(text: str) -> float:
    try:
        value = float(text.strip().rstrip("%"))
    except ValueError:
        raise UsageError(f"--warn-at: cannot read '{text}'; try 80%") from None
    return value / 100 if text.strip().endswith("%") or value > 1 else value


def budget(ctx: typer.Context,
           max_usd: float = typer.Option(..., "--max-usd", min=0, help="The limit in USD."),
           since: Since = "24h", until: Until = None, workflow: Workflow = None, tag: Tag = None,
           per_run: bool = typer.Option(False, "--per-run", help="Check each run against the limit."),
           warn_at: str = typer.Option("80%", "--warn-at", help="Warn from this share of the limit."),
           fail_on_unpriced: bool = typer.Option(False, "--fail-on-unpriced", help="Unpriced calls fail the check."),
           format: Format = "table") -> None:
    """Exit 0 within budget, 1 over it (or unpriced calls with --fail-on-unpriced), 2 on usage errors."""
    from pflow_metrics.ledger.queries import spend

    fmt = check_format(format)
    warn_ratio = _percent(warn_at)
    filters = build_filters(since, until, workflow, None, None, tag)
    ledger = open_existing_ledger(ctx)
    found = spend(ledger, filters) if ledger is not None else {"cost_usd": 0.0, "unpriced_calls": 0, "runs": []}
    spent = found["cost_usd"]
    offenders = [run for run in found["runs"] if run["cost_usd"] > max_usd] if per_run else []
    ratio = (max(r["cost_usd"] for r in found["runs"]) if per_run and found["runs"] else spent) / max_usd if max_usd else (
        float("inf") if spent else 0.0)
    over = bool(offenders) if per_run else spent > max_usd
    unpriced_fail = fail_on_unpriced and found["unpriced_calls"] > 0
    status = "over" if over else "unpriced" if unpriced_fail else "warn" if ratio >= warn_ratio else "ok"
    window = describe_window(filters.since, filters.until, since)
    verdict = f"budget: {money(spent)} of {money(max_usd)} ({ratio:.0%}) {window}"
    if per_run:
        verdict = f"budget: {len(offenders)} of {len(found['runs'])} runs over {money(max_usd)} per run {window}"
    if found["unpriced_calls"]:
        verdict += f"; {found['unpriced_calls']} unpriced calls not counted"
    if fmt == "json":
        typer.echo(to_json({"spend_usd": spent, "limit_usd": max_usd, "ratio": ratio, "status": status,
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
