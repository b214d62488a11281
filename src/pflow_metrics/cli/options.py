"""What every command shares: the global options and opening the ledger they name."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import typer

from pflow_metrics.errors import UsageError


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
    database is refused (LedgerError, exit 2) and left untouched. Runs of processes that are
    gone read as crashed (Ledger.open's `mark_crashed`). A SQLite ledger opened only to read is
    checked and read without importing SQLAlchemy (ledger/sql.py)."""
    from pflow_metrics.ledger.engine import NoLedger
    from pflow_metrics.ledger.store import Ledger

    try:
        return Ledger.open(state(ctx).db, upgrade=write, create=False, mark_crashed=True)
    except NoLedger:
        return None


def parse_pairs(items: Iterable[str] | None, error: Callable[[str], str]) -> dict[str, str]:
    """NAME=VALUE items (`--tag K=V`, `run FILE NAME=VALUE`) as a dict, the last of a name
    winning. An item without "=" or without a name is a UsageError saying `error(item)`."""
    pairs = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise UsageError(error(item))
        pairs[name] = value
    return pairs
