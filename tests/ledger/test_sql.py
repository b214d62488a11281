"""ledger/sql.py: the SQL text both engines share. Its few typed columns agree with the models,
SQLite datetimes are bound exactly as SQLAlchemy stores them, and opening a SQLite ledger for
reading with the sqlite3 module refuses and accepts exactly what the SQLAlchemy path does."""

from __future__ import annotations

import fnmatch
import sqlite3
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import JSON

from pflow_metrics.errors import LedgerError
from pflow_metrics.ledger import models
from pflow_metrics.ledger.engine import REVISIONS, NoLedger, create_ledger_engine
from pflow_metrics.ledger.filters import Filters
from pflow_metrics.ledger.queries import list_runs, run_values
from pflow_metrics.ledger.rollups import COLUMNS, TABLES
from pflow_metrics.ledger.sql import JSON_COLUMNS, MOMENT_COLUMNS, SQLITE, bound, moment
from pflow_metrics.ledger.store import Ledger
from tests.factories import make_run


def test_the_columns_read_as_datetimes_and_json_are_the_models_own():
    columns = [column for table in models.Base.metadata.tables.values() for column in table.c]
    assert MOMENT_COLUMNS == {column.name for column in columns if isinstance(column.type, models.UTCDateTime)}
    assert JSON_COLUMNS == {column.name for column in columns if isinstance(column.type, JSON)}


def test_the_roll_up_columns_are_the_models_own():
    for name, table in TABLES.items():
        model = models.Base.metadata.tables[table]
        assert set(COLUMNS[name]) == {column.name for column in model.c} - {"id"}, name


@pytest.mark.parametrize("moment_", [datetime(2026, 11, 25, 13, 5, 9, 120, tzinfo=UTC),
                                     datetime(1, 1, 1, tzinfo=UTC),
                                     datetime(2026, 11, 25, 23, 30, tzinfo=timezone(timedelta(hours=-5)))])
def test_a_datetime_is_bound_on_sqlite_as_sqlalchemy_stores_it(tmp_path, moment_):
    path = tmp_path / "ledger.db"
    record = make_run(started_at=moment_)
    with Ledger.open(str(path)) as ledger:
        ledger.finish_run(record)
    (stored,) = sqlite3.connect(path).execute("SELECT started_at FROM runs").fetchone()
    assert bound(moment_, SQLITE) == stored
    assert moment(stored) == moment_ and moment(stored).tzinfo is UTC


def test_a_naive_datetime_is_refused():
    with pytest.raises(ValueError, match="naive"):
        bound(datetime(2026, 1, 1), SQLITE)


def test_percent_and_question_marks_in_values_are_data_on_both_engines(ledger):
    names = ["50% done?", "50%", "a?b", "what?%", "%?%"]
    ledger.finish_runs([make_run(name) for name in names])
    for name in names:
        found = [row["workflow"] for row in list_runs(ledger, Filters(workflows=[name]), 10)]
        assert sorted(found) == sorted(other for other in names if fnmatch.fnmatchcase(other, name)), name
    assert [row["workflow"] for row in run_values(ledger, Filters(tags={"%?": "?%"}))] == []


# -- opening for reading: the sqlite3 path against the SQLAlchemy path -------------------------


def _outcome(url: str):
    try:
        Ledger.open(url, upgrade=False, create=False).close()
    except LedgerError as exc:
        return type(exc).__name__, str(exc)
    return "opened", None


def _both_ways(path) -> tuple:
    """What opening the file for reading gives through sqlite3 (a plain path) and through
    SQLAlchemy (a URI URL, which that path keeps)."""
    return _outcome(str(path)), _outcome(f"sqlite:///file:{path}?mode=rw&uri=true")


def _at_revision(path, revision: str) -> None:
    from pflow_metrics.ledger.migrate import upgrade_to

    engine = create_ledger_engine(f"sqlite:///{path}")
    upgrade_to(engine, revision)
    engine.dispose()


def _make(kind: str, path) -> None:
    if kind == "not sqlite":
        path.write_text("hello, I am a text file\n" * 10)
    elif kind == "empty":
        path.touch()
    elif kind == "foreign":
        conn = sqlite3.connect(path)
        conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY)")
        conn.commit()
        conn.close()
    elif kind == "ours":
        Ledger.open(str(path)).close()
    elif kind == "older":
        _at_revision(path, REVISIONS[-2])
    elif kind == "newer":
        Ledger.open(str(path)).close()
        conn = sqlite3.connect(path)
        conn.execute("UPDATE alembic_version SET version_num = '9999'")
        conn.commit()
        conn.close()


@pytest.mark.parametrize("kind", ["missing", "not sqlite", "empty", "foreign", "ours", "older", "newer"])
def test_opening_a_sqlite_file_for_reading_without_sqlalchemy_gives_the_same_answer(tmp_path, kind):
    path = tmp_path / "ledger.db"
    _make(kind, path)
    before = path.read_bytes() if path.exists() else None
    direct, through_sqlalchemy = _both_ways(path)
    assert direct == through_sqlalchemy
    assert direct[0] == {"missing": "NoLedger", "empty": "NoLedger", "ours": "opened"}.get(kind, "LedgerError")
    if kind != "ours":  # nothing written: a refused file is left as it was, a missing one not created
        assert (path.read_bytes() if path.exists() else None) == before


def test_a_missing_ledger_is_no_ledger_and_not_created(tmp_path):
    with pytest.raises(NoLedger):
        Ledger.open(str(tmp_path / "nothing.db"), upgrade=False, create=False)
    assert not (tmp_path / "nothing.db").exists()
