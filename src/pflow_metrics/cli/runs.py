"""`pflow-metrics runs list` and `runs show`."""

from __future__ import annotations

from enum import Enum
from typing import Annotated

import typer

from pflow_metrics.cli.options import open_existing_ledger
from pflow_metrics.cli.query_options import (
    Command,
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
    columns,
    emit,
    render_rows,
    render_sections,
    to_json,
)
from pflow_metrics.errors import UsageError
from pflow_metrics.money import known_cost
from pflow_metrics.record import MAX_COUNT, TOKEN_KINDS
from pflow_metrics.record import TOKEN_FIELDS as TOKENS

app = typer.Typer(help="List recorded runs and show one in detail.", no_args_is_help=True)

LISTED = columns("run_id", "workflow", "status", "started_at", "duration_ms", "cost_usd", "cost_is_lower_bound",
                 "unpriced_calls", *TOKENS[:2], "error", hidden=(*TOKENS[:2], "error"))
RUN = columns("run_id", "workflow", "status", "started_at", "ended_at", "duration_ms", "cost_usd",
              "cost_is_lower_bound", "unpriced_calls", *TOKENS, "error")
NODES = columns("start_offset_ms", "node_id", "node_type", "phase", "duration_ms", "status", "attempts", "items",
                "action", "error", hidden=("error",))
CALLS = columns("node_id", "phase", "model", "provider", *TOKENS, "cost_usd", "duration_ms", "started_at",
                hidden=("duration_ms", "started_at"))


class RunSection(str, Enum):
    run = "run"
    nodes = "nodes"
    calls = "calls"


@app.command("list")
def runs_list(ctx: typer.Context, since: Since = "7d", until: Until = None, workflow: Workflow = None,
              model: Model = None, status: Status = None, tag: Tag = None, format: FormatOption = Format.table,
              limit: int = typer.Option(20, "--limit", metavar="N", min=1,
                                        help="Show at most N runs. Example: --limit 100.")) -> None:
    """Recent runs, newest first."""
    from pflow_metrics.ledger.queries import list_runs

    filters = build_filters(since, until, workflow, model, status, tag)
    if limit > MAX_COUNT:
        raise UsageError(f"--limit: at most {MAX_COUNT}, got {limit}")
    ledger = open_existing_ledger(ctx)
    rows = list_runs(ledger, filters, limit) if ledger is not None else []
    for row in rows:  # the run record's names
        row["run_id"] = row.pop("id")
    if not rows and format in (Format.table, Format.markdown):
        typer.echo(NO_RUNS)
        return
    typer.echo(render_rows(rows, LISTED, format))


@app.command("show", cls=Command)
def runs_show(ctx: typer.Context,
              run_id: str = typer.Argument(..., metavar="RUN_ID",
                                           help="A run id or a unique prefix of one. Example: 3f2a9c1e."),
              format: PageFormatOption = PageFormat.table,
              section: Annotated[RunSection | None, typer.Option(
                  "--section", metavar="SECTION",
                  help="Only one part: run, nodes or calls. Default: all (CSV: run). "
                       "Example: --section calls.")] = None,
              output: Output = None) -> None:
    """One run: its figures, node timeline and LLM calls. --format json gives the run record."""
    if format is PageFormat.html and section is not None:
        raise UsageError("--section: an HTML page has every section; leave out --section")
    ledger = open_existing_ledger(ctx)
    if ledger is None:
        raise UsageError(f"no run matches {run_id!r}")
    record = ledger.get_run(run_id)
    if format is PageFormat.html:
        from pflow_metrics.html import (
            run_page,  # the page and its extra: only when asked
        )

        emit(run_page(record), output)
        return
    if format is PageFormat.json and section is None:
        emit(to_json(record.to_dict()), output)
        return
    tokens = record.tokens
    figures = {"run_id": record.run_id, "workflow": record.workflow, "status": record.status,
               "started_at": record.started_at, "ended_at": record.ended_at, "duration_ms": record.duration_ms,
               **dict(zip(("cost_usd", "cost_is_lower_bound"),
                          known_cost(record.priced_cost_usd, len(record.llm_calls), record.unpriced_calls))),
               "unpriced_calls": record.unpriced_calls, "error": record.error,
               **{f"{kind}_tokens": getattr(tokens, kind) for kind in TOKEN_KINDS}}
    emit(render_sections([
        Section("run", RUN, [figures], one=True),
        Section("nodes", NODES, record.nodes, "nodes"),
        Section("calls", CALLS, record.llm_calls, "LLM calls"),
    ], format, section), output)
