"""A stop requested while the journal thread is inside a journal write is not missed: finish()
returns as soon as that write is done, not a heartbeat interval (a minute) later."""

from __future__ import annotations

import sqlite3
import threading
import time

from sqlalchemy import event

from pflow_metrics.ledger.store import Ledger
from pflow_metrics.ledger.writer import HEARTBEAT_INTERVAL_S, RunWriter
from pflow_metrics.record import NodeRecord
from tests.factories import make_run

JOURNAL_THREAD = "pflow-metrics-journal"


def test_finish_requested_during_a_journal_write_returns_without_waiting_for_the_heartbeat(tmp_path):
    path = tmp_path / "ledger.db"
    Ledger.open(str(path)).close()
    record = make_run("race", status="running", calls=[], nodes=0)
    record.ended_at = None
    writer = RunWriter(str(path), record)
    writer.begin()

    in_journal = threading.Event()

    def journal_begins(conn, cursor, statement, *args) -> None:
        if threading.current_thread().name == JOURNAL_THREAD and statement.startswith("BEGIN"):
            in_journal.set()

    # Fires just before the journal write's BEGIN IMMEDIATE, which waits for the lock held below.
    event.listen(writer.ledger.engine, "before_cursor_execute", journal_begins)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process is writing
    try:
        record.nodes.append(NodeRecord(node_id="first", node_type="EchoNode"))
        writer.progress()
        assert in_journal.wait(10), "the journal thread never started its write"

        record.status = "success"
        finished = {}
        finisher = threading.Thread(target=lambda: finished.setdefault("warning", writer.finish()))
        started = time.monotonic()
        finisher.start()
        deadline = time.monotonic() + 10
        while not writer.stop_requested and time.monotonic() < deadline:  # stop requested mid-write
            time.sleep(0.01)
        assert writer.stop_requested
    finally:
        holder.execute("ROLLBACK")  # the journal write goes through now
        holder.close()

    finisher.join(timeout=HEARTBEAT_INTERVAL_S / 6)
    assert not finisher.is_alive(), "finish() is waiting out the heartbeat interval"
    assert time.monotonic() - started < HEARTBEAT_INTERVAL_S / 6
    assert finished["warning"] is None
    with Ledger.open(str(path)) as ledger:
        stored = ledger.get_run(record.run_id)
    assert stored.status == "success" and [node.node_id for node in stored.nodes] == ["first"]
    event.remove(writer.ledger.engine, "before_cursor_execute", journal_begins)
