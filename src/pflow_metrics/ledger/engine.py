"""Opening a ledger: the engine, SQLite settings for many writers, and the schema check.

Checking that a ledger is at head reads `alembic_version` with plain SQL, so opening an
up-to-date ledger never imports Alembic. Only a ledger that needs upgrading does. This module
imports no SQLAlchemy until an engine is made: a SQLite ledger opened only for reading is
checked and read with the stdlib sqlite3 module (`check_sqlite_ledger`, `connect_sqlite`).

A database is ours when its `alembic_version` holds one of REVISIONS, and empty when it has no
tables at all. Anything else is another application's database: it is refused (LedgerError,
exit 2) before anything is written to it, by readers and writers alike. A SQLite file is looked
at read-only first, so that even our connection settings (WAL mode) never change a file that
is not ours. Only writers (`create=True`) create a ledger file or the schema in an empty
database; readers get NoLedger instead.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from pflow_metrics.config import PRIVATE_FILE_MODE, private_dir, sqlite_busy_timeout_ms, sqlite_path
from pflow_metrics.errors import LedgerError, LedgerUnavailable

if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlalchemy.exc import DBAPIError

# Every revision in migrations/versions, oldest first. A test checks this against Alembic.
REVISIONS = ("0001", "0002", "0003")
HEAD_REVISION = REVISIONS[-1]

SQLITE_HEADER = b"SQLite format 3\x00"
WRITE_OPTION = "pflow_write"
# PostgreSQL advisory lock keys: one serializes schema upgrades, the other roll-up refreshes.
SCHEMA_LOCK = 7283401
REFRESH_LOCK = 7283402
VERSION_TABLE = "alembic_version"


class NoLedger(LedgerError):
    """There is no ledger here yet: no file, or a database without tables. Raised instead of
    creating one when the caller only reads (`create=False`); nothing was created or changed."""

    def __init__(self, message: str, missing: bool):
        super().__init__(message)
        self.missing = missing


def create_ledger_engine(url: str, *, create: bool = True) -> Engine:
    """An engine for the ledger at `url`. A SQLite file is checked first (SQLite, and ours or
    empty); with `create=False` a missing or empty file is NoLedger and is left as it is."""
    if url.startswith("sqlite"):
        path = sqlite_path(url)
        if path is not None:
            _prepare_sqlite_file(path, create)
    return new_engine(url)


def new_engine(url: str) -> Engine:
    """The SQLAlchemy engine for `url`, with no check of what is there (create_ledger_engine)."""
    from sqlalchemy import create_engine, event

    if url.startswith("sqlite"):
        engine = create_engine(url)
        event.listen(engine, "connect", _configure_sqlite_connection)
        event.listen(engine, "begin", _begin_sqlite_transaction)
        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    try:
        return create_engine(url, pool_pre_ping=True)
    except Exception as exc:  # unknown dialect, bad URL, missing driver
        raise LedgerError(f"cannot use ledger URL {redact_url(url)}: {exc}") from None


def check_sqlite_ledger(path: Path) -> None:
    """What Ledger.open(upgrade=False, create=False) checks of a SQLite file, without
    SQLAlchemy: NoLedger when there is none, LedgerError when it is not SQLite, not ours, or
    of another schema than this pflow-metrics' (newer, or older: run `db upgrade`)."""
    found = _prepare_sqlite_file(path, create=False)
    if found not in REVISIONS:
        raise _newer_error(str(path), found)
    if found != HEAD_REVISION:
        raise older_error(str(path), found)


def connect_sqlite(path: Path):
    """A stdlib sqlite3 connection to the ledger file with the settings every connection of
    ours has; transactions are begun explicitly (BEGIN, BEGIN IMMEDIATE)."""
    try:
        conn = sqlite3.connect(path, timeout=sqlite_busy_timeout_ms() / 1000, check_same_thread=False)
        _configure_sqlite_connection(conn, None)
    except sqlite3.Error as exc:
        raise describe_sqlite_error(str(path), exc) from None
    return conn


def write_connection(engine: Engine):
    """A connection whose transactions take the write lock at BEGIN (BEGIN IMMEDIATE on SQLite).

    A deferred transaction that later writes gets SQLITE_BUSY at once, without waiting for the
    busy timeout, when another process holds the lock; starting with the lock avoids that.
    """
    return engine.connect().execution_options(**{WRITE_OPTION: True})


