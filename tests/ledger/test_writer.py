"""The instrumentation's door into the ledger: it never raises, and nothing is lost."""

import json
import stat
import time

import pytest

from pflow_metrics.ledger.spool import spooled_files
from pflow_metrics.ledger.store import Ledger
from pflow_metrics.ledger.writer import JOURNAL_INTERVAL_S, LedgerWarning, RunWriter
from pflow_metrics.record import NodeRecord
from tests.factories import make_run

DOWN = "postgresql+psycopg://127.0.0.1:1/none"  # nothing listens on port 1


def test_a_finished_run_lands_in_the_ledger(ledger_url):
    record = make_run(calls=[{}, {}])
    writer = RunWriter(ledger_url, record)
    writer.begin()
    assert writer.finish() is None
    with Ledger.open(ledger_url) as ledger:
        assert len(ledger.get_run(record.run_id).llm_calls) == 2


def test_an_unreachable_ledger_spools_the_record_with_one_warning(pflow_home):
    record = make_run()
    writer = RunWriter(DOWN, record)
    writer.begin()
    with pytest.warns(LedgerWarning, match="spooled to"):
        message = writer.finish()

    assert "spool" in message
    (spooled,) = spooled_files()
    assert json.loads(spooled.read_text())["run_id"] == record.run_id
    assert stat.S_IMODE(spooled.stat().st_mode) == 0o600


def test_spooled_records_wait_for_their_own_ledger(ledger_url):
    lost = make_run(workflow="while-the-ledger-was-down")
    down = RunWriter(DOWN, lost)
    down.begin()
    with pytest.warns(LedgerWarning):
        down.finish()

    later = RunWriter(ledger_url, make_run())
    later.begin()
    later.finish()

    assert [path.stem for path in spooled_files()] == [lost.run_id]  # not drained into another ledger
    with Ledger.open(ledger_url) as ledger:
        assert list(ledger.iter_runs([lost.run_id])) == []


def test_progress_is_journalled_before_the_run_finishes(ledger_url):
    record = make_run(status="running", calls=[], nodes=0)
    writer = RunWriter(ledger_url, record)
    writer.begin()
    record.nodes.append(NodeRecord(node_id="first", node_type="EchoNode"))
    writer.progress()
    time.sleep(JOURNAL_INTERVAL_S * 3)  # let a grouped write happen; we never finish this run

    with Ledger.open(ledger_url) as ledger:
        stored = ledger.get_run(record.run_id)
    assert stored.status == "running"
    assert [node.node_id for node in stored.nodes] == ["first"]
    writer.finish()


def test_a_read_only_ledger_spools_instead_of_failing(tmp_path, pflow_home):
    path = tmp_path / "ledger.db"
    Ledger.open(str(path)).close()
    read_only = f"sqlite:///file:{path}?mode=ro&uri=true"
    record = make_run()
    writer = RunWriter(read_only, record)
    writer.begin()
    with pytest.warns(LedgerWarning, match="readonly"):
        writer.finish()
    assert [p.stem for p in spooled_files()] == [record.run_id]


def test_a_lock_held_past_the_timeout_spools_instead_of_failing(tmp_path, pflow_home, monkeypatch):
    import sqlite3

    path = tmp_path / "ledger.db"
    Ledger.open(str(path)).close()
    monkeypatch.setenv("PFLOW_SQLITE_BUSY_TIMEOUT_MS", "200")
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock for good
    try:
        record = make_run()
        writer = RunWriter(str(path), record)
        writer.begin()
        with pytest.warns(LedgerWarning, match="locked"):
            writer.finish()
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert [p.stem for p in spooled_files()] == [record.run_id]


def test_db_check_reports_spooled_records_and_crashed_runs(cli, tmp_path, pflow_home):
    down = RunWriter(DOWN, make_run())
    down.begin()
    with pytest.warns(LedgerWarning):
        down.finish()
    path = tmp_path / "ledger.db"
    dead = make_run(status="running", calls=[], nodes=0)
    dead.pid = 2**22 + 4321  # no such process
    with Ledger.open(str(path)) as ledger:
        ledger.begin_run(dead)

    code, out, _ = cli("--db", path, "db", "check")
    assert code == 0
    from pflow_metrics.ledger.engine import HEAD_REVISION

    assert f"schema: {HEAD_REVISION} (head)" in out and "crashed runs: 1" in out and "spooled run records: 1" in out
    assert "roll-ups: 1 day to rebuild" in out  # the dead run's day: no report has read it yet
    assert cli("--db", path, "report").exit_code == 0
    code, out, _ = cli("--db", path, "db", "check")
    assert code == 0 and "roll-ups: up to date" in out
