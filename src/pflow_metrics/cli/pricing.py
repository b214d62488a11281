"""`pricing list`, `pricing show MODEL` and `reprice`: the rates in use, where each came from,
and recomputing stored costs with them.

Exit codes: `pricing show` exits 1 when nobody prices the model; `reprice` exits 0 also when
some calls keep their old cost; bad options are 2. Pricing is imported inside the commands:
genai-prices is slow to import and the report commands must not pay for it.
"""

from __future__ import annotations

import sys
from datetime import datetime
from typing import TYPE_CHECKING, Any

import typer

from pflow_metrics.cli.options import open_existing_ledger
from pflow_metrics.cli.query_options import (
    Command,
    Format,
    FormatOption,
    Since,
    Until,
    Workflow,
    build_filters,
)
from pflow_metrics.cli.render import (
    NO_RUNS,
    clean,
    columns,
    json_rows,
    money,
    progress_bar,
    render_rows,
    to_json,
)
from pflow_metrics.errors import EXIT_FAILURE, UsageError

if TYPE_CHECKING:
    from collections import Counter

    from pflow_metrics.ledger.queries import Filters
    from pflow_metrics.ledger.reprice import ModelChange, RepriceResult
    from pflow_metrics.pricing import Rates

app = typer.Typer(help="The per-million-token rates in use and where each came from.", no_args_is_help=True)

RATES = columns("model", "provider", "input_rate", "output_rate", "cache_read_rate", "cache_creation_rate", "source",
                "origin", hidden=("source",))
MODELS = columns("model", "calls", "calls_changed", "old_cost_usd", "new_cost_usd", "delta_usd")


@app.command("list")
def pricing_list(
    provider: list[str] | None = typer.Option(
        None, "--provider", metavar="PROVIDER",
        help="Only this genai-prices provider, repeatable; pricing-file models are always listed. "
             "Default: the main providers. Example: --provider anthropic."),
    format: FormatOption = Format.table,
) -> None:
    """Your pricing file's models, then today's genai-prices rates of the main providers."""
    from pflow_metrics import pricing

    providers = tuple(provider or pricing.LISTED_PROVIDERS)
    catalogue = pricing.catalogue_providers()
    unknown = [name for name in providers if name not in catalogue]
    if unknown:
        raise UsageError(f"--provider: genai-prices knows no provider '{unknown[0]}'")
    typer.echo(render_rows([_rate_row(rates) for rates in pricing.known_rates(providers)], RATES, format))


@app.command("show", cls=Command)
def pricing_show(
    model: str = typer.Argument(..., metavar="MODEL", help="A model name or pricing-file alias. Example: gpt-4o."),
    provider: str | None = typer.Option(None, "--provider", metavar="PROVIDER",
                                        help="The provider, as a call would name it. Default: any. "
                                             "Example: --provider openai."),
    format: FormatOption = Format.table,
) -> None:
    """One model's rates and their source. Exit 1 when nobody prices the model."""
    from pflow_metrics import pricing

    rates = pricing.rates_for(model, provider)
    if rates is None:
        if format is Format.json:
            typer.echo(to_json({"model": model, "provider": provider, "source": "unknown"}))
        else:
            typer.echo(f"{clean(model)}: unpriced; neither the pricing file ({pricing.pricing_file()}) nor "
                       f"genai-prices {pricing.catalogue_version()} knows it, so its calls get no cost")
        sys.exit(EXIT_FAILURE)
    typer.echo(render_rows([_rate_row(rates)], RATES, format, one=format is not Format.csv))


def _rate_row(rates: Rates) -> dict:
    return {"model": rates.model, "provider": rates.provider,
            **{f"{kind}_rate": rate for kind, rate in rates.as_dict().items()}, "source": rates.source,
            "origin": origin(rates)}


