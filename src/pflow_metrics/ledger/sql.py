"""SQL text for the ledger, one definition for SQLite and PostgreSQL, and the connections that
run it: the stdlib `sqlite3` module on a SQLite file (no SQLAlchemy import: reports start fast),
a SQLAlchemy connection's driver (`exec_driver_sql`) everywhere else.

Statements are written once, with `?` placeholders. What differs between the engines is here
and nowhere else:
- the UTC day of a run's start (`utc_day_sql`): SQLite stores datetimes as naive UTC text
  'YYYY-MM-DD HH:MM:SS.ffffff' (as SQLAlchemy does), PostgreSQL as timestamptz;
- a tag looked up by key (`tag_value`): json_each on SQLite (its JSON paths cannot quote every
  key), `->>` on PostgreSQL; the key is always bound as data;
- placeholders (`%s` for psycopg) and how a datetime is bound.
Values read back are Python values on both: datetimes aware UTC, JSON columns dicts (`dicts`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

SQLITE = "sqlite"
POSTGRESQL = "postgresql"

# Columns read back as aware UTC datetimes and as JSON, whichever table they come from.
# tests/ledger/test_sql.py checks these against ledger/models.py.
MOMENT_COLUMNS = frozenset({"started_at", "ended_at", "heartbeat_at"})
JSON_COLUMNS = frozenset({"tags", "durations"})
# At most this many values in one IN (...) list: SQLite limits bound variables per statement.
MAX_IN = 500


@dataclass(frozen=True)
class Sql:
    """A piece of SQL text with `?` placeholders, and the values they bind, in order."""

    text: str
    params: tuple = ()

    def __add__(self, other: Sql | str) -> Sql:
        other = Sql(other) if isinstance(other, str) else other
        return Sql(self.text + other.text, self.params + other.params)

    @staticmethod
    def join(separator: str, parts: Iterable[Sql | str]) -> Sql:
        parts = [Sql(part) if isinstance(part, str) else part for part in parts]
        return Sql(separator.join(part.text for part in parts), tuple(value for part in parts for value in part.params))


def all_of(conditions: Sequence[Sql]) -> Sql:
    """The conditions joined by AND (TRUE for none)."""
    return Sql.join(" AND ", [Sql("(") + condition + ")" for condition in conditions]) if conditions else Sql("1 = 1")


def any_of(conditions: Sequence[Sql]) -> Sql:
    """The conditions joined by OR (FALSE for none)."""
    return Sql("(") + Sql.join(" OR ", [Sql("(") + condition + ")" for condition in conditions]) + ")" \
        if conditions else Sql("1 = 0")


def values_in(column: str, values: Sequence[Any]) -> Sql:
    """`column IN (?, ...)` for at most MAX_IN values."""
    return Sql(f"{column} IN ({', '.join('?' * len(values))})", tuple(values)) if values else Sql("1 = 0")


def utc_day_sql(dialect: str, column: str = "runs.started_at") -> str:
    """The UTC day of a stored datetime as 'YYYY-MM-DD' text."""
    if dialect == SQLITE:  # naive UTC text
        return f"substr({column}, 1, 10)"
    return f"to_char(timezone('UTC', {column}), 'YYYY-MM-DD')"


def tag_value(dialect: str, key: str, column: str = "runs.tags") -> Sql:
    """The text of a JSON object column at `key` (NULL when it has no such key)."""
    if dialect == SQLITE:
        return Sql(f"(SELECT pair.value FROM json_each({column}) AS pair WHERE pair.key = ?)", (key,))
    return Sql(f"({column} ->> CAST(? AS TEXT))", (key,))


def escape_like(text: str) -> str:
    """Text that LIKE (with ESCAPE '\\') matches literally."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def like(column: str, pattern: str) -> Sql:
    """`column LIKE pattern` with `\\` escaping; case-sensitive on both engines (SQLite
    connections set case_sensitive_like)."""
    return Sql(f"{column} LIKE ? ESCAPE '\\'", (pattern,))


# -- values in and out -------------------------------------------------------------------------


