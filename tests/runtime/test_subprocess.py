"""The installed `pflow-metrics` executable: examples, JSON on stdout, signals."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest

from pflow_metrics.ledger.store import Ledger

EXAMPLES = Path(__file__).parents[2] / "examples"


def test_the_example_pipeline_runs_offline_and_is_recorded(cli_process, ledger_url):
    done = cli_process.run("--db", ledger_url, "run", EXAMPLES / "summarize-then-title.json", "topic=owls",
                           "--output-format", "json")
    assert done.returncode == 0, done.stderr
    body = json.loads(done.stdout)  # stdout holds only the JSON
    assert "owls" in body["result"]["summary"]
    with Ledger.open(ledger_url) as ledger:
        assert ledger.get_run(body["run_id"]).status == "success"


def test_the_shell_example_prints_outputs_and_summary(cli_process, tmp_path):
    done = cli_process.run("run", EXAMPLES / "shell-then-llm.json", "count=2", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("log: not a git repository")
    assert done.stdout.splitlines()[-1].startswith("success · ")
    assert done.stderr == ""  # no progress lines when stderr is not a terminal


def test_a_validation_error_exits_2_from_the_executable(cli_process, tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"ir_version": "0.1.0", "nodes": [{"id": "a", "type": "ecko"}]}')
    done = cli_process.run("run", path)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == "pflow-metrics: error: nodes[0].type: unknown node type 'ecko' (did you mean 'echo'?)\n"


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_records_the_run_as_failed_with_the_reason(cli_process, tmp_path, sqlite_url, signum, code):
    marker = tmp_path / "started"
    workflow = tmp_path / "slow.json"
    workflow.write_text(json.dumps({"ir_version": "0.1.0", "nodes": [
        {"id": "slow", "type": "shell", "params": {"command": f"touch {marker} && exec sleep 30"}}]}))
    process = cli_process.start("--db", sqlite_url, "run", workflow, "--output-format", "json")
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
