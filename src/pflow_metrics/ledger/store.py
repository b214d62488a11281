"""The ledger's write and read API. Collectors call `begin_run` and `finish_run`; the CLI and
export read run records back with `get_run` and `iter_runs`.

    ledger = Ledger.open()            # the configured ledger, upgraded to head if needed
    ledger.begin_run(record)          # status 'running' at once: a killed process leaves evidence
    ledger.finish_run(record)         # nodes, calls and totals in one transaction; idempotent
"""

from __future__ import annotations

import functools
import os
from datetime import UTC, datetime, timedelta
from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple

from sqlalchemy import Engine, bindparam, delete, select, update
from sqlalchemy.exc import DBAPIError

from pflow_metrics.config import ledger_url
from pflow_metrics.context import host_name
from pflow_metrics.errors import LedgerError, LedgerUnavailable, UsageError
from pflow_metrics.ledger.engine import (
    create_ledger_engine,
    describe_db_error,
    describe_location,
    ensure_schema,
    write_connection,
)
from pflow_metrics.ledger.models import LLMCall, NodeExecution, RollupDirtyDay, Run
from pflow_metrics.ledger.rows import call_rows, node_rows, record_from_rows, run_row
from pflow_metrics.record import MAX_RUN_ID, RunRecord, utcnow

RUNS = Run.__table__
NODES = NodeExecution.__table__
CALLS = LLMCall.__table__
DIRTY_DAYS = RollupDirtyDay.__table__
# Built once: statements with bound parameters are compiled once and cached by SQLAlchemy.
_IDS = bindparam("ids", expanding=True)
DELETE_NODES = delete(NODES).where(NODES.c.run_id.in_(_IDS))
DELETE_CALLS = delete(CALLS).where(CALLS.c.run_id.in_(_IDS))
SELECT_STARTS = select(RUNS.c.started_at).where(RUNS.c.id.in_(_IDS))
INSERT_NODES = NODES.insert()
INSERT_CALLS = CALLS.insert()


class Stored(NamedTuple):
    runs: int  # written
    new: int  # of them, runs the ledger did not hold before


