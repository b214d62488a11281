"""The ledger's write and read API. Collectors call `begin_run` and `finish_run`; the CLI and
export read run records back with `get_run` and `iter_runs`.

    ledger = Ledger.open()            # the configured ledger, upgraded to head if needed
    ledger.begin_run(record)          # status 'running' at once: a killed process leaves evidence
    ledger.finish_run(record)         # nodes, calls and totals in one transaction; idempotent

Reads run SQL text (ledger/sql.py) through `Ledger.sql()`: on a SQLite file with the stdlib
sqlite3 module, so that a read command never imports SQLAlchemy; elsewhere through the
SQLAlchemy engine's driver. The engine is made the first time something needs it (writes,
schema checks and upgrades, PostgreSQL).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, NamedTuple

from pflow_metrics.config import ledger_url, sqlite_path
from pflow_metrics.context import host_name
from pflow_metrics.errors import LedgerUnavailable, UsageError
from pflow_metrics.ledger.engine import (
    HEAD_REVISION,
    check_sqlite_ledger,
    connect_sqlite,
    create_ledger_engine,
    describe_db_error,
    describe_sqlite_error,
    ensure_schema,
    new_engine,
    older_error,
    redact_url,
    write_connection,
)
from pflow_metrics.ledger.rows import call_rows, node_rows, record_from_rows, run_row
from pflow_metrics.ledger.sql import (
    MAX_IN,
    EngineConnection,
    Sql,
    SqlConnection,
    SqliteConnection,
    escape_like,
    like,
    values_in,
)
from pflow_metrics.record import MAX_RUN_ID, RunRecord, utcnow

if TYPE_CHECKING:
    from sqlalchemy import Engine

# Every write that changes a run, its nodes or calls marks the UTC day it started dirty, so
# that readers rebuild that day's roll-ups (ledger/rollups.py).
MARK_DAY = ("INSERT INTO rollup_dirty_days (day, version) VALUES (?, 1) "
            "ON CONFLICT (day) DO UPDATE SET version = rollup_dirty_days.version + 1")
CRASHED = "the process recording this run died before it finished"


class Stored(NamedTuple):
    runs: int  # written
    new: int  # of them, runs the ledger did not hold before


class Ledger:
    def __init__(self, url: str, engine: Engine | None = None):
        self.url = url
        self.path: Path | None = sqlite_path(url)
        # A plain SQLite file URL is read with the sqlite3 module; one with options (a read-only
        # URI) through SQLAlchemy, which applies them.
        self.direct = self.path is not None and url.startswith("sqlite:///") and "?" not in url
        self._engine = engine

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine, made on first use."""
        if self._engine is None:
            self._engine = new_engine(self.url)
        return self._engine

    @classmethod
    def open(cls, url: str | None = None, *, upgrade: bool = True, create: bool | None = None,
             mark_crashed: bool = False) -> Ledger:
        """Open the ledger at `url` (default: --db / $PFLOW_METRICS_DB / $PFLOW_HOME/metrics.db).

        Writers (`upgrade=True`) create a new ledger or the schema in an empty database and
        upgrade an older one. Readers (`upgrade=False`) never create or change anything: no
        ledger there yet is NoLedger, an older schema a LedgerError that says to upgrade it.
        `create` (default: `upgrade`) alone decides whether a missing or empty ledger is
        created. Another application's database is always a LedgerError, left untouched. A
        SQLite file opened only for reading is checked with the sqlite3 module: no SQLAlchemy.

        With `mark_crashed` (for answering questions about runs), runs whose processes are gone
        are marked crashed first (`mark_crashed_runs`), so that no answer shows them running.
        A ledger that cannot be written now (read-only, locked) still opens, unmarked.
        """
        create = upgrade if create is None else create
        url = ledger_url(url)
        ledger = cls(url)
        if ledger.direct and not (upgrade or create):
            check_sqlite_ledger(ledger.path)  # what ensure_schema checks, without SQLAlchemy
        else:
            engine = ledger._engine = create_ledger_engine(url, create=create)
            try:
                found = ensure_schema(engine, upgrade=upgrade, create=create)
                if not upgrade and found != HEAD_REVISION:
                    raise older_error(ledger.location, found)
            except BaseException:
                engine.dispose()
                raise
        if mark_crashed:
            try:
                ledger.mark_crashed_runs()
            except LedgerUnavailable:  # a read-only ledger still answers questions
                pass
            except BaseException:
                ledger.close()
                raise
        return ledger

    @property
    def location(self) -> str:
        return str(self.path) if self.path is not None else redact_url(self.url)

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # -- writing ---------------------------------------------------------------------------

    def begin_run(self, record: RunRecord) -> None:
        """Write the run row with its current status (normally 'running') straight away."""
        from pflow_metrics.ledger.tables import upsert_run

        with self.writing() as conn:
            conn.execute(upsert_run(conn.dialect.name), run_row(record))
            _mark_days(conn, [record.started_at])

    def finish_run(self, record: RunRecord) -> None:
        """Store the whole run: its row, node executions and LLM calls, in one transaction.

        Idempotent by run id: the run's earlier rows are replaced, never duplicated.
        """
        self.finish_runs([record])

    def finish_runs(self, records: Iterable[RunRecord]) -> Stored:
        """`finish_run` for many records in one transaction (ingest uses it). Returns how many
        runs were written, and how many of them the ledger did not hold before.

        Rows go in with one executemany per table, after the children any earlier write of the
        same runs left (a journalled run, a record ingested twice).
        """
        from pflow_metrics.ledger.tables import DELETE_CALLS, DELETE_NODES, INSERT_CALLS, INSERT_NODES, SELECT_STARTS, \
            upsert_run

        records = list({record.run_id: record for record in records}.values())
        if not records:
            return Stored(0, 0)
        with self.writing() as conn:
            ids = [record.run_id for record in records]
            # A run stored before may have started on another day: both days change.
            earlier = conn.execute(SELECT_STARTS, {"ids": ids}).scalars().all()
            _mark_days(conn, [*earlier, *(record.started_at for record in records)])
            conn.execute(DELETE_NODES, {"ids": ids})
            conn.execute(DELETE_CALLS, {"ids": ids})
            conn.execute(upsert_run(conn.dialect.name), [run_row(record) for record in records])
            nodes = [row for record in records for row in node_rows(record)]
            calls = [row for record in records for row in call_rows(record)]
            if nodes:
                conn.execute(INSERT_NODES, nodes)
            if calls:
                conn.execute(INSERT_CALLS, calls)
        return Stored(len(records), len(records) - len(earlier))

    def journal(self, record: RunRecord, nodes_written: int, calls_written: int) -> tuple[int, int]:
        """Append the nodes and calls a running run finished since the last journal write and
        refresh its heartbeat. Returns the new (nodes_written, calls_written)."""
        from sqlalchemy import update

        from pflow_metrics.ledger.tables import INSERT_CALLS, INSERT_NODES, RUNS

        nodes = node_rows(record, nodes_written)
        calls = call_rows(record, calls_written)
        with self.writing() as conn:
            conn.execute(update(RUNS).where(RUNS.c.id == record.run_id).values(heartbeat_at=utcnow()))
            _mark_days(conn, [record.started_at])
            if nodes:
                conn.execute(INSERT_NODES, nodes)
            if calls:
                conn.execute(INSERT_CALLS, calls)
        return nodes_written + len(nodes), calls_written + len(calls)

    def mark_crashed_runs(self, crash_after: timedelta | None = None) -> int:
        """Mark runs left 'running' by processes that are gone as 'crashed'. Returns how many.

        A run whose heartbeat (refreshed every minute by its writer) is older than `crash_after`
        (default: $PFLOW_CRASH_AFTER, else 10 minutes) is dead, on any host: a pid alone cannot
        tell, since pids are reused and a run inside a PID namespace records a pid that means
        another process here. On this host a run is dead sooner when no process has its pid, or
        the process that has it started after the run did. No stored value makes this fail.
        """
        if crash_after is None:
            from pflow_metrics.config import crash_after as configured_crash_after

            crash_after = configured_crash_after()
        here = host_name()
        stale = utcnow() - crash_after  # config.crash_after() is at most a year
        with self.sql() as conn:
            running = conn.dicts(Sql("SELECT id, host, pid, heartbeat_at, started_at FROM runs WHERE status = ?",
                                     ("running",)))
        dead = [
            run for run in running
            if (run["heartbeat_at"] or run["started_at"]) < stale
            or (run["host"] == here and run["pid"] is not None and not _pid_alive(run["pid"], run["started_at"]))
        ]
        if dead:
            with self.sql(write=True) as conn:
                for start in range(0, len(dead), MAX_IN):
                    ids = [run["id"] for run in dead[start:start + MAX_IN]]
                    conn.run(Sql("UPDATE runs SET status = ?, error = ? WHERE status = ? AND ",
                                 ("crashed", CRASHED, "running")) + values_in("id", ids))
                _mark_days(conn, [run["started_at"] for run in dead])
        return len(dead)

    def delete_runs_started_before(self, cutoff: datetime) -> None:
        """Delete old runs with their node executions and LLM calls."""
        old = Sql("runs.started_at < ?", (cutoff,))
        with self.sql(write=True) as conn:
            _mark_days(conn, [row["started_at"] for row in conn.dicts(Sql("SELECT started_at FROM runs WHERE ") + old)])
            for table in ("node_executions", "llm_calls"):
                conn.run(Sql(f"DELETE FROM {table} WHERE run_id IN (SELECT id FROM runs WHERE ") + old + ")")
            conn.run(Sql("DELETE FROM runs WHERE ") + old)

    def writing(self):
        """A write transaction (BEGIN IMMEDIATE on SQLite) whose driver errors are one line."""
        return _Transaction(self.engine)

    # -- reading ---------------------------------------------------------------------------

    def resolve_run_id(self, prefix: str) -> str:
        """The one run id starting with `prefix`; UsageError if none or several match."""
        if len(prefix) > MAX_RUN_ID:  # no id is that long: no need to ask (nor to build a LIKE)
            raise UsageError(f"no run matches {prefix[:MAX_RUN_ID]!r}...")
        with self.sql() as conn:
            ids = [run_id for (run_id,) in conn.rows(Sql("SELECT id FROM runs WHERE ")
                                                      + like("id", escape_like(prefix) + "%") + " LIMIT 2")]
        if not ids:
            raise UsageError(f"no run matches {prefix!r}")
        if len(ids) > 1:
            raise UsageError(f"several runs match {prefix!r}; give more of the run id")
        return ids[0]

    def get_run(self, run_id: str) -> RunRecord:
        """The run record for a run id or a unique prefix of one."""
        records = list(self.iter_runs([self.resolve_run_id(run_id)]))
        return records[0]

    def iter_runs(self, run_ids: list[str]) -> Iterator[RunRecord]:
        """Run records for the given ids, in the order given (ids not found are skipped)."""
        for start in range(0, len(run_ids), MAX_IN):
            chunk = run_ids[start:start + MAX_IN]
            with self.sql() as conn:
                runs = {row["id"]: row for row in conn.dicts(Sql("SELECT * FROM runs WHERE ") + values_in("id", chunk))}
                children = {
                    table: _by_run(conn.dicts(Sql(f"SELECT * FROM {table} WHERE ") + values_in("run_id", chunk)
                                              + " ORDER BY run_id, seq"))
                    for table in ("node_executions", "llm_calls")}
            for run_id in chunk:
                if run_id in runs:
                    yield record_from_rows(SimpleNamespace(**runs[run_id]),
                                           children["node_executions"].get(run_id, []),
                                           children["llm_calls"].get(run_id, []))

    @contextlib.contextmanager
    def sql(self, write: bool = False) -> Iterator[SqlConnection]:
        """A transaction for SQL text (ledger/sql.py), a write one (BEGIN IMMEDIATE on SQLite)
        with `write`; driver errors are one line. On a SQLite file it runs on the stdlib sqlite3
        module, without SQLAlchemy."""
        if not self.direct:
            with _Transaction(self.engine, write=write) as conn:
                yield EngineConnection(conn)
            return
        conn = connect_sqlite(self.path)
        session = SqliteConnection(conn, lambda exc: describe_sqlite_error(str(self.path), exc))
        try:
            session.run("BEGIN IMMEDIATE" if write else "BEGIN")
            yield session
            session.run("COMMIT")
        finally:
            conn.close()  # without COMMIT, the transaction is rolled back

    def reading(self):
        """A read transaction on the SQLAlchemy engine whose driver errors are one line."""
        return _Transaction(self.engine, write=False)


