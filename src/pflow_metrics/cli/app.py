"""The Typer app and the one place where errors become a line on stderr and an exit code.

Command modules are registered here; each imports its heavy dependencies (llm, alembic,
pocketflow, pricing data) inside the command, so that report commands start fast.
"""

from __future__ import annotations

import sys
import warnings

import typer

from pflow_metrics.cli import budget as budget_commands
from pflow_metrics.cli import db as db_commands
from pflow_metrics.cli import export as export_commands
from pflow_metrics.cli import gate as gate_commands
from pflow_metrics.cli import ingest as ingest_commands
from pflow_metrics.cli import pricing as pricing_commands
from pflow_metrics.cli import prune as prune_commands
from pflow_metrics.cli import report as report_commands
from pflow_metrics.cli import runs as runs_commands
from pflow_metrics.cli import trace as trace_commands
from pflow_metrics.cli.options import AppState
from pflow_metrics.cli.query_options import Command
from pflow_metrics.cli.render import one_line, warning_line
from pflow_metrics.cli.run import run as run_command
from pflow_metrics.errors import EXIT_USAGE, PflowMetricsError

app = typer.Typer(
    name="pflow-metrics",
    help="Run PocketFlow workflows and keep a ledger of their timings and LLM costs.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,  # --install-completion / --show-completion for bash, zsh, fish, PowerShell
    rich_markup_mode=None,  # click's plain help: no type placeholders, and rich is never imported
)


@app.callback()
def main_options(
    ctx: typer.Context,
    db: str = typer.Option(
        None, "--db", metavar="URL_OR_PATH",
        help="Ledger: a SQLAlchemy URL or a SQLite file path. Default: $PFLOW_METRICS_DB, "
        "else $PFLOW_HOME/metrics.db. Example: --db postgresql+psycopg://host/metrics.",
    ),
) -> None:
    ctx.obj = AppState(db=db)


app.add_typer(db_commands.app, name="db")
app.command("report")(report_commands.report)
app.command("cost")(report_commands.cost)
app.command("budget")(budget_commands.budget)
app.command("gate")(gate_commands.gate)
app.add_typer(runs_commands.app, name="runs")
app.command("export")(export_commands.export)
app.command("ingest", cls=Command)(ingest_commands.ingest)
app.command("prune")(prune_commands.prune)
app.command("run", cls=Command)(run_command)
app.add_typer(trace_commands.app, name="trace")
app.add_typer(pricing_commands.app, name="pricing")
app.command("reprice")(pricing_commands.reprice)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: expected errors are one line on stderr, never a traceback; so is
    each warning (a world-readable ledger), instead of Python's two lines with source code."""
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        _main(argv)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    typer.echo(warning_line(message), err=True)


def _main(argv: list[str] | None) -> None:
    try:
        app(args=argv, prog_name="pflow-metrics", standalone_mode=False)
    except PflowMetricsError as exc:
        _fail(str(exc), exc.exit_code)
    except KeyboardInterrupt:
        _fail("interrupted", 130)
    except typer.Abort:
        _fail("aborted", 130)
    except Exception as exc:  # usage errors from Typer's click, and anything unforeseen
        if callable(getattr(exc, "format_message", None)) and isinstance(getattr(exc, "exit_code", None), int):
            # A group called without a command has printed its help; its message is empty.
            _fail(one_line(exc.format_message()) or _missing_command(exc), exc.exit_code)
        _fail(f"internal error: {type(exc).__name__}: {one_line(exc)}", 1)
    else:
        sys.exit(0)


def _missing_command(exc: Exception) -> str:
    path = getattr(getattr(exc, "ctx", None), "command_path", None) or "pflow-metrics"
    return f"missing command; `{path} --help` lists them"


def _fail(message: str, code: int = EXIT_USAGE) -> None:
    typer.echo(f"pflow-metrics: error: {one_line(message)}", err=True)  # a path may hold escapes
    sys.exit(code)
