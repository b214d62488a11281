"""`pflow-metrics report` and `pflow-metrics cost`: what runs cost and how they went."""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Any

import typer

from pflow_metrics.cli.options import open_existing_ledger
from pflow_metrics.cli.query_options import (
    Format,
    FormatOption,
    Model,
    Output,
    PageFormat,
    PageFormatOption,
    Since,
    Status,
    Tag,
    Until,
    Workflow,
    build_filters,
)
from pflow_metrics.cli.render import (
    NO_RUNS,
    Section,
    bar_chart,
    clean,
    columns,
    emit,
    json_rows,
    render_rows,
    render_sections,
    to_json,
)
from pflow_metrics.errors import UsageError
from pflow_metrics.record import TOKEN_FIELDS as TOKENS

TOTALS = ("calls", *TOKENS, "unpriced_calls", "cost_usd", "cost_is_lower_bound")
SUMMARY = columns("since", "until", "runs", "success_rate", "failed", "crashed", "budget_exceeded", "cost_usd",
                  "cost_is_lower_bound", "cost_per_run", "previous_cost_usd", "calls", *TOKENS,
                  "duration_p50_ms", "duration_p95_ms")


class ReportSection(str, Enum):
    summary = "summary"
    workflows = "workflows"
    nodes = "nodes"
    slowest_nodes = "slowest-nodes"
    days = "days"
    unpriced_models = "unpriced-models"


def report(ctx: typer.Context, since: Since = "7d", until: Until = None, workflow: Workflow = None,
           model: Model = None, status: Status = None, tag: Tag = None, format: PageFormatOption = PageFormat.table,
           section: Annotated[ReportSection | None, typer.Option(
               "--section", metavar="SECTION",
               help="Only one part: summary, workflows, nodes, slowest-nodes, days or unpriced-models. "
                    "Default: all (CSV, one table: summary). Example: --section days.")] = None,
           output: Output = None) -> None:
    """Runs, success rate, cost, tokens, durations, top workflows and nodes, cost per UTC day."""
    from pflow_metrics.ledger.queries import report as build_report

    filters = build_filters(since, until, workflow, model, status, tag)
    if format is PageFormat.html and section is not None:
        raise UsageError("--section: an HTML page has every section; leave out --section")
    ledger = open_existing_ledger(ctx)
    data = build_report(ledger, filters) if ledger is not None else None
    if format is PageFormat.html:
        if data is None or not data.runs:
            raise UsageError(NO_RUNS)
        from pflow_metrics.html import (
            report_page,  # the page and its extra: only when asked
        )
        from pflow_metrics.ledger.queries import report_breakdown

        emit(report_page(data, filters, report_breakdown(ledger, filters)), output)
        return
    if section is None and (data is None or not data.runs) and format.value in ("table", "markdown", "json"):
        emit(to_json({"since": filters.since, "until": filters.until, "runs": 0}) if format is PageFormat.json
             else NO_RUNS, output)
        return
    if section is None and format is PageFormat.json:
        emit(to_json({"since": filters.since, "until": filters.until, **data.to_dict()}), output)
        return
    full = section is None and format.value in ("table", "markdown")
    emit(render_sections(_sections(data, filters, full, markdown=format is PageFormat.markdown), format, section),
         output)


def _sections(data: Any, filters: Any, full: bool, markdown: bool) -> list[Section]:
    """The report's tables; `full`: the whole report as text, with days as a bar chart."""
    statuses = data.statuses if data else {}
    summary = {
        "since": filters.since, "until": filters.until, "runs": data.runs if data else 0,
        "success_rate": data.success_rate if data else None,
        **{name: statuses.get(name, 0) for name in ("failed", "crashed", "budget_exceeded")},
        "cost_usd": data.cost_usd if data else None, "cost_is_lower_bound": bool(data and data.cost_is_lower_bound),
        "cost_per_run": data.cost_per_run if data else None,
        "previous_cost_usd": data.previous.cost_usd if data and data.previous else None,
        "calls": data.calls if data else 0, **(data.tokens if data else dict.fromkeys(TOKENS, 0)),
        "duration_p50_ms": data.duration_p50_ms if data else None,
        "duration_p95_ms": data.duration_p95_ms if data else None,
    }
    days = data.cost_per_day if data else []
    unpriced = [{"model": name} for name in (data.unpriced_models if data else [])]
    day_section = Section("days", columns("day", *TOTALS, hidden=TOKENS), days, "cost per day (UTC)")
    unpriced_section = Section("unpriced-models", columns("model"), unpriced, "unpriced models")
    if full:
        chart = bar_chart([(row.day, row.cost_usd) for row in days])
        day_section = Section("days", [], [], "cost per day (UTC)", empty=f"```\n{chart}\n```" if markdown else chart)
        unpriced_section = Section("unpriced-models", [], [], empty=(
            "warning: unpriced models (their cost is not in the totals): "
            + ", ".join(clean(row["model"]) for row in unpriced)) if unpriced else "")
    return [
        Section("summary", SUMMARY, [summary], one=True),
        # Tokens per workflow and node are in JSON and CSV; the tables stay narrow enough to read.
        Section("workflows", columns("workflow", "runs", *TOTALS, hidden=TOKENS), data.top_workflows if data else [],
                "top workflows"),
        Section("nodes", columns("workflow", "node_id", *TOTALS, hidden=TOKENS), data.expensive_nodes if data else [],
                "most expensive nodes"),
        Section("slowest-nodes", columns("workflow", "node_id", "p95_ms", "executions"),
                data.slowest_nodes if data else [], "slowest nodes"),
        day_section,
        unpriced_section,
    ]


def cost(ctx: typer.Context,
         by: str = typer.Option("model", "--by", metavar="KEY[,KEY...]",
                                help="Group by model, provider, workflow, node, phase, day, week or month; "
                                     "comma-separated for several. Example: --by model,workflow."),
         since: Since = "7d", until: Until = None, workflow: Workflow = None, model: Model = None,
         status: Status = None, tag: Tag = None, format: FormatOption = Format.table) -> None:
    """Calls, runs, tokens and cost grouped by one or more keys, with each group's share (days,
    weeks and months are UTC)."""
    from pflow_metrics.ledger.queries import COST_KEYS, cost_by

    keys = [key.strip() for key in by.split(",") if key.strip()]
    unknown = [key for key in keys if key not in COST_KEYS]
    if not keys or unknown:
        raise UsageError(f"--by: unknown key '{(unknown or [by])[0]}'; use {', '.join(COST_KEYS)}")
    filters = build_filters(since, until, workflow, model, status, tag)
    ledger = open_existing_ledger(ctx)
    result = cost_by(ledger, filters, keys) if ledger is not None else {"rows": [], "total": None}
    cols = columns(*keys, "calls", "runs", *TOKENS, "cost_usd", "cost_is_lower_bound", "share", "unpriced_calls")
    fmt = format.value
    total = result["total"]
    total = {**total, "share": 1 if total["cost_usd"] else None} if total else None  # of the priced total
    if fmt == "json":
        typer.echo(to_json({"since": filters.since, "until": filters.until, "by": keys,
                            "rows": json_rows(result["rows"], cols),
                            "total": None if total is None else json_rows([total], cols[len(keys):])[0]}))
        return
    if not result["rows"] and fmt != "csv":
        typer.echo(NO_RUNS)
        return
    typer.echo(render_rows(result["rows"], cols, fmt, total=total))
