"""Nobody else's database is touched: read commands never create or change a schema, and a
database that is not a pflow-metrics ledger is refused (exit 2, one line) by readers and
writers alike, and left exactly as it was. A ledger that does not exist yet is not created by
reading it."""

from __future__ import annotations

import hashlib
import json
import sqlite3

import pytest
from sqlalchemy import create_engine, inspect, text

from pflow_metrics.config import sqlite_path
from pflow_metrics.ledger.engine import HEAD_REVISION, REVISIONS, create_ledger_engine, current_revision
from pflow_metrics.ledger.store import Ledger
from pflow_metrics.ledger.writer import LedgerWarning, RunWriter
from tests.factories import make_run

READ_COMMANDS = [
    ["report"],
    ["cost", "--by", "model"],
    ["runs", "list"],
    ["runs", "show", "abc"],
    ["budget", "--max-usd", "1"],
    ["export"],
    ["db", "current"],
    ["db", "check"],
]
WRITE_COMMANDS = [
    ["db", "upgrade"],
    ["prune", "--older-than", "1d"],
    ["reprice"],
]



def fingerprint(url: str):
    """The SQLite file's bytes (hashed), or every table of the PostgreSQL schema with its rows."""
    path = sqlite_path(url)
    if path is not None:
        return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            names = sorted(inspect(conn).get_table_names())
            return {name: sorted(map(tuple, conn.execute(text(f'SELECT * FROM "{name}"')))) for name in names}
    finally:
        engine.dispose()


def make_foreign(url: str, table: str = "customers") -> None:
    """Another application's database: one table with a row, no alembic_version."""
    path = sqlite_path(url)
    if path is not None:
        conn = sqlite3.connect(path)
        conn.execute(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, name TEXT)")
        conn.execute(f"INSERT INTO {table} (name) VALUES ('ann')")
        conn.commit()
        conn.close()
        path.chmod(0o600)
        return
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, name TEXT)"))
        conn.execute(text(f"INSERT INTO {table} (id, name) VALUES (1, 'ann')"))
    engine.dispose()


def assert_refused(code: int, err: str) -> None:
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("pflow-metrics: error: "), err
    assert "not a pflow-metrics ledger" in err and "Traceback" not in err and "internal error" not in err


@pytest.mark.parametrize("command", READ_COMMANDS, ids=" ".join)
def test_read_commands_refuse_another_applications_database_and_leave_it_unchanged(cli, ledger_url, command):
    make_foreign(ledger_url)
    before = fingerprint(ledger_url)

    code, _, err = cli("--db", ledger_url, *command)

    assert_refused(code, err)
    assert fingerprint(ledger_url) == before


@pytest.mark.parametrize("command", WRITE_COMMANDS, ids=" ".join)
def test_writing_commands_refuse_another_applications_database_and_leave_it_unchanged(cli, ledger_url, command):
    make_foreign(ledger_url)
    before = fingerprint(ledger_url)

    code, _, err = cli("--db", ledger_url, *command)

    assert_refused(code, err)
    assert fingerprint(ledger_url) == before


def test_ingest_refuses_another_applications_database_and_leaves_it_unchanged(cli, ledger_url, tmp_path):
    make_foreign(ledger_url)
    before = fingerprint(ledger_url)
    source = tmp_path / "runs.jsonl"
    source.write_text(make_run().to_json() + "\n")

    code, _, err = cli("--db", ledger_url, "ingest", str(source))

    assert_refused(code, err)
    assert fingerprint(ledger_url) == before


def test_a_foreign_database_with_its_own_runs_table_is_refused_not_an_internal_error(cli, ledger_url):
    make_foreign(ledger_url, table="runs")
    before = fingerprint(ledger_url)

    for command in (["report"], ["db", "upgrade"]):
        code, _, err = cli("--db", ledger_url, *command)
        assert_refused(code, err)
    assert fingerprint(ledger_url) == before


def test_the_instrumentation_spools_instead_of_writing_into_a_foreign_database(ledger_url):
    make_foreign(ledger_url)
    before = fingerprint(ledger_url)
    writer = RunWriter(ledger_url, make_run())
    writer.begin()

    with pytest.warns(LedgerWarning, match="not a pflow-metrics ledger"):
        writer.finish()

    assert writer.spooled_to is not None
    assert fingerprint(ledger_url) == before


def test_a_world_readable_foreign_file_gets_the_refusal_only_not_a_privacy_warning(cli, tmp_path):
    url = f"sqlite:///{tmp_path / 'other.db'}"
    make_foreign(url)
    (tmp_path / "other.db").chmod(0o644)

    code, _, err = cli("--db", str(tmp_path / "other.db"), "report")

    assert_refused(code, err)


