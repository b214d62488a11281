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