def reprice(ctx: typer.Context, since: Since = "7d", until: Until = None, workflow: Workflow = None,
            dry_run: bool = typer.Option(False, "--dry-run", help="Show the difference; write nothing. "
                                                                  "Default: write the new costs."),
            format: FormatOption = Format.table) -> None:
    """Recompute the stored cost of each LLM call in the window with today's rates."""
    from pflow_metrics.ledger.reprice import reprice as reprice_runs

    fmt = format.value
    filters = build_filters(since, until, workflow, None, None, None)
    ledger = open_existing_ledger(ctx, write=True)
    if ledger is None:
        typer.echo(to_json({"since": filters.since, "until": filters.until, "runs": 0}) if fmt == "json" else NO_RUNS)
        return
    with progress_bar("repricing runs", "runs") as progress:
        result = reprice_runs(ledger, filters, dry_run=dry_run, progress=progress)
    if fmt == "json":
        typer.echo(to_json(_reprice_json(result, filters, dry_run)))
        return
    rows = _model_rows(result)
    if fmt == "csv":
        typer.echo(render_rows(rows, MODELS, fmt))
        return
    verb = "would reprice" if dry_run else "repriced"
    sections = [f"{verb} {result.calls_changed} of {result.calls} calls in {result.runs_changed} of {result.runs} "
                f"runs: {money(result.old_cost_usd)} -> {money(result.new_cost_usd)} ({_signed(result.delta_usd)})"]
    if result.calls:
        sections.append(render_rows(rows, MODELS, fmt, total=_change_row("total", result)))
    notes = _notes(result)
    if notes:
        sections.append("\n".join(f"note: {note}" for note in notes))
    typer.echo("\n\n".join(sections))


def _by_new_cost(result: RepriceResult) -> list[tuple[str, ModelChange]]:
    return sorted(result.models.items(), key=lambda item: -item[1].new_cost_usd)


def _model_rows(result: RepriceResult) -> list[dict]:
    return [_change_row(name, change) for name, change in _by_new_cost(result)]


def _change_row(model: str, change: ModelChange | RepriceResult) -> dict:
    """A row of the reprice table: one model's calls, or (for the total) all of them."""
    return {"model": model, "calls": change.calls, "calls_changed": change.calls_changed,
            "old_cost_usd": change.old_cost_usd, "new_cost_usd": change.new_cost_usd, "delta_usd": change.delta_usd}


def _notes(result: RepriceResult) -> list[str]:
    notes = []
    if result.kept_old_cost:
        notes.append(f"kept the old cost of calls to models nobody prices any more: {_counts(result.kept_old_cost)}")
    if result.still_unpriced:
        notes.append(f"still unpriced: {_counts(result.still_unpriced)}")
    if result.provider_reported:
        notes.append(f"kept {result.provider_reported} provider-reported costs")
    if result.running_skipped:
        notes.append(f"skipped {result.running_skipped} runs still running (their process writes them when they end)")
    return notes


def _counts(calls_by_model: Counter[str]) -> str:
    return ", ".join(f"{clean(model)} ({count} calls)" for model, count in sorted(calls_by_model.items()))


def _signed(value: float) -> str:
    return ("-" if value < 0 else "+") + money(abs(value))


def _reprice_json(result: RepriceResult, filters: Filters, dry_run: bool) -> dict:
    return {
        "since": filters.since, "until": filters.until, "dry_run": dry_run,
        "runs": result.runs, "runs_changed": result.runs_changed,
        "calls": result.calls, "calls_changed": result.calls_changed,
        "old_cost_usd": result.old_cost_usd, "new_cost_usd": result.new_cost_usd, "delta_usd": result.delta_usd,
        "models": json_rows(_model_rows(result), MODELS),
        "kept_old_cost": dict(result.kept_old_cost), "still_unpriced": dict(result.still_unpriced),
        "provider_reported_calls": result.provider_reported, "running_runs_skipped": result.running_skipped,
    }


def origin(rates: Any, at: datetime | None = None) -> str:
    """Where `rates` came from, for people: the pricing file's path, or the genai-prices
    version and the day whose prices were used."""
    from pflow_metrics import pricing

    if rates.source == pricing.OVERRIDE:
        return f"pricing file {pricing.pricing_file()}"
    return f"genai-prices {pricing.catalogue_version()} (bundled data), prices of {pricing.price_day(at)}"
