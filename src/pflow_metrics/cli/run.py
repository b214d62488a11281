"""`pflow-metrics run`: run a workflow file, or plan one from a request, and record the run.

Exit codes: 0 success, 1 the workflow failed or its budget stopped it, 2 usage or validation
error (nothing recorded), 130/143 stopped by SIGINT/SIGTERM (recorded as failed).
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import Any

import typer

from pflow_metrics.cli.options import state
from pflow_metrics.cli.render import duration, money, one_line, warning_line
from pflow_metrics.errors import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, UsageError
from pflow_metrics.money import dumps


class OutputFormat(str, Enum):
    text = "text"
    json = "json"


class StoppedBySignal(KeyboardInterrupt):
    """Raised in the CLI process (never by the library) when SIGINT or SIGTERM arrives."""

    def __init__(self, signum: int):
        self.exit_code = 128 + signum
        super().__init__(f"stopped by {signal.Signals(signum).name}")


def run(
    ctx: typer.Context,
    args: list[str] = typer.Argument(None, metavar="[FILE] [NAME=VALUE...]",
                                     help="The workflow file (unless --plan), then its inputs. "
                                          "Example: flow.json topic=costs."),
    output_format: OutputFormat = typer.Option(OutputFormat.text, "--output-format", metavar="FORMAT",
                                               help="text, or json: one JSON object on stdout, with metrics. "
                                                    "Example: --output-format json."),
    trace: bool = typer.Option(False, "--trace", help="Write a workflow trace to $PFLOW_HOME/debug. Default: none."),
    trace_planner: bool = typer.Option(False, "--trace-planner",
                                       help="Write the planner's prompts and answers. Default: only when it fails."),
    no_ledger: bool = typer.Option(False, "--no-ledger", help="Do not record the run. Default: record it."),
    budget_usd: float = typer.Option(None, "--budget-usd", metavar="USD",
                                     help="Stop before the next node once cost passes this. Default: no limit. "
                                          "Example: --budget-usd 0.50."),
    tag: list[str] = typer.Option(None, "--tag", metavar="K=V",
                                  help="Tag the run, repeatable. Default: none. Example: --tag team=data."),
    plan: str = typer.Option(None, "--plan", metavar="REQUEST",
                             help="Let an LLM write the workflow, then run it. Default: run FILE. "
                                  "Example: --plan 'summarize README.md'."),
    planner_model: str = typer.Option(None, "--planner-model", metavar="MODEL",
                                      help="The llm model the planner uses. Default: llm's default model. "
                                           "Example: --planner-model gpt-4o-mini."),
    save: Path = typer.Option(None, "--save", metavar="FILE",
                              help="Keep the planned workflow in this file. Default: not kept. "
                                   "Example: --save planned.json."),
    store_prompts: bool = typer.Option(False, "--store-prompts",
                                       help="Keep prompts and answers in the ledger. Default: counts only."),
    otel: bool = typer.Option(False, "--otel", help="Also send the run to OpenTelemetry as it finishes "
                              "(OTEL_EXPORTER_OTLP_ENDPOINT). Default: $PFLOW_METRICS_OTEL, else off. Example: --otel."),
) -> None:
    """Run a JSON workflow (or plan one with --plan) and record its timings and LLM costs."""
    from pflow_metrics.config import ledger_url, otel_enabled, otel_timeout
    from pflow_metrics.runtime.ir import WorkflowInvalid, load_workflow
    from pflow_metrics.runtime.runner import Plan, check_workflow, run_workflow

    args = list(args or [])
    if plan is None and (trace_planner or planner_model or save):
        raise UsageError("--trace-planner, --planner-model and --save need --plan")
    if plan is None and (not args or "=" in args[0]):
        raise UsageError("give a workflow FILE, or a request with --plan")
    if budget_usd is not None and not budget_usd > 0:  # also nan, which no cost ever passes
        raise UsageError(f"--budget-usd must be more than 0, got {budget_usd}")
    otel = otel or otel_enabled()  # bad PFLOW_METRICS_OTEL(_TIMEOUT) values: usage errors before the run
    if otel:
        otel_timeout()
    source = None if plan is not None else args.pop(0)
    given = _pairs(args, "input")
    try:
        ir = None if source is None else load_workflow(source)
        if ir is not None:
            check_workflow(ir, given)
    except WorkflowInvalid as invalid:
        for error in invalid.errors:
            typer.echo(f"pflow-metrics: error: {redact_text(error)}", err=True)
        raise SystemExit(EXIT_USAGE) from None

    # Warnings (a spooled run, a rejected usage entry) become one line each on stderr, after the
    # run, instead of Python's two-line format with a source line.
    with _signals_raise(), warnings.catch_warnings(record=True) as caught:
        outcome = run_workflow(
            ir, given,
            workflow=Path(source).stem if source else "planned",
            plan=Plan(plan, planner_model, trace_planner, save) if plan is not None else None,
            ledger=False if no_ledger else ledger_url(state(ctx).db),
            trace=trace, budget_usd=budget_usd, tags=_pairs(tag or [], "--tag") or None,
            store_prompts=store_prompts, otel=otel,
            progress=_show_progress if sys.stderr.isatty() else None,
        )
    _report(outcome, output_format, caught)
    raise SystemExit(_exit_code(outcome.error))


def _pairs(items: list[str], what: str) -> dict[str, str]:
    from pflow_metrics.cli.options import parse_pairs

    return parse_pairs(items, lambda item: f"{what} {item!r}: expected NAME=VALUE")


@contextmanager
def _signals_raise() -> Iterator[None]:
    """SIGINT and SIGTERM raise StoppedBySignal, so the run is recorded as stopped, not lost."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: Any) -> None:
        raise StoppedBySignal(signum)

    previous = {number: signal.signal(number, stop) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _show_progress(node_id: str, event: str, seconds: float) -> None:
    if event == "start":
        typer.echo(f"▸ {node_id} …", err=True)
    else:
        typer.echo(f"{'✓' if event == 'done' else '✗'} {node_id} {seconds:.2f}s", err=True)


def _exit_code(error: BaseException | None) -> int:
    if error is None:
        return EXIT_OK
    if isinstance(error, StoppedBySignal):
        return error.exit_code
    if isinstance(error, KeyboardInterrupt):
        return 130
    return EXIT_FAILURE


def _report(outcome: Any, output_format: OutputFormat, caught: list[warnings.WarningMessage] = ()) -> None:
    from pflow_metrics.ledger.writer import LedgerWarning

    result = outcome.result
    # Every line about the run goes through the redactor: warnings, the error, the summary.
    # (The outputs are the workflow's own results, printed as they are.)
    for warning in caught:
        if not issubclass(warning.category, LedgerWarning):  # that one is result.ledger_warning
            typer.echo(redact_text(warning_line(warning.message)), err=True)
    if getattr(result, "ledger_warning", None):
        typer.echo(redact_text(warning_line(result.ledger_warning)), err=True)
    if outcome.planner_trace_path:
        typer.echo(f"planner trace: {outcome.planner_trace_path}", err=True)
    if outcome.saved_workflow:
        typer.echo(f"planned workflow saved to {outcome.saved_workflow}", err=True)
    if output_format is OutputFormat.json:
        typer.echo(dumps(json_result(outcome), fallback=str, allow_nan=True))
        return
    for name, value in outcome.outputs.items():
        text = value.rstrip("\n") if isinstance(value, str) else json.dumps(value, default=str)
        typer.echo(f"{name}: {text}")
    if outcome.error is not None:
        where = f"node '{outcome.failed_node}' failed: " if outcome.failed_node else ""
        typer.echo(f"pflow-metrics: error: {where}{_error_text(outcome.error)}", err=True)
    typer.echo(redact_text(summary_line(result)))
    if result.trace_path:
        typer.echo(f"trace: {result.trace_path}")


def json_result(outcome: Any) -> dict[str, Any]:
    """pflow's JSON output (`result`, `is_error`, `error` as a string, `duration_ms`,
    `duration_planner_ms`, `total_cost_usd`, `num_nodes`, `metrics`), then ours: `run_id`,
    `trace_path`, `error_detail`. A failed run has `"result": null` and `error`; a declared
    output the run never produced is left out of `result`."""
    result = outcome.result
    summary = result.summary or {}
    failed = outcome.error is not None
    body: dict[str, Any] = {"result": None if failed else outcome.outputs, "is_error": failed}
    if failed:
        body["error"] = _error_text(outcome.error)
    body.update({
        "duration_ms": summary.get("duration_ms"),
        "duration_planner_ms": summary.get("duration_planner_ms"),
        "total_cost_usd": summary.get("total_cost_usd"),
        "num_nodes": summary.get("num_nodes", 0),
        "metrics": summary.get("metrics", {}),
        "run_id": result.run_id,
        "trace_path": str(result.trace_path) if result.trace_path else None,
    })
    if failed:
        body["error_detail"] = {
            "message": body["error"],
            "node_id": outcome.failed_node,
            "type": type(outcome.error).__name__,
        }
    return body


def summary_line(result: Any) -> str:
    summary = result.summary or {}
    total = summary.get("metrics", {}).get("total", {})
    parts = [
        result.status,
        duration(summary.get("duration_ms") or 0),
        f"{total.get('nodes_executed', 0)} nodes",
        f"{total.get('input_tokens', 0)} in / {total.get('output_tokens', 0)} out tokens",
        _cost_text(total),
    ]
    if result.recorded:  # with --no-ledger the run id would name nothing
        parts.append(f"run {result.run_id[:8]}")
    return " · ".join(parts)


def _cost_text(total: dict[str, Any]) -> str:
    unpriced = total.get("unpriced_models")
    if unpriced:
        partial = total.get("partial_cost_usd") or 0
        return f"{money(partial, lower_bound=True)} ({', '.join(unpriced)} unpriced)"
    return money(total.get("cost_usd") or 0)


def redact_text(text: str) -> str:
    """The redactor, imported when a run prints: other commands do not pay for its patterns."""
    from pflow_metrics.redaction import redact_text as redact

    return redact(text)


def _error_text(error: BaseException) -> str:
    """The one line an error is shown as, redacted: the exception is the workflow's own, not
    the record's redacted copy (a shell node's stderr may hold a key)."""
    text = redact_text(one_line(error))
    return text or type(error).__name__