def bound(value: Any, dialect: str) -> Any:
    """A value as the engine stores it: a datetime in SQLAlchemy's SQLite text form (which
    sorts by time) or as is on PostgreSQL, a dict or list as JSON text."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the ledger; use an aware UTC time")
        if dialect == SQLITE:  # isoformat writes four-digit years, unlike strftime's %Y
            return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")
        return value
    if isinstance(value, dict | list):
        return json.dumps(value)
    return value


def moment(value: Any) -> datetime | None:
    """A stored datetime read back: aware UTC."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def json_value(value: Any) -> Any:
    """A stored JSON column read back (SQLite gives its text, PostgreSQL the value)."""
    return json.loads(value) if isinstance(value, str | bytes) else value


# -- connections -------------------------------------------------------------------------------


class SqlConnection:
    """Runs Sql on one connection, inside the transaction its opener began. Subclasses say how
    a statement reaches the driver: `_execute` gives (column names, rows)."""

    dialect: str

    def _execute(self, text: str, params: tuple) -> tuple[list[str], list[Sequence[Any]]]:
        raise NotImplementedError

    def _execute_many(self, text: str, rows: list[tuple]) -> None:
        raise NotImplementedError

    def _run(self, statement: Sql | str) -> tuple[list[str], list[Sequence[Any]]]:
        statement = Sql(statement) if isinstance(statement, str) else statement
        return self._execute(statement.text, tuple(bound(value, self.dialect) for value in statement.params))

    def rows(self, statement: Sql | str) -> list[Sequence[Any]]:
        """The result rows, values as the driver gives them."""
        return self._run(statement)[1]

    def dicts(self, statement: Sql | str) -> list[dict[str, Any]]:
        """The result rows as dicts by column name, datetimes and JSON read back."""
        names, rows = self._run(statement)
        found = [dict(zip(names, row)) for row in rows]
        readers = {name: moment if name in MOMENT_COLUMNS else json_value
                   for name in names if name in MOMENT_COLUMNS or name in JSON_COLUMNS}
        for row in found if readers else ():
            for name, read in readers.items():
                row[name] = read(row[name])
        return found

    def scalar(self, statement: Sql | str) -> Any:
        rows = self._run(statement)[1]
        return rows[0][0] if rows else None

    def run(self, statement: Sql | str) -> None:
        self._run(statement)

    def run_many(self, text: str, rows: Iterable[Sequence[Any]]) -> None:
        """The statement once for each row of values."""
        rows = [tuple(bound(value, self.dialect) for value in row) for row in rows]
        if rows:
            self._execute_many(text, rows)


class SqliteConnection(SqlConnection):
    """A stdlib sqlite3 connection (see Ledger.sql); `errors` turns a sqlite3.Error into the
    ledger's one-line error."""

    dialect = SQLITE

    def __init__(self, conn, errors):
        self.conn = conn
        self.errors = errors

    def _execute(self, text, params):
        import sqlite3

        try:
            cursor = self.conn.execute(text, params)
            return [column[0] for column in cursor.description or ()], cursor.fetchall()
        except sqlite3.Error as exc:
            raise self.errors(exc) from None

    def _execute_many(self, text, rows):
        import sqlite3

        try:
            self.conn.executemany(text, rows)
        except sqlite3.Error as exc:
            raise self.errors(exc) from None


class EngineConnection(SqlConnection):
    """A SQLAlchemy connection, through its driver: psycopg's placeholders are `%s`, so a
    literal `%` in the text is doubled. Driver errors surface as SQLAlchemy's DBAPIError, which
    the transaction around it (Ledger.reading, writing) turns into one line."""

    def __init__(self, conn):
        self.conn = conn
        self.dialect = conn.dialect.name
        self.pyformat = conn.dialect.paramstyle in ("format", "pyformat")

    def _text(self, text: str) -> str:
        return text.replace("%", "%%").replace("?", "%s") if self.pyformat else text

    def _execute(self, text, params):
        result = self.conn.exec_driver_sql(self._text(text), params)
        return (list(result.keys()), result.fetchall()) if result.returns_rows else ([], [])

    def _execute_many(self, text, rows):
        self.conn.exec_driver_sql(self._text(text), rows)
