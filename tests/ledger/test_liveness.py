"""Telling a live run from a dead one: a pid alone cannot (pids are reused, and a run inside a
PID namespace records a pid the host does not know), so a run whose heartbeat is older than
PFLOW_CRASH_AFTER is crashed on this host too, a pid now held by a younger process is crashed at
once, and no stored pid can make a read command fail."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest

from pflow_metrics.config import crash_after
from pflow_metrics.context import host_name
from pflow_metrics.errors import UsageError
from pflow_metrics.ledger.store import Ledger
from pflow_metrics.record import utcnow
from tests.factories import make_run
from tests.ledger.test_crashes import SLOW_FLOW



def running_run(pid: int, started_ago: timedelta = timedelta(0)):
    record = make_run("still-going?", status="running", calls=[], nodes=0, started_at=utcnow() - started_ago)
    record.ended_at = None
    record.duration_ms = None
    record.host = host_name()
    record.pid = pid
    return record


@pytest.fixture
def sleeper():
    """An unrelated live process on this host."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    yield proc
    proc.kill()
    proc.wait()


def test_a_run_whose_pid_belongs_to_an_unrelated_live_process_is_crashed_once_its_heartbeat_is_stale(ledger, sleeper):
    time.sleep(0.2)  # the process is older than the run: its pid alone says "alive"
    record = running_run(sleeper.pid)
    ledger.begin_run(record)

    assert ledger.mark_crashed_runs(crash_after=timedelta(minutes=10)) == 0
    time.sleep(1.1)
    assert ledger.mark_crashed_runs(crash_after=timedelta(seconds=1)) == 1
    assert ledger.get_run(record.run_id).status == "crashed"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_a_run_whose_pid_was_reused_by_a_younger_process_is_crashed_despite_a_fresh_heartbeat(ledger, sleeper):
    record = running_run(sleeper.pid, started_ago=timedelta(hours=1))
    ledger.begin_run(record)
    ledger.journal(record, 0, 0)  # heartbeat now

    assert ledger.mark_crashed_runs() == 1
    assert ledger.get_run(record.run_id).status == "crashed"


def test_a_live_run_of_this_process_with_a_fresh_heartbeat_stays_running(ledger):
    record = running_run(os.getpid())
    ledger.begin_run(record)
    assert ledger.mark_crashed_runs() == 0
    assert ledger.get_run(record.run_id).status == "running"


@pytest.mark.parametrize("pid", [2**62, 2**63 - 1, 2**31, 0], ids=["2**62", "2**63-1", "2**31", "0"])
def test_a_pid_no_process_can_have_does_not_break_read_commands(cli, ledger_url, tmp_path, pid):
    record = running_run(pid)
    source = tmp_path / "runs.jsonl"
    source.write_text(record.to_json() + "\n")
    code, _, err = cli("--db", ledger_url, "ingest", str(source))
    assert (code, err) == (0, "")

    code, out, err = cli("--db", ledger_url, "runs", "list", "--format", "json")
    assert (code, err) == (0, ""), err
    assert [(row["run_id"], row["status"]) for row in json.loads(out)] == [(record.run_id, "crashed")]
    for command in (["report"], ["db", "check"], ["budget", "--max-usd", "1"]):
        code, _, err = cli("--db", ledger_url, *command)
        assert (code, err) == (0, ""), (command, err)


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare")
def test_a_run_killed_inside_a_pid_namespace_is_crashed_once_its_heartbeat_is_stale(ledger_url, tmp_path):
    probe = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("cannot create a PID namespace here")
    script = tmp_path / "flow.py"
    script.write_text(SLOW_FLOW)
    proc = subprocess.Popen(["unshare", "--pid", "--fork", "--mount-proc", sys.executable, str(script), ledger_url],
                            stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert proc.stdout.readline().strip() == "hanging"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)

    with Ledger.open(ledger_url) as ledger:
        run_id = ledger.resolve_run_id("")
        assert ledger.get_run(run_id).pid == 1  # its pid inside the namespace: the host's init has it
        time.sleep(1.1)
        assert ledger.mark_crashed_runs(crash_after=timedelta(seconds=1)) == 1
        assert ledger.get_run(run_id).status == "crashed"


@pytest.mark.parametrize("text, seconds", [("600", 600), ("90s", 90), ("10m", 600), ("2h", 7200), ("1.5h", 5400),
                                           ("1d", 86400), (" 45 ", 45), ("", 600)])
def test_pflow_crash_after_takes_seconds_or_a_duration(monkeypatch, text, seconds):
    monkeypatch.setenv("PFLOW_CRASH_AFTER", text)
    assert crash_after() == timedelta(seconds=seconds)


def test_pflow_crash_after_defaults_to_ten_minutes(monkeypatch):
    monkeypatch.delenv("PFLOW_CRASH_AFTER", raising=False)
    assert crash_after() == timedelta(minutes=10)


@pytest.mark.parametrize("text", ["nan", "inf", "-inf", "1e30", "-5", "0", "10x", "ten", "1e3", "999999999999"])
def test_pflow_crash_after_refuses_what_is_not_a_sensible_duration(monkeypatch, text):
    monkeypatch.setenv("PFLOW_CRASH_AFTER", text)
    with pytest.raises(UsageError, match="PFLOW_CRASH_AFTER"):
        crash_after()


def test_a_bad_pflow_crash_after_is_one_line_and_exit_2_from_read_commands(cli, monkeypatch, ledger_url):
    with Ledger.open(ledger_url) as ledger:
        ledger.begin_run(running_run(os.getpid()))
    monkeypatch.setenv("PFLOW_CRASH_AFTER", "nan")

    code, _, err = cli("--db", ledger_url, "report")

    assert code == 2 and err.count("\n") == 1 and "PFLOW_CRASH_AFTER" in err and "internal error" not in err


def test_heartbeats_go_on_after_the_ledger_was_locked_for_a_while(tmp_path, monkeypatch):
    import sqlite3

    from pflow_metrics.ledger import writer as writer_module

    path = tmp_path / "ledger.db"
    Ledger.open(str(path)).close()
    monkeypatch.setenv("PFLOW_SQLITE_BUSY_TIMEOUT_MS", "100")
    monkeypatch.setattr(writer_module, "HEARTBEAT_INTERVAL_S", 0.2)
    record = running_run(os.getpid())
    writer = writer_module.RunWriter(str(path), record)
    writer.begin()
    try:
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")  # heartbeats fail while another process holds the lock
        time.sleep(0.8)
        holder.execute("ROLLBACK")
        holder.close()
        locked_until = utcnow()
        time.sleep(1.0)
        with Ledger.open(str(path)) as ledger, ledger.reading() as conn:
            from sqlalchemy import select

            from pflow_metrics.ledger.models import Run

            beat = conn.execute(select(Run.heartbeat_at).where(Run.id == record.run_id)).scalar_one()
        assert beat > locked_until
    finally:
        record.status = "success"
        writer.finish()
