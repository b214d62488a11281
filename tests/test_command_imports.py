"""Commands import only what they need (start-up time is part of the product): each command
runs as a real process under `python -X importtime`, on a SQLite ledger whose days wait to be
rolled up and with a run whose process is gone (so reading also writes: the roll-up rebuild and
the crash marking), and must not have imported the heavy libraries named here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta

import pytest

from pflow_metrics.context import host_name
from pflow_metrics.ledger.filters import Filters
from pflow_metrics.ledger.queries import count_runs
from pflow_metrics.ledger.store import Ledger
from pflow_metrics.record import utcnow
from tests.factories import make_run

HEAVY = ("sqlalchemy", "alembic", "llm", "pocketflow")
TRACE = [
    {"type": "header", "workflow": "wf", "run_id": "abcdef123456", "started_at": "2026-01-01T00:00:00+00:00"},
    {"type": "node", "node_id": "fetch", "node_type": "echo", "status": "success", "attempts": 1,
     "duration_ms": 1.5, "start_offset_ms": 0.0, "action": "default", "items": None, "store_before": None,
     "llm_calls": [], "changes": {"added": {"a": 1}, "removed": [], "modified": {}}, "error": None},
]
COMMANDS = {
    "--help": ["--help"],
    "db path": ["db", "path"],
    "trace show": ["trace", "show", "{trace}"],
    "pricing show": ["pricing", "show", "gpt-4o"],
    "report": ["report", "--since", "7d"],
    "cost": ["cost", "--by", "model", "--since", "7d"],
    "budget": ["budget", "--max-usd", "1000", "--since", "7d"],
    "runs list": ["runs", "list"],
    "runs show": ["runs", "show", "{run_id}"],
    "export": ["export", "--since", "7d"],
}


@pytest.fixture
def ledger_with_runs(tmp_path):
    """A SQLite ledger with a week of runs nobody has read yet and one run whose process is gone."""
    path = tmp_path / "ledger.db"
    now = utcnow()
    runs = [make_run("digest", started_at=now - timedelta(hours=6 * i), calls=[{}, {"model": "claude-x"}])
            for i in range(20)]
    dead = make_run("still-going", status="running", calls=[], nodes=0, started_at=now - timedelta(minutes=1))
    dead.ended_at, dead.duration_ms, dead.host, dead.pid = None, None, host_name(), 2 ** 22 + 1
    with Ledger.open(str(path)) as ledger:
        ledger.finish_runs(runs)
        ledger.begin_run(dead)
    return path, runs[0].run_id


def imported(args: list[str], env: dict[str, str]) -> set[str]:
    """The modules a `pflow-metrics` process imported, by `python -X importtime`."""
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "pflow_metrics", *args], env=env,
                            capture_output=True, text=True, timeout=120)
    report = [line for line in result.stderr.splitlines() if line.startswith("import time:")]
    assert result.returncode == 0, "\n".join(line for line in result.stderr.splitlines() if line not in report)
    return {line.rsplit("|", 1)[1].strip() for line in report[1:]}


@pytest.mark.parametrize("command", COMMANDS)
def test_a_command_on_a_sqlite_ledger_imports_no_heavy_library(command, ledger_with_runs, tmp_path):
    path, run_id = ledger_with_runs
    trace = tmp_path / "trace.jsonl"
    trace.write_text("".join(json.dumps(line) + "\n" for line in TRACE))
    env = {**os.environ, "PFLOW_HOME": str(tmp_path / "home"), "PFLOW_METRICS_DB": str(path)}
    args = [arg.format(trace=trace, run_id=run_id) for arg in COMMANDS[command]]

    modules = imported(args, env)

    heavy = sorted(name for name in modules if name.split(".")[0] in HEAVY)
    assert heavy == [], f"{command} imported {heavy[:5]}"
    assert "pflow_metrics.cli" in modules  # the import report is read right


def test_reading_did_its_writes_without_sqlalchemy(ledger_with_runs, tmp_path):
    """The first report rebuilt the roll-ups and marked the dead run crashed, in plain SQL."""
    path, _ = ledger_with_runs
    env = {**os.environ, "PFLOW_HOME": str(tmp_path / "home"), "PFLOW_METRICS_DB": str(path)}
    assert not {"sqlalchemy", "alembic"} & imported(["report", "--since", "7d"], env)
    with Ledger.open(str(path), upgrade=False) as ledger, ledger.sql() as conn:
        assert conn.rows("SELECT day FROM rollup_dirty_days") == []
        assert conn.scalar("SELECT count(*) FROM rollup_runs") > 0
    with Ledger.open(str(path), upgrade=False) as ledger:
        assert count_runs(ledger, Filters(status="crashed")) == 1
