"""A ledger that cannot grow: SQLite reports SQLITE_FULL ("database or disk is full") because
each connection to the ledger file gets `PRAGMA max_page_count` at its current size, the way a
full disk stops it. The workflow still finishes with its normal result and exit code, the run
record goes to $PFLOW_HOME/spool/ (one file per run), one warning line says where, and the
next run, with room again, drains the spool into the ledger."""

from __future__ import annotations

import contextlib
import json
import os

from sqlalchemy import event
from sqlalchemy.pool import Pool

from pflow_metrics.ledger.spool import ledger_spool_dir, spooled_files
from pflow_metrics.ledger.store import Ledger

WORKFLOW = {"ir_version": "0.1.0",
            "inputs": {"who": {"type": "string", "required": True}},
            "outputs": {"greeting": {"source": "${hello.text}"}},
            "nodes": [{"id": "hello", "type": "echo", "params": {"text": "hello ${who}"}}]}


@contextlib.contextmanager
def no_room_for(path):
    """While `room["full"]`, SQLite may not add a page to the database at `path`."""
    target = os.path.realpath(path)
    room = {"full": True}

    def limit(dbapi_connection, _record, _proxy):
        cursor = dbapi_connection.cursor()
        try:
            files = [os.path.realpath(row[2]) for row in cursor.execute("PRAGMA database_list") if row[2]]
            if target in files:
                # SQLite raises a limit below the current size to the current size: no growth.
                cursor.execute(f"PRAGMA max_page_count = {1 if room['full'] else 1073741823}")
        finally:
            cursor.close()

    event.listen(Pool, "checkout", limit)
    try:
        yield room
    finally:
        event.remove(Pool, "checkout", limit)


def test_a_full_disk_spools_the_run_with_one_warning_and_the_next_run_drains_it(cli, tmp_path, pflow_home):
    path = tmp_path / "ledger.db"
    Ledger.open(str(path)).close()
    workflow = tmp_path / "greet.json"
    workflow.write_text(json.dumps(WORKFLOW))
    note = "n" * 100_000  # a run row that needs new pages: more than SQLite can add now

    with no_room_for(path) as room:
        code, out, err = cli("--db", str(path), "run", str(workflow), "who=disk",
                             "--tag", f"note={note}", "--output-format", "json")
        assert code == 0
        body = json.loads(out)
        assert body["result"] == {"greeting": "hello disk"} and not body["is_error"]
        (spooled,) = spooled_files()
        assert spooled == ledger_spool_dir(str(path)) / f"{body['run_id']}.json"
        assert err.count("\n") == 1 and err.startswith("pflow-metrics: warning: ")
        assert "disk is full" in err and f"spooled to {spooled}" in err
        with Ledger.open(str(path)) as ledger:
            assert [r.status for r in ledger.iter_runs([body["run_id"]])] in ([], ["running"])

        room["full"] = False
        code, out, err = cli("--db", str(path), "run", str(workflow), "who=again", "--output-format", "json")
    assert (code, err) == (0, "")
    later = json.loads(out)
    assert spooled_files() == []
    with Ledger.open(str(path)) as ledger:
        first, second = ledger.iter_runs([body["run_id"], later["run_id"]])
    assert (first.status, first.tags["note"], [n.node_id for n in first.nodes]) == ("success", note, ["hello"])
    assert second.status == "success"