def _by_run(rows: list[dict]) -> dict[str, list[SimpleNamespace]]:
    """Child rows by their run id, as objects with a field per column (what rows.py reads)."""
    found: dict[str, list[SimpleNamespace]] = {}
    for row in rows:
        found.setdefault(row["run_id"], []).append(SimpleNamespace(**row))
    return found


def _pid_alive(pid: int, run_started_at: datetime | None = None) -> bool:
    """Whether a process on this host has `pid` and may be the one that started a run at
    `run_started_at`. A pid no process can have (0 or less, past the kernel's range, not an
    int) is not alive; nor is one held by a process that started after the run did (the pid
    was reused: Linux's /proc/<pid>/stat start time, in clock ticks since boot, plus the boot
    time). Where /proc cannot tell, a pid that exists counts as alive (the heartbeat decides)."""
    if type(pid) is not int or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except PermissionError:  # alive, owned by someone else
        pass
    except (OSError, OverflowError, ValueError):  # no such process, or a pid too large for the kernel
        return False
    if run_started_at is None:
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            start_ticks = int(stat.read().rsplit(")", 1)[1].split()[19])  # field 22; the name may hold ") "
        with open("/proc/stat", encoding="ascii", errors="replace") as stat:
            boot = next(int(line.split()[1]) for line in stat if line.startswith("btime "))
        process_started = boot + start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return True
    # A run starts after its process; the slack covers whole-second boot time and clock steps.
    return process_started <= run_started_at.timestamp() + 5.0


