"""`pflow-metrics db ...`: where the ledger is, which schema it has, what waits in the spool.

Only `db upgrade` creates or changes a ledger's schema; `current` and `check` read, and on a
path with no ledger yet they say so without creating a file or folder.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from typing import Annotated

import typer

from pflow_metrics.cli.options import state
from pflow_metrics.cli.query_options import Format, FormatOption
from pflow_metrics.cli.render import (
    Section,
    columns,
    one_line,
    progress_bar,
    render_sections,
)

app = typer.Typer(help="Inspect and upgrade the ledger database.", no_args_is_help=True)

LEDGER = columns("schema_revision", "head_revision", "crashed_runs", "stale_rollup_days", "spooled_records")
SPOOL = columns("ledger", "waiting", "set_aside", "folder", "note")


class CheckSection(str, Enum):
    ledger = "ledger"
    spool = "spool"


NOT_YET = "it is created by the first recorded run or by `pflow-metrics db upgrade`"


def _schema_revision(ctx: typer.Context, upgrade: bool, progress: Callable[[int, int], None] | None = None) -> str | None:
    """The revision the ledger had when opened (creating it or upgrading it to head if asked).

    Without `upgrade` nothing is created: NoLedger when there is no ledger file, None for an
    empty database. Another application's database is a LedgerError (exit 2), left untouched.
    """
    from pflow_metrics.config import ledger_url
    from pflow_metrics.ledger.engine import (
        NoLedger,
        create_ledger_engine,
        ensure_schema,
    )

    try:
        engine = create_ledger_engine(ledger_url(state(ctx).db), create=upgrade)
    except NoLedger as missing:
        if missing.missing:
            raise
        return None  # an empty SQLite file: looked at, not touched
    try:
        return ensure_schema(engine, upgrade=upgrade, progress=progress)
    finally:
        engine.dispose()


def _where(ctx: typer.Context) -> str:
    from pflow_metrics.config import ledger_url, sqlite_path
    from pflow_metrics.ledger.engine import redact_url

    url = ledger_url(state(ctx).db)
    path = sqlite_path(url)
    return str(path) if path is not None else redact_url(url)


@app.command("path")
def db_path(ctx: typer.Context) -> None:
    """Print the ledger URL in use (the password hidden)."""
    typer.echo(_where(ctx))


@app.command("current")
def db_current(ctx: typer.Context) -> None:
    """Print the ledger's schema revision and whether it is the newest."""
    from pflow_metrics.ledger.engine import HEAD_REVISION, NoLedger

    try:
        found = _schema_revision(ctx, upgrade=False)
    except NoLedger:
        typer.echo(f"no ledger at {_where(ctx)} ({NOT_YET})")
        return
    if found is None:
        typer.echo(f"empty (head is {HEAD_REVISION}; {NOT_YET})")
    elif found == HEAD_REVISION:
        typer.echo(f"{found} (head)")
    else:
        typer.echo(f"{found} (head is {HEAD_REVISION}; run `pflow-metrics db upgrade`)")


@app.command("upgrade")
def db_upgrade(ctx: typer.Context) -> None:
    """Create the ledger or bring its schema to the newest revision."""
    from pflow_metrics.ledger.engine import HEAD_REVISION

    with progress_bar("upgrading the ledger", "revisions") as progress:
        found = _schema_revision(ctx, upgrade=True, progress=progress)
    if found == HEAD_REVISION:
        typer.echo(f"already at {HEAD_REVISION} (head)")
    else:
        typer.echo(f"upgraded {found or 'empty ledger'} -> {HEAD_REVISION}")


@app.command("check")
def db_check(ctx: typer.Context, format: FormatOption = Format.table,
             section: Annotated[CheckSection | None, typer.Option(
                 "--section", metavar="SECTION",
                 help="Only one part: ledger or spool. Default: both (CSV: ledger). "
                      "Example: --section spool.")] = None) -> None:
    """Report the schema state, runs left 'running' by dead processes, and spooled run records
    per ledger."""
    from pflow_metrics.cli.options import open_existing_ledger
    from pflow_metrics.config import ledger_url
    from pflow_metrics.ledger.engine import HEAD_REVISION, NoLedger
    from pflow_metrics.ledger.spool import ledger_identity, spooled_by_ledger

    lines = []
    figures = {"schema_revision": None, "head_revision": HEAD_REVISION, "crashed_runs": None, "stale_rollup_days": None}
    try:
        found = _schema_revision(ctx, upgrade=False)
    except NoLedger:
        lines.append(f"schema: no ledger at {_where(ctx)} ({NOT_YET})")
        found = None
    else:
        figures["schema_revision"] = found
        schema = "empty" if found is None else found + (
            " (head)" if found == HEAD_REVISION else f" (head is {HEAD_REVISION}; run `pflow-metrics db upgrade`)")
        lines.append(f"schema: {schema}")
    if found == HEAD_REVISION:  # never upgrade (modify) a ledger just to check it
        from pflow_metrics.ledger.queries import Filters, count_runs
        from pflow_metrics.ledger.rollups import dirty_days

        ledger = open_existing_ledger(ctx)  # marks runs of dead processes as crashed
        crashed = count_runs(ledger, Filters(status="crashed")) if ledger is not None else 0
        stale = len(dirty_days(ledger)) if ledger is not None else 0
        figures.update(crashed_runs=crashed, stale_rollup_days=stale)
        lines.append(f"crashed runs: {crashed}")
        lines.append(f"roll-ups: {stale} day{'s' if stale != 1 else ''} to rebuild (the next report does it)"
                     if stale else "roll-ups: up to date")
    spooled = spooled_by_ledger()
    this = ledger_identity(ledger_url(state(ctx).db))
    figures["spooled_records"] = sum(len(entry.waiting) for entry in spooled)
    lines.append(f"spooled run records: {figures['spooled_records']}")
    spool = []
    for entry in spooled:
        notes = [note for note, wanted in (("the default ledger, old spool layout", entry.old_layout),
                                           ("this ledger: the next run recorded in it drains them",
                                            entry.ledger == this)) if wanted]
        spool.append({"ledger": entry.ledger, "waiting": len(entry.waiting), "set_aside": len(entry.set_aside),
                      "folder": str(entry.folder), "note": "; ".join(notes)})
        aside = f", {len(entry.set_aside)} refused by the ledger (.bad, kept)" if entry.set_aside else ""
        lines.append(f"  {len(entry.waiting)} for {entry.ledger}" + (f" ({'; '.join(notes)})" if notes else "")
                     + f"{aside} in {entry.folder}")
    if format is Format.table and section is None:  # status lines read better than a one-row table
        typer.echo("\n".join(one_line(line) for line in lines))
        return
    typer.echo(render_sections([Section("ledger", LEDGER, [figures], one=True),
                                Section("spool", SPOOL, spool, "spooled run records", empty="no spooled run records")],
                               format, section))