def _configure_sqlite_connection(dbapi_connection, _record) -> None:
    # Let SQLAlchemy's `begin` event emit BEGIN itself (see _begin_sqlite_transaction).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        timeout = sqlite_busy_timeout_ms()
        cursor.execute(f"PRAGMA busy_timeout = {timeout}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        # LIKE as PostgreSQL has it: `--workflow Nightly` does not match `nightly` on either.
        cursor.execute("PRAGMA case_sensitive_like = ON")
    finally:
        cursor.close()


def _begin_sqlite_transaction(connection) -> None:
    mode = "IMMEDIATE" if connection.get_execution_options().get(WRITE_OPTION) else "DEFERRED"
    connection.exec_driver_sql(f"BEGIN {mode}")


def _prepare_sqlite_file(path: Path, create: bool = True) -> str | None:
    """Refuse a file that is not SQLite, or not ours, before SQLite touches it; create a new
    one private (only with `create`). Returns the revision found (None: new or empty)."""
    if path.exists():
        if path.is_dir():
            raise LedgerError(f"ledger {path} is a directory, not a SQLite database")
        with contextlib.suppress(OSError):
            with path.open("rb") as handle:
                header = handle.read(len(SQLITE_HEADER))
            if header and header != SQLITE_HEADER:
                raise LedgerError(f"ledger {path} is not a SQLite database; move it away, or name another file "
                                  "with --db or $PFLOW_METRICS_DB")
        found = _sqlite_file_revision(path)
        if found is None and not create:
            raise NoLedger(f"ledger {path} is empty", missing=False)
        if path.stat().st_mode & 0o077:
            warnings.warn(
                f"ledger {path} can be read by other users; `chmod 600 {path}` keeps prompts and costs private",
                stacklevel=4,
            )
        return found
    if not create:
        raise NoLedger(f"no ledger at {path}", missing=True)
    try:
        private_dir(path.parent)
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, PRIVATE_FILE_MODE))
    except OSError as exc:
        raise LedgerUnavailable(f"cannot create ledger {path}: {exc.strerror}") from None
    return None


def _sqlite_file_revision(path: Path) -> str | None:
    """The revision of the ledger in this SQLite file, None when it has no tables; LedgerError
    when it is not ours. Read through a read-only connection with no settings, so that a file
    which is not ours is left byte for byte as it was."""
    try:
        if path.stat().st_size == 0:
            return None
        conn = sqlite3.connect(f"file:{quote(str(path))}?mode=ro", uri=True, timeout=sqlite_busy_timeout_ms() / 1000)
    except OSError:
        return None  # unreadable: SQLite reports it, in one line, when the engine connects
    except sqlite3.Error as exc:
        raise _sqlite_file_error(path, exc) from None
    try:
        names = {
            name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")
            if not name.startswith("sqlite_")
        }
        revision = (
            conn.execute(f"SELECT version_num FROM {VERSION_TABLE}").fetchone() if VERSION_TABLE in names else None
        )
    except sqlite3.Error as exc:
        raise _sqlite_file_error(path, exc) from None
    finally:
        conn.close()
    # A newer ledger of ours is refused by ensure_schema; its engine may be created (tools inspect it).
    return _classify(str(path), names, revision[0] if revision else None, newer_ok=True)


def _sqlite_file_error(path: Path, exc: sqlite3.Error) -> Exception:
    detail = _sqlite_detail(exc)
    if _damaged(detail):
        return LedgerError(f"ledger {path} is damaged or not a SQLite database: {detail}")
    return LedgerUnavailable(f"ledger {path} cannot be used now: {detail}")


def _sqlite_detail(exc: sqlite3.Error) -> str:
    """The first line of a sqlite3 error (its class name when it has no text)."""
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _damaged(detail: str) -> bool:
    """Whether a SQLite error says the file is damaged or not a database at all."""
    return any(marker in detail for marker in ("not a database", "malformed", "file is encrypted"))


def _classify(where: str, names: set[str], revision: str | None, newer_ok: bool = False) -> str | None:
    """Our revision, or None for a database without tables (or only our unfilled
    alembic_version); LedgerError for another application's database, and for a ledger of a
    newer pflow-metrics unless `newer_ok` (then its revision is returned)."""
    if not names:
        return None
    if VERSION_TABLE in names:
        if revision in REVISIONS:
            return revision
        from pflow_metrics.ledger.models import Base

        if revision is None and names - {VERSION_TABLE} <= set(Base.metadata.tables):
            return None  # our schema, not created yet or downgraded to base
        if revision is not None and str(revision).isdigit() and "runs" in names:
            if newer_ok:
                return revision
            raise _newer_error(where, revision)
    shown = ", ".join(name[:40] if name.isprintable() else repr(name[:40]) for name in sorted(names)[:3])
    shown += ", ..." if len(names) > 3 else ""
    raise LedgerError(
        f"{where} is not a pflow-metrics ledger (it holds other tables: {shown}); it was left untouched: "
        "name a pflow-metrics ledger or a new file with --db or $PFLOW_METRICS_DB"
    )


def _newer_error(where: str, revision: str | None) -> LedgerError:
    return LedgerError(f"ledger {where} was written by a newer pflow-metrics (schema {revision}); "
                       "upgrade pflow-metrics to use it")


def older_error(where: str, revision: str | None) -> LedgerError:
    """For readers, which never upgrade a ledger."""
    return LedgerError(f"ledger {where} has schema {revision}, older than this pflow-metrics "
                       f"({HEAD_REVISION}); run `pflow-metrics db upgrade` (or record a run) first")