class _Transaction:
    """A connection and transaction whose driver errors become one-line ledger errors."""

    def __init__(self, engine: Engine, write: bool = True):
        self.engine = engine
        self.write = write

    def __enter__(self):
        from sqlalchemy.exc import DBAPIError

        try:
            self.conn = write_connection(self.engine) if self.write else self.engine.connect()
            self.tx = self.conn.begin()
        except DBAPIError as exc:
            raise describe_db_error(self.engine, exc) from None
        return self.conn

    def __exit__(self, exc_type, exc, tb) -> None:
        from sqlalchemy.exc import DBAPIError

        try:
            if exc_type is None:
                self.tx.commit()
            else:
                self.tx.rollback()
        except DBAPIError as error:
            if exc_type is None:
                raise describe_db_error(self.engine, error) from None
        finally:
            self.conn.close()
        if isinstance(exc, DBAPIError):
            raise describe_db_error(self.engine, exc) from None


def utc_day(moment: datetime) -> str:
    return moment.astimezone(UTC).date().isoformat()  # four-digit years, unlike strftime's %Y


def _mark_days(conn, moments: Iterable[datetime]) -> None:
    """Mark the UTC days of these run starts dirty (MARK_DAY), on a SqlConnection or a
    SQLAlchemy connection (the writers')."""
    days = sorted({utc_day(moment) for moment in moments})
    if days:
        session = conn if isinstance(conn, SqlConnection) else EngineConnection(conn)
        session.run_many(MARK_DAY, [(day,) for day in days])
