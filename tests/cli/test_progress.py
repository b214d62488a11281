"""Long work reports progress through a callback; the CLI draws a bar only on a terminal."""

from __future__ import annotations

import os
import pty
import subprocess

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
