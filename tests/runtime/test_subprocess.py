"""The installed `pflow-metrics` executable: examples, JSON on stdout, signals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pflow_metrics.ledger.store import Ledger



EXE = str(Path(sys.executable).with_name("pflow-metrics"))
EXAMPLES = Path(__file__).parents[2] / "examples"


def cli(*args: str, home: Path, **kwargs):
    env = {**os.environ, "PFLOW_HOME": str(home)}
    return subprocess.run([EXE, *args], env=env, capture_output=True, text=True, timeout=120, **kwargs)


def test_the_example_pipeline_runs_offline_and_is_recorded(pflow_home, ledger_url):
    done = cli("--db", ledger_url, "run", str(EXAMPLES / "summarize-then-title.json"), "topic=owls",
               "--output-format", "json", home=pflow_home)
    assert done.returncode == 0, done.stderr
    body = json.loads(done.stdout)  # stdout holds only the JSON
    assert "owls" in body["result"]["summary"]
    with Ledger.open(ledger_url) as ledger:
        assert ledger.get_run(body["run_id"]).status == "success"


def test_the_shell_example_prints_outputs_and_summary(pflow_home, tmp_path):
    done = cli("run", str(EXAMPLES / "shell-then-llm.json"), "count=2", home=pflow_home, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("log: not a git repository")
    assert done.stdout.splitlines()[-1].startswith("success · ")
    assert done.stderr == ""  # no progress lines when stderr is not a terminal


def test_a_validation_error_exits_2_from_the_executable(pflow_home, tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"ir_version": "0.1.0", "nodes": [{"id": "a", "type": "ecko"}]}')
    done = cli("run", str(path), home=pflow_home)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == "pflow-metrics: error: nodes[0].type: unknown node type 'ecko' (did you mean 'echo'?)\n"


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_records_the_run_as_failed_with_the_reason(pflow_home, tmp_path, sqlite_url, signum, code):
    marker = tmp_path / "started"
    workflow = tmp_path / "slow.json"
    workflow.write_text(json.dumps({"ir_version": "0.1.0", "nodes": [
        {"id": "slow", "type": "shell", "params": {"command": f"touch {marker} && exec sleep 30"}}]}))
    env = {**os.environ, "PFLOW_HOME": str(pflow_home)}
    process = subprocess.Popen([EXE, "--db", sqlite_url, "run", str(workflow), "--output-format", "json"],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not marker.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signum)
    stdout, _ = process.communicate(timeout=60)
    assert process.returncode == code
    body = json.loads(stdout)
    assert body["error_detail"]["node_id"] == "slow" and signal.Signals(signum).name in body["error"]
    with Ledger.open(sqlite_url) as ledger:
        record = ledger.get_run(body["run_id"])
    assert record.status == "failed" and signal.Signals(signum).name in record.error
