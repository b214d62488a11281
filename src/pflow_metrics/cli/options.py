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


def open_existing_ledger(ctx: typer.Context, write: bool = False):
    """The ledger for commands that read it, or None when there is none yet (no file, or a
    database without tables): nothing is created. Read commands never change the schema: an
    older ledger is refused with a hint to run `db upgrade`. With `write` (prune, reprice, which
    change runs) an older ledger is upgraded, but still none is created. Another application's
    database is refused (LedgerError, exit 2) and left untouched."""
    from pflow_metrics.errors import LedgerUnavailable
    from pflow_metrics.ledger.engine import NoLedger
    from pflow_metrics.ledger.store import Ledger

    try:
        ledger = Ledger.open(state(ctx).db, upgrade=write, create=False)
    except NoLedger:
        return None
    try:
        ledger.mark_crashed_runs()
    except LedgerUnavailable:  # a read-only ledger still answers questions
        pass
    except BaseException:
        ledger.close()
        raise
    return ledger
