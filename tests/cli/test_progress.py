"""Long work reports progress through a callback; the CLI draws a bar only on a terminal."""

from __future__ import annotations

import os
import pty
import subprocess
from datetime import UTC, datetime, timedelta

from pflow_metrics.ledger.filters import Filters
from pflow_metrics.ledger.reprice import reprice
from pflow_metrics.ledger.store import Ledger
from tests.factories import make_run


def fill(url: str, runs: int) -> None:
    with Ledger.open(url) as ledger:
        for _ in range(runs):
            ledger.finish_run(make_run(calls=[{"model": "gpt-4o", "cost_usd": 0.5}]))


def test_reprice_tells_its_callback_each_run_it_has_looked_at(ledger_url):
    fill(ledger_url, 3)
    seen = []
    with Ledger.open(ledger_url) as ledger:
        result = reprice(ledger, Filters(), dry_run=True, progress=lambda done, total: seen.append((done, total)))
    assert seen == [(1, 3), (2, 3), (3, 3)] and result.runs == 3


def test_a_pipe_gets_no_progress_bar(cli_process, sqlite_url):
    fill(sqlite_url, 3)
    done = cli_process.run("--db", sqlite_url, "reprice", "--dry-run")
    assert done.returncode == 0 and done.stderr == "" and "calls in" in done.stdout


def test_a_terminal_gets_a_bar_with_counts_and_a_rate(cli_process, sqlite_url):
    fill(sqlite_url, 3)
    controller, terminal = pty.openpty()
    try:
        process = subprocess.run([cli_process.exe, "--db", sqlite_url, "reprice", "--dry-run"], env=cli_process.env,
                                 stdout=subprocess.PIPE, stderr=terminal, text=True, timeout=120)
        os.close(terminal)
        drawn = b""
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # the terminal's other end is closed: all read
                break
            if not chunk:
                break
            drawn += chunk
    finally:
        os.close(controller)
    text = drawn.decode()
    assert process.returncode == 0 and "repricing runs" in text and "3/3" in text and "runs/s" in text
    assert "repricing" not in process.stdout


def test_prune_deletes_in_batches_and_tells_its_callback_after_each(ledger_url, monkeypatch):
    from pflow_metrics.ledger import queries

    monkeypatch.setattr(queries, "PRUNE_BATCH", 2)
    now = datetime.now(UTC)
    with Ledger.open(ledger_url) as ledger:
        for days in (40, 39, 38, 37, 36, 1):
            ledger.finish_run(make_run(started_at=now - timedelta(days=days)))
        seen = []
        assert queries.prune(ledger, timedelta(days=30), progress=lambda done, total: seen.append((done, total))) == 5
        assert seen == [(0, 5), (2, 5), (4, 5), (5, 5)]
        assert queries.count_runs(ledger, Filters()) == 1


def test_prune_of_more_runs_with_one_start_than_a_batch_still_finishes(ledger_url, monkeypatch):
    from pflow_metrics.ledger import queries

    monkeypatch.setattr(queries, "PRUNE_BATCH", 2)
    moment = datetime.now(UTC) - timedelta(days=40)
    with Ledger.open(ledger_url) as ledger:
        for _ in range(5):
            ledger.finish_run(make_run(started_at=moment))
        seen = []
        assert queries.prune(ledger, timedelta(days=30), progress=lambda done, total: seen.append((done, total))) == 5
        assert seen[-1] == (5, 5) and queries.count_runs(ledger, Filters()) == 0


def test_db_upgrade_applies_one_revision_at_a_time_and_tells_its_callback(ledger_url):
    from pflow_metrics.ledger.engine import HEAD_REVISION, create_ledger_engine, ensure_schema
    from pflow_metrics.ledger.migrate import script_revisions, upgrade_to

    engine = create_ledger_engine(ledger_url)
    try:
        upgrade_to(engine, script_revisions()[0])  # an old ledger
        seen = []
        assert ensure_schema(engine, progress=lambda done, total: seen.append((done, total))) == script_revisions()[0]
        steps = len(script_revisions()) - 1
        assert seen == [(done, steps) for done in range(steps + 1)]
        assert ensure_schema(engine, upgrade=False) == HEAD_REVISION
    finally:
        engine.dispose()


def test_prune_and_db_upgrade_in_a_pipe_draw_nothing(cli_process, sqlite_url):
    fill(sqlite_url, 2)
    for args in (["prune", "--older-than", "0d"], ["db", "upgrade"]):
        done = cli_process.run("--db", sqlite_url, *args)
        assert done.returncode == 0 and done.stderr == "", (args, done.stderr)
