"""`pflow-metrics db ...`: where the ledger is and which schema it has."""

from __future__ import annotations

import typer

from pflow_metrics.cli.options import state

app = typer.Typer(help="Inspect and upgrade the ledger database.", no_args_is_help=True)


def _schema_revision(ctx: typer.Context, upgrade: bool) -> str | None:
    """The revision the ledger had when opened (upgrading it to head if asked)."""
    from pflow_metrics.config import ledger_url
    from pflow_metrics.ledger.engine import create_ledger_engine, ensure_schema

    engine = create_ledger_engine(ledger_url(state(ctx).db))
    try:
        return ensure_schema(engine, upgrade=upgrade)
    finally:
        engine.dispose()


@app.command("path")
def db_path(ctx: typer.Context) -> None:
    """Print the ledger URL in use (the password hidden)."""
    from pflow_metrics.config import ledger_url, sqlite_path
    from pflow_metrics.ledger.engine import redact_url

    url = ledger_url(state(ctx).db)
    path = sqlite_path(url)
    typer.echo(str(path) if path is not None else redact_url(url))


@app.command("current")
def db_current(ctx: typer.Context) -> None:
    """Print the ledger's schema revision and whether it is the newest."""
    from pflow_metrics.ledger.engine import HEAD_REVISION

    found = _schema_revision(ctx, upgrade=False)
    if found is None:
        typer.echo(f"empty (head is {HEAD_REVISION}; it is created on first use or by `db upgrade`)")
    elif found == HEAD_REVISION:
        typer.echo(f"{found} (head)")
    else:
        typer.echo(f"{found} (head is {HEAD_REVISION}; run `pflow-metrics db upgrade`)")


@app.command("upgrade")
def db_upgrade(ctx: typer.Context) -> None:
    """Create the ledger or bring its schema to the newest revision."""
    from pflow_metrics.ledger.engine import HEAD_REVISION

    found = _schema_revision(ctx, upgrade=True)
    if found == HEAD_REVISION:
        typer.echo(f"already at {HEAD_REVISION} (head)")
    else:
        typer.echo(f"upgraded {found or 'empty ledger'} -> {HEAD_REVISION}")


@app.command("check")
def db_check(ctx: typer.Context) -> None:
    """Report the schema state, runs left 'running' by dead processes, and spooled run records."""
    from pflow_metrics.cli.options import open_existing_ledger
    from pflow_metrics.ledger.engine import HEAD_REVISION
    from pflow_metrics.ledger.spool import spooled_files

    found = _schema_revision(ctx, upgrade=False)
    schema = "empty" if found is None else f"{found}" + (" (head)" if found == HEAD_REVISION else f" (head is {HEAD_REVISION})")
    typer.echo(f"schema: {schema}")
    if found == HEAD_REVISION:  # never upgrade (modify) a ledger just to check it
        from pflow_metrics.ledger.queries import Filters, list_runs
        from pflow_metrics.ledger.rollups import dirty_days

        ledger = open_existing_ledger(ctx)  # marks runs of dead processes as crashed
        crashed = list_runs(ledger, Filters(status="crashed"), limit=1000) if ledger is not None else []
        typer.echo(f"crashed runs: {len(crashed)}")
        stale = len(dirty_days(ledger)) if ledger is not None else 0
        typer.echo(f"roll-ups: {stale} day{'s' if stale != 1 else ''} to rebuild (the next report does it)"
                   if stale else "roll-ups: up to date")
    spooled = spooled_files()
    typer.echo(f"spooled run records: {len(spooled)}" + (f" in {spooled[0].parent}" if spooled else ""))