def redact_url(url: str) -> str:
    """A URL fit for messages: the password is replaced, in the userinfo (`user:***@`) and in
    query parameters (`?password=***`, any parameter whose name looks secret)."""
    from sqlalchemy.engine import make_url

    from pflow_metrics.redaction import redact_text

    try:
        rendered = make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unreadable URL>"
    # The text redactor masks secret query parameters, and what the parser took for the host
    # when the password holds an "@" (`u:p@ss@host` renders as `u:***@ss@host`).
    return redact_text(rendered)


def current_revision(engine: Engine) -> str | None:
    """The ledger's schema revision, or None for an empty database."""
    from sqlalchemy import text

    with engine.connect() as conn:
        if not engine.dialect.has_table(conn, "alembic_version"):
            return None
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def ensure_schema(engine: Engine, upgrade: bool = True, create: bool = True,
                  progress: Callable[[int, int], None] | None = None) -> str | None:
    """Make sure the ledger is at head; upgrade it if allowed. Returns the revision found first
    (None for an empty database). Another application's database is a LedgerError; an empty
    one gets the schema only with `create` (and `upgrade`), else it is NoLedger. `progress` is
    told each revision applied (migrate.upgrade_to)."""
    found = _checked_revision(engine)
    if found is None and not create:
        raise NoLedger(f"ledger {describe_location(engine)} is empty", missing=False)
    if found == HEAD_REVISION or not upgrade:
        return found
    with _schema_lock(engine):
        # Another process may have upgraded while we waited for the lock.
        if _checked_revision(engine) != HEAD_REVISION:
            from pflow_metrics.ledger.migrate import upgrade_to

            upgrade_to(engine, "head", progress=progress)
    return found


def _checked_revision(engine: Engine) -> str | None:
    """The ledger's revision, None when the database has no tables; LedgerError when it is
    not ours (see _classify)."""
    from sqlalchemy import inspect, text
    from sqlalchemy.exc import DBAPIError

    try:
        with engine.connect() as conn:
            if engine.dialect.name == "sqlite":
                rows = conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")
                names = {name for (name,) in rows if not name.startswith("sqlite_")}
            else:
                inspector = inspect(conn)
                names = set(inspector.get_table_names()) | set(inspector.get_view_names())
            revision = (
                conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()
                if VERSION_TABLE in names else None
            )
    except DBAPIError as exc:
        raise describe_db_error(engine, exc) from None
    return _classify(describe_location(engine), names, revision)


@contextlib.contextmanager
def _schema_lock(engine: Engine) -> Iterator[None]:
    """Serialize schema creation between processes opening a new ledger at the same time."""
    path = sqlite_path(engine.url.render_as_string(hide_password=False))
    if engine.dialect.name == "sqlite" and path is not None:
        with open(f"{path}.lock", "a") as lock:
            os.chmod(lock.name, PRIVATE_FILE_MODE)
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
    elif engine.dialect.name == "postgresql":
        from sqlalchemy import text

        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": SCHEMA_LOCK})
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": SCHEMA_LOCK})
                conn.commit()
    else:
        yield


def describe_location(engine: Engine) -> str:
    """The ledger's file (a URI URL's too: `file:/x.db?mode=ro`), or its URL with no password."""
    path = sqlite_path(f"sqlite:///{engine.url.database or ''}") if engine.dialect.name == "sqlite" else None
    return str(path) if path is not None else redact_url(str(engine.url))


def describe_db_error(engine: Engine, exc: DBAPIError) -> Exception:
    """Turn a driver error into one line: a damaged file is a LedgerError (exit 2, file left
    alone); a lock, a full disk or a server that is down is LedgerUnavailable. The driver's
    text can quote the URL or conninfo (`password=...`): it is redacted."""
    from sqlalchemy.exc import OperationalError

    detail = str(exc.orig).splitlines()[0] if exc.orig is not None else str(exc)
    return _ledger_error(describe_location(engine), engine.dialect.name, detail,
                         isinstance(exc, OperationalError) or exc.connection_invalidated)


def describe_sqlite_error(where: str, exc: sqlite3.Error) -> Exception:
    """describe_db_error for the stdlib sqlite3 module's errors."""
    return _ledger_error(where, "sqlite", _sqlite_detail(exc), isinstance(exc, sqlite3.OperationalError))


def _ledger_error(where: str, dialect: str, detail: str, operational: bool) -> Exception:
    from pflow_metrics.redaction import redact_text

    detail = redact_text(detail)
    if dialect == "sqlite" and _damaged(detail):
        return LedgerError(f"ledger {where} is damaged or not a SQLite database: {detail}")
    if "integer overflow" in detail:  # only values written around pflow-metrics' limits can do it
        return LedgerError(f"ledger {where}: a total is past 64 bits and cannot be added up exactly "
                           f"(were rows written outside pflow-metrics?)")
    if operational:
        return LedgerUnavailable(f"ledger {where} cannot be used now: {detail}")
    return LedgerError(f"ledger {where}: {detail}")
