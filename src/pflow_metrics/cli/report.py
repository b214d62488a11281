"""`pflow-metrics report` and `pflow-metrics cost`: what runs cost and how they went."""

from __future__ import annotations

from typing import Any

import typer

from pflow_metrics.cli.options import open_existing_ledger
from pflow_metrics.cli.query_options import (Format, Model, Since, Status, Tag, Until, Workflow,
                                             build_filters, check_format)
from pflow_metrics.cli.render import NO_RUNS, bar_chart, clean, duration, money, table, to_json
from pflow_metrics.errors import UsageError


def report(ctx: typer.Context, since: Since = "7d", until: Until = None, workflow: Workflow = None,
           model: Model = None, status: Status = None, tag: Tag = None, format: Format = "table") -> None:
    """Runs, success rate, cost, tokens, durations, top workflows and nodes, cost per UTC day."""
    from pflow_metrics.ledger.queries import report as build_report

    fmt = check_format(format)
    filters = build_filters(since, until, workflow, model, status, tag)
    ledger = open_existing_ledger(ctx)
    data = build_report(ledger, filters) if ledger is not None else None
    if data is None or not data.runs:
        typer.echo(to_json({"since": filters.since, "until": filters.until, "runs": 0}) if fmt == "json" else NO_RUNS)
        return
    if fmt == "json":
        typer.echo(to_json({"since": filters.since, "until": filters.until, **data.to_dict()}))
        return
    statuses = data.statuses
    summary = [
        ["runs", data.runs],
        ["success rate", f"{data.success_rate:.0%}"],
        ["failed / crashed / over budget",
         f"{statuses.get('failed', 0)} / {statuses.get('crashed', 0)} / {statuses.get('budget_exceeded', 0)}"],
        ["total cost", money(data.cost_usd, data.cost_is_lower_bound)
         + _delta(data.cost_usd, data.previous.cost_usd if data.previous else None)],
        ["cost per run", money(data.cost_per_run, data.cost_is_lower_bound)],
        ["LLM calls", data.llm_calls],
        *([f"{kind.replace('_', ' ')}", f"{count:,}"] for kind, count in data.tokens.items()),
        ["duration p50 / p95", f"{duration(data.duration_p50_ms)} / {duration(data.duration_p95_ms)}"],
    ]
    sections = [table(summary, ["", "this window"], fmt)]
    if data.top_workflows:
        sections.append(table([[clean(r.workflow), r.runs, money(r.cost_usd, r.cost_is_lower_bound)]
                               for r in data.top_workflows],
                              ["top workflow", "runs", "cost"], fmt))
    if data.expensive_nodes:
        sections.append(table([[clean(r.workflow), clean(r.node_id), money(r.cost_usd, r.cost_is_lower_bound)]
                               for r in data.expensive_nodes], ["workflow", "most expensive node", "cost"], fmt))
    if data.slowest_nodes:
        sections.append(table([[clean(r.workflow), clean(r.node_id), duration(r.p95_ms), r.executions]
                               for r in data.slowest_nodes], ["workflow", "slowest node", "p95", "runs"], fmt))
    if data.cost_per_day and fmt in ("table", "markdown"):
        chart = bar_chart([(r.day, r.cost_usd) for r in data.cost_per_day])
        sections.append("cost per day (UTC)\n" + (f"```\n{chart}\n```" if fmt == "markdown" else chart))
    if data.unpriced_models:
        sections.append("warning: unpriced models (their cost is not in the totals): "
                        + ", ".join(clean(m) for m in data.unpriced_models))
    typer.echo("\n\n".join(sections))


def _delta(now: Any, before: Any) -> str:
    if not before or now is None:
        return ""
    return f" ({(now - before) / before:+.0%} vs previous window)"


def cost(ctx: typer.Context,
         by: str = typer.Option("model", "--by", help="model, provider, workflow, node, phase, day, week, month; "
                                                      "comma-separated for several."),
         since: Since = "7d", until: Until = None, workflow: Workflow = None, model: Model = None,
         status: Status = None, tag: Tag = None, format: Format = "table") -> None:
    """Calls, runs, tokens and cost grouped by one or more keys, with each group's share (days,
    weeks and months are UTC)."""
    from pflow_metrics.ledger.queries import COST_KEYS, TOKEN_COLUMNS, cost_by

    fmt = check_format(format)
    keys = [key.strip() for key in by.split(",") if key.strip()]
    unknown = [key for key in keys if key not in COST_KEYS]
    if not keys or unknown:
        raise UsageError(f"--by: unknown key '{(unknown or [by])[0]}'; use {', '.join(COST_KEYS)}")
    filters = build_filters(since, until, workflow, model, status, tag)
    ledger = open_existing_ledger(ctx)
    result = cost_by(ledger, filters, keys) if ledger is not None else {"rows": [], "total": None}
    if fmt == "json":
        rows = [{k: v for k, v in row.items() if k != "share"} for row in result["rows"]]
        typer.echo(to_json({"since": filters.since, "until": filters.until, "by": keys, "rows": rows,
                            "total": result["total"]}))
        return
    if not result["rows"]:
        typer.echo(NO_RUNS)
        return
    headers = [*keys, "calls", "runs", *(c.removesuffix("_tokens") for c in TOKEN_COLUMNS), "cost", "share", "unpriced"]
    lines = [[*(clean(row[key]) for key in keys), row["calls"], row["runs"], *(f"{row[c]:,}" for c in TOKEN_COLUMNS),
              money(row["cost_usd"], row["cost_is_lower_bound"]), _share(row["share"]), row["unpriced_calls"]]
             for row in result["rows"]]
    total = result["total"]
    lines.append(["total", *[""] * (len(keys) - 1), total["calls"], total["runs"],
                  *(f"{total[c]:,}" for c in TOKEN_COLUMNS), money(total["cost_usd"], total["cost_is_lower_bound"]),
                  _share(1 if total["cost_usd"] else None), total["unpriced_calls"]])
    typer.echo(table(lines, headers, fmt))


def _share(share: Any) -> str:
    return "-" if share is None else f"{share:.0%}"
