"""`pflow-metrics runs list` and `runs show`."""

from __future__ import annotations

import typer

from pflow_metrics.cli.options import open_existing_ledger
from pflow_metrics.cli.query_options import (Format, Model, Since, Status, Tag, Until, Utc, Workflow,
                                             build_filters, check_format, show_time)
from pflow_metrics.cli.render import NO_RUNS, clean, duration, money, table, to_json
from pflow_metrics.errors import UsageError

app = typer.Typer(help="List recorded runs and show one in detail.", no_args_is_help=True)


@app.command("list")
def runs_list(ctx: typer.Context, since: Since = "7d", until: Until = None, workflow: Workflow = None,
              model: Model = None, status: Status = None, tag: Tag = None, format: Format = "table",
              utc: Utc = False, limit: int = typer.Option(20, "--limit", min=1, max=2**63 - 1)) -> None:
    """Recent runs, newest first."""
    from pflow_metrics.ledger.queries import list_runs

    fmt = check_format(format)
    filters = build_filters(since, until, workflow, model, status, tag)
    ledger = open_existing_ledger(ctx)
    rows = list_runs(ledger, filters, limit) if ledger is not None else []
    if fmt == "json":
        typer.echo(to_json(rows))
        return
    if not rows:
        typer.echo(NO_RUNS)
        return
    typer.echo(table(
        [[row["id"][:8], clean(row["workflow"], 40), row["status"], show_time(row["started_at"], utc),
          duration(row["duration_ms"]),
          money(row["cost_usd"], bool(row["unpriced_calls"]))
          + (f" ({row['unpriced_calls']} unpriced)" if row["unpriced_calls"] else "")] for row in rows],
        ["run", "workflow", "status", "started", "duration", "cost"], fmt))


@app.command("show")
def runs_show(ctx: typer.Context, run_id: str = typer.Argument(..., help="A run id or a unique prefix."),
              format: Format = "table", utc: Utc = False) -> None:
    """One run: its summary, node timeline and LLM calls. --format json gives the run record."""
    fmt = check_format(format)
    ledger = open_existing_ledger(ctx)
    if ledger is None:
        raise UsageError(f"no run matches {run_id!r}")
    record = ledger.get_run(run_id)
    if fmt == "json":
        typer.echo(to_json(record.to_dict()))
        return
    head = [["run", record.run_id], ["workflow", clean(record.workflow)], ["status", record.status],
            ["started", show_time(record.started_at, utc)],
            ["duration", duration(record.duration_ms)],
            ["cost", money(record.priced_cost_usd, bool(record.unpriced_calls))
             + (f" ({record.unpriced_calls} unpriced calls)" if record.unpriced_calls else "")],
            ["tokens", ", ".join(f"{k} {v:,}" for k, v in record.tokens.to_dict().items())]]
    if record.error:
        head.append(["error", clean(record.error, 200)])
    sections = [table(head, ["", ""], fmt)]
    if record.nodes:
        sections.append(table([[f"+{n.start_offset_ms:.0f}ms", clean(n.node_id), n.node_type, n.phase,
                                duration(n.duration_ms), n.status, n.attempts, clean(n.action or "")]
                               for n in record.nodes],
                              ["at", "node", "type", "phase", "duration", "status", "attempts", "action"], fmt))
    if record.llm_calls:
        sections.append(table([[clean(c.node_id), c.phase, clean(c.model), c.provider or "-", c.input_tokens,
                                c.output_tokens, c.cache_read_tokens, c.thinking_tokens, money(c.cost_usd)]
                               for c in record.llm_calls],
                              ["node", "phase", "model", "provider", "input", "output", "cache read", "thinking",
                               "cost"], fmt))
    typer.echo("\n\n".join(sections))
