"""What every command shares: the global options and opening the ledger they name."""

from __future__ import annotations

from dataclasses import dataclass

import typer


@dataclass
class AppState:
    db: str | None = None


def state(ctx: typer.Context) -> AppState:
    return ctx.find_root().obj or AppState()


def open_ledger(ctx: typer.Context, upgrade: bool = True):
    from pflow_metrics.ledger.store import Ledger

    return Ledger.open(state(ctx).db, upgrade=upgrade)


def open_existing_ledger(ctx: typer.Context):
    """The ledger for read commands, or None when it does not exist yet (never created here)."""
    from pflow_metrics.config import ledger_url, sqlite_path
    from pflow_metrics.errors import LedgerUnavailable
    from pflow_metrics.ledger.store import Ledger

    url = ledger_url(state(ctx).db)
    path = sqlite_path(url)
    if path is not None and (not path.exists() or path.stat().st_size == 0):
        return None
    ledger = Ledger.open(url)
    try:
        ledger.mark_crashed_runs()
    except LedgerUnavailable:  # a read-only ledger still answers questions
        pass
    return ledger