class Ledger:
    def __init__(self, engine: Engine):
        self.engine = engine

    @classmethod
    def open(cls, url: str | None = None, *, upgrade: bool = True, create: bool | None = None,
             mark_crashed: bool = False) -> Ledger:
        """Open the ledger at `url` (default: --db / $PFLOW_METRICS_DB / $PFLOW_HOME/metrics.db).

        Writers (`upgrade=True`) create a new ledger or the schema in an empty database and
        upgrade an older one. Readers (`upgrade=False`) never create or change anything: no
        ledger there yet is NoLedger, an older schema a LedgerError that says to upgrade it.
        `create` (default: `upgrade`) alone decides whether a missing or empty ledger is
        created. Another application's database is always a LedgerError, left untouched.

        With `mark_crashed` (for answering questions about runs), runs whose processes are gone
        are marked crashed first (`mark_crashed_runs`), so that no answer shows them running.
        A ledger that cannot be written now (read-only, locked) still opens, unmarked.
        """
        from pflow_metrics.ledger.engine import HEAD_REVISION

        create = upgrade if create is None else create
        engine = create_ledger_engine(ledger_url(url), create=create)
        try:
            found = ensure_schema(engine, upgrade=upgrade, create=create)
            if not upgrade and found != HEAD_REVISION:
                raise LedgerError(
                    f"ledger {describe_location(engine)} has schema {found}, older than this pflow-metrics "
                    f"({HEAD_REVISION}); run `pflow-metrics db upgrade` (or record a run) first"
                )
        except BaseException:
            engine.dispose()
            raise
        ledger = cls(engine)
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
        return describe_location(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # -- writing ---------------------------------------------------------------------------

    def begin_run(self, record: RunRecord) -> None:
        """Write the run row with its current status (normally 'running') straight away."""
        with self.writing() as conn:
            _upsert(conn, run_row(record))
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
            conn.execute(_upsert_statement(conn.dialect.name), [run_row(record) for record in records])
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
        with self.reading() as conn:
            running = conn.execute(
                select(RUNS.c.id, RUNS.c.host, RUNS.c.pid, RUNS.c.heartbeat_at, RUNS.c.started_at)
                .where(RUNS.c.status == "running")
            ).all()
        dead = [
            run for run in running
            if (run.heartbeat_at or run.started_at) < stale
            or (run.host == here and run.pid is not None and not _pid_alive(run.pid, run.started_at))
        ]
        if dead:
            with self.writing() as conn:
                conn.execute(
                    update(RUNS)
                    .where(RUNS.c.id.in_([run.id for run in dead]), RUNS.c.status == "running")
                    .values(status="crashed", error="the process recording this run died before it finished")
                )
                _mark_days(conn, [run.started_at for run in dead])
        return len(dead)

    def delete_runs_started_before(self, cutoff: datetime) -> None:
        """Delete old runs with their node executions and LLM calls."""
        old = select(RUNS.c.id).where(RUNS.c.started_at < cutoff)
        with self.writing() as conn:
            _mark_days(conn, conn.execute(select(RUNS.c.started_at).where(RUNS.c.started_at < cutoff)).scalars())
            conn.execute(delete(NODES).where(NODES.c.run_id.in_(old)))
            conn.execute(delete(CALLS).where(CALLS.c.run_id.in_(old)))
            conn.execute(delete(RUNS).where(RUNS.c.started_at < cutoff))

    def writing(self):
        """A write transaction (BEGIN IMMEDIATE on SQLite) whose driver errors are one line."""
        return _Transaction(self.engine)

    # -- reading ---------------------------------------------------------------------------

    def resolve_run_id(self, prefix: str) -> str:
        """The one run id starting with `prefix`; UsageError if none or several match."""
        if len(prefix) > MAX_RUN_ID:  # no id is that long: no need to ask (nor to build a LIKE)
            raise UsageError(f"no run matches {prefix[:MAX_RUN_ID]!r}...")
        pattern = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        with self.reading() as conn:
            ids = conn.execute(
                select(RUNS.c.id).where(RUNS.c.id.like(pattern, escape="\\")).limit(2)
            ).scalars().all()
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
        with self.reading() as conn:
            runs = {row.id: row for row in conn.execute(select(RUNS).where(RUNS.c.id.in_(run_ids)))}
            nodes: dict[str, list] = {}
            for row in conn.execute(
                select(NODES).where(NODES.c.run_id.in_(run_ids)).order_by(NODES.c.run_id, NODES.c.seq)
            ):
                nodes.setdefault(row.run_id, []).append(row)
            calls: dict[str, list] = {}
            for row in conn.execute(
                select(CALLS).where(CALLS.c.run_id.in_(run_ids)).order_by(CALLS.c.run_id, CALLS.c.seq)
            ):
                calls.setdefault(row.run_id, []).append(row)
        for run_id in run_ids:
            if run_id in runs:
                yield record_from_rows(runs[run_id], nodes.get(run_id, []), calls.get(run_id, []))

    def reading(self):
        """A read transaction whose driver errors are one line."""
        return _Transaction(self.engine, write=False)


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
        try:
            self.conn = write_connection(self.engine) if self.write else self.engine.connect()
            self.tx = self.conn.begin()
        except DBAPIError as exc:
            raise describe_db_error(self.engine, exc) from None
        return self.conn

    def __exit__(self, exc_type, exc, tb) -> None:
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


def _upsert(conn, row: dict[str, Any]):
    """INSERT ... ON CONFLICT (id) DO UPDATE for the run row, built once per engine kind."""
    return conn.execute(_upsert_statement(conn.dialect.name), row)


@functools.cache
def _upsert_statement(dialect: str):
    statement = _insert(dialect)(RUNS)
    return statement.on_conflict_do_update(
        index_elements=[RUNS.c.id],
        set_={column.name: statement.excluded[column.name] for column in RUNS.c if column.name != "id"},
    )


def utc_day(moment: datetime) -> str:
    return moment.astimezone(UTC).date().isoformat()  # four-digit years, unlike strftime's %Y


def _mark_days(conn, moments: Iterable[datetime]) -> None:
    """Mark the UTC days of these run starts dirty, so that readers rebuild their roll-ups
    (ledger/rollups.py). Every write that changes a run, its nodes or calls does this."""
    days = sorted({utc_day(moment) for moment in moments})
    if days:
        conn.execute(_mark_statement(conn.dialect.name), [{"day": day, "version": 1} for day in days])


@functools.cache
def _mark_statement(dialect: str):
    return _insert(dialect)(DIRTY_DAYS).on_conflict_do_update(
        index_elements=[DIRTY_DAYS.c.day], set_={"version": DIRTY_DAYS.c.version + 1}
    )


def _insert(dialect: str):
    """The INSERT construct with ON CONFLICT for this engine kind."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:
        raise LedgerError(f"unsupported ledger engine {dialect}")
    return insert
