"""Ctrl-C. The CLI: a real SIGINT sent to the foreground process group of `pflow-metrics run`
(as a terminal does) in the middle of a slow node: exit 130, the run recorded as failed with
the reason, the trace closed with its summary line. The library: a KeyboardInterrupt inside
a node is recorded as failed and re-raised, and no signal handler is ever installed."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
from pocketflow import Flow, Node

from pflow_metrics.instrumentation import instrument
from pflow_metrics.ledger.store import Ledger

def _trace_lines(path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines()]


def test_ctrl_c_during_run_exits_130_and_records_a_failed_run_with_its_trace_summary(cli_process, tmp_path, sqlite_url):
    marker = tmp_path / "started"
    workflow = tmp_path / "slow.json"
    workflow.write_text(json.dumps({"ir_version": "0.1.0", "nodes": [
        {"id": "quick", "type": "echo", "params": {"text": "first"}},
        {"id": "slow", "type": "shell", "params": {"command": f"touch {marker} && exec sleep 30"}}],
        "edges": [{"from": "quick", "to": "slow"}]}))
    process = cli_process.start("--db", sqlite_url, "run", workflow, "--trace", "--output-format", "json",
                                start_new_session=True)  # its own process group, like a terminal's job
    try:
        deadline = time.monotonic() + 60
        while not marker.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert marker.exists(), process.communicate(timeout=5)
        os.killpg(process.pid, signal.SIGINT)  # Ctrl-C: the CLI and the node's `sleep` both get it
        stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    body = json.loads(stdout)
    assert body["is_error"] and body["error_detail"]["node_id"] == "slow" and "SIGINT" in body["error"]
    with Ledger.open(sqlite_url) as ledger:
        record = ledger.get_run(body["run_id"])
    assert record.status == "failed" and "SIGINT" in record.error
    assert [(n.node_id, n.status) for n in record.nodes] == [("quick", "success"), ("slow", "failed")]
    *_, summary = _trace_lines(body["trace_path"])
    assert summary["type"] == "summary" and summary["status"] == "failed" and "SIGINT" in summary["error"]
    assert summary["run_id"] == body["run_id"]


class Ok(Node):
    def post(self, shared, prep_res, exec_res):
        shared["ok"] = True


SEEN_IN_NODE: dict = {}


class CtrlC(Node):
    """Looks at the signal handlers from inside the run, then is interrupted."""

    def exec(self, prep_res):
        SEEN_IN_NODE.update({number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)})
        raise KeyboardInterrupt


def _handlers() -> dict:
    return {number: signal.getsignal(number) for number in signal.valid_signals()
            if number not in (signal.SIGKILL, signal.SIGSTOP)}


def test_the_library_records_keyboard_interrupt_as_failed_reraises_it_and_installs_no_handlers(sqlite_url):
    def mine(signum, frame):  # the user's own handler must stay in place
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, mine)
    try:
        before = _handlers()
        ok, stop = Ok(), CtrlC()
        ok >> stop
        tracked = instrument(Flow(start=ok), workflow="interrupted", ledger=sqlite_url, trace=True)
        with pytest.raises(KeyboardInterrupt):
            tracked.run({})
        after = _handlers()
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert after == before
    # The node ran under the user's own handlers: none was swapped in for the run either.
    assert SEEN_IN_NODE == {signal.SIGINT: before[signal.SIGINT], signal.SIGTERM: mine}
    result = tracked.last_run
    assert (result.status, result.error) == ("failed", "KeyboardInterrupt")
    with Ledger.open(sqlite_url) as ledger:
        record = ledger.get_run(result.run_id)
    assert (record.status, record.error) == ("failed", "KeyboardInterrupt")
    assert [(n.node_id, n.status) for n in record.nodes] == [("ok", "success"), ("ctrl_c", "failed")]
    *_, summary = _trace_lines(result.trace_path)
    assert (summary["type"], summary["status"], summary["error"]) == ("summary", "failed", "KeyboardInterrupt")
