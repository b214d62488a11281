"""Opening a ledger: the engine, SQLite settings for many writers, and the schema check.

Checking that a ledger is at head reads `alembic_version` with plain SQL, so opening an
up-to-date ledger never imports Alembic. Only a ledger that needs upgrading does.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import warnings
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.exc import DBAPIError, OperationalError

from pflow_metrics.config import PRIVATE_FILE_MODE, private_dir, sqlite_path
from pflow_metrics.errors import LedgerError, LedgerUnavailable

# Every revision in migrations/versions, oldest first. A test checks this against Alembic.
REVISIONS = ("0001", "0002")
HEAD_REVISION = REVISIONS[-1]

# How long a writer waits for another one; PFLOW_SQLITE_BUSY_TIMEOUT_MS overrides it.
SQLITE_BUSY_TIMEOUT_MS = 30_000
SQLITE_HEADER = b"SQLite format 3\x00"
WRITE_OPTION = "pflow_write"


def create_ledger_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = sqlite_path(url)
        if path is not None:
            _prepare_sqlite_file(path)
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
        timeout = int(os.environ.get("PFLOW_SQLITE_BUSY_TIMEOUT_MS") or SQLITE_BUSY_TIMEOUT_MS)
        cursor.execute(f"PRAGMA busy_timeout = {timeout}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


def _begin_sqlite_transaction(connection) -> None:
    mode = "IMMEDIATE" if connection.get_execution_options().get(WRITE_OPTION) else "DEFERRED"
    connection.exec_driver_sql(f"BEGIN {mode}")


def _prepare_sqlite_file(path: Path) -> None:
    """Refuse a file that is not SQLite before SQLite touches it; create a new one private."""
    if path.exists():
        if path.is_dir():
            raise LedgerError(f"ledger {path} is a directory, not a SQLite database")
        with contextlib.suppress(OSError):
            with path.open("rb") as handle:
                header = handle.read(len(SQLITE_HEADER))
            if header and header != SQLITE_HEADER:
                raise LedgerError(f"ledger {path} is not a SQLite database; move it away or pass --db")
        if path.stat().st_mode & 0o077:
            warnings.warn(
                f"ledger {path} can be read by other users; `chmod 600 {path}` keeps prompts and costs private",
                stacklevel=4,
            )
        return
    try:
        private_dir(path.parent)
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, PRIVATE_FILE_MODE))
    except OSError as exc:
        raise LedgerUnavailable(f"cannot create ledger {path}: {exc.strerror}") from None


def redact_url(url: str) -> str:
    """A URL fit for messages: the password is replaced."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unreadable URL>"


def current_revision(engine: Engine) -> str | None:
    """The ledger's schema revision, or None for an empty database."""
    with engine.connect() as conn:
        if not engine.dialect.has_table(conn, "alembic_version"):
            return None
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def ensure_schema(engine: Engine, upgrade: bool = True) -> str | None:
    """Make sure the ledger is at head; upgrade it if allowed. Returns the revision found first."""
    found = _checked_revision(engine)
    if found == HEAD_REVISION or not upgrade:
        return found
    with _schema_lock(engine):
        # Another process may have upgraded while we waited for the lock.
        if _checked_revision(engine) != HEAD_REVISION:
            from pflow_metrics.ledger.migrate import upgrade_to

            upgrade_to(engine, "head")
    return found


def _checked_revision(engine: Engine) -> str | None:
    try:
        found = current_revision(engine)
    except DBAPIError as exc:
        raise describe_db_error(engine, exc) from None
    if found is not None and found not in REVISIONS:
        raise LedgerError(
            f"ledger {describe_location(engine)} was written by a newer pflow-metrics "
            f"(schema {found}); upgrade pflow-metrics to use it"
        )
    return found


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
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(7283401)"))
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(7283401)"))
                conn.commit()
    else:
        yield


def describe_location(engine: Engine) -> str:
    path = sqlite_path(engine.url.render_as_string(hide_password=False))
    return str(path) if path is not None else redact_url(str(engine.url))


def describe_db_error(engine: Engine, exc: DBAPIError) -> Exception:
    """Turn a driver error into one line: a damaged file is a LedgerError (exit 2, file left
    alone); a lock, a full disk or a server that is down is LedgerUnavailable."""
    detail = str(exc.orig).splitlines()[0] if exc.orig is not None else str(exc)
    where = describe_location(engine)
    if engine.dialect.name == "sqlite" and any(
        marker in detail for marker in ("not a database", "malformed", "file is encrypted")
    ):
        return LedgerError(f"ledger {where} is damaged or not a SQLite database: {detail}")
    if isinstance(exc, OperationalError) or exc.connection_invalidated:
        return LedgerUnavailable(f"ledger {where} cannot be used now: {detail}")
    return LedgerError(f"ledger {where}: {detail}")