@pytest.mark.parametrize("command", [*READ_COMMANDS, ["prune", "--older-than", "1d"], ["reprice"]], ids=" ".join)
def test_read_commands_on_a_ledger_that_does_not_exist_create_nothing(cli, tmp_path, command):
    missing = tmp_path / "typo" / "deeper" / "ledger.db"

    code, out, err = cli("--db", str(missing), *command)

    assert not (tmp_path / "typo").exists()
    assert "Traceback" not in err
    if command[:2] == ["runs", "show"]:
        assert code == 2 and "no run matches" in err
    else:
        assert code == 0, err
    if command[0] in ("report", "runs", "cost") and command[1:2] != ["show"]:
        assert "no runs recorded" in out
    if command[0] == "db":
        assert f"no ledger at {missing}" in out


def test_read_commands_leave_an_empty_sqlite_file_empty(cli, tmp_path):
    path = tmp_path / "new.db"
    path.touch(mode=0o600)

    for command in READ_COMMANDS:
        code, out, err = cli("--db", str(path), *command)
        assert code in (0, 2) and "Traceback" not in err and "not a pflow-metrics ledger" not in err
    assert path.read_bytes() == b""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new.db"]


def test_read_commands_leave_an_empty_postgresql_schema_empty(cli, postgres_url):
    code, out, _ = cli("--db", postgres_url, "report")
    assert (code, out.strip()) == (0, "no runs recorded in this window")
    code, out, _ = cli("--db", postgres_url, "db", "current")
    assert code == 0 and out.startswith("empty")
    assert fingerprint(postgres_url) == {}


def test_a_writer_creates_the_schema_in_an_empty_database(cli, ledger_url, tmp_path):
    path = sqlite_path(ledger_url)
    if path is not None:
        path.touch(mode=0o600)
    source = tmp_path / "runs.jsonl"
    source.write_text(make_run().to_json() + "\n")

    code, out, err = cli("--db", ledger_url, "ingest", str(source))

    assert (code, err) == (0, "") and "ingested 1 runs" in out
    engine = create_ledger_engine(ledger_url)
    assert current_revision(engine) == HEAD_REVISION
    engine.dispose()


@pytest.mark.skipif(len(REVISIONS) < 2, reason="needs an older revision")
def test_read_commands_do_not_upgrade_an_older_ledger_but_writers_do(cli, ledger_url, tmp_path):
    from pflow_metrics.ledger.migrate import upgrade_to

    older = REVISIONS[-2]
    engine = create_ledger_engine(ledger_url)
    upgrade_to(engine, older)
    engine.dispose()
    before = fingerprint(ledger_url)

    code, _, err = cli("--db", ledger_url, "report")
    assert code == 2 and err.count("\n") == 1 and "db upgrade" in err and older in err
    assert fingerprint(ledger_url) == before
    code, out, _ = cli("--db", ledger_url, "db", "current")
    assert code == 0 and out.startswith(f"{older} (head is {HEAD_REVISION}")

    code, _, err = cli("--db", ledger_url, "prune", "--older-than", "1d")  # a writer
    assert (code, err) == (0, "")
    engine = create_ledger_engine(ledger_url)
    assert current_revision(engine) == HEAD_REVISION
    engine.dispose()


def test_an_alembic_database_of_another_application_is_foreign(cli, tmp_path):
    path = tmp_path / "app.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)")
    conn.execute("INSERT INTO alembic_version VALUES ('3f2a9c1b7d10')")
    conn.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY)")
    conn.commit()
    conn.close()
    before = fingerprint(f"sqlite:///{path}")

    for command in (["report"], ["db", "upgrade"]):
        code, _, err = cli("--db", str(path), *command)
        assert_refused(code, err)
    assert fingerprint(f"sqlite:///{path}") == before


def test_our_own_ledger_still_opens_for_readers_and_writers(cli, ledger_url):
    with Ledger.open(ledger_url) as ledger:
        ledger.finish_run(make_run("ours"))

    code, out, err = cli("--db", ledger_url, "runs", "list", "--format", "json")

    assert (code, err) == (0, "") and [row["workflow"] for row in json.loads(out)] == ["ours"]


def test_db_upgrade_on_a_missing_path_creates_the_ledger(cli, tmp_path):
    path = tmp_path / "new" / "ledger.db"
    code, out, _ = cli("--db", str(path), "db", "upgrade")
    assert code == 0 and path.exists() and HEAD_REVISION in out



def test_the_refusal_stays_one_line_whatever_the_foreign_tables_are_called(cli, tmp_path):
    path = tmp_path / "odd.db"
    conn = sqlite3.connect(path)
    conn.execute('CREATE TABLE "two\nlines" (id INTEGER)')
    conn.commit()
    conn.close()
    path.chmod(0o600)

    code, _, err = cli("--db", str(path), "report")

    assert_refused(code, err)
