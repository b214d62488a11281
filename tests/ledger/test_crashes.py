"""A run whose process dies shows as crashed, and keeps what it journalled (issue 6)."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import timedelta

from pflow_metrics.ledger.store import Ledger
from tests.factories import make_run

SLOW_FLOW = textwrap.dedent(
    """
    import sys, time
    from pocketflow import Flow, Node
    from pflow_metrics import instrument

    class Step(Node):
        def exec(self, _):
            time.sleep(float(self.params.get("sleep", 0)))

        def post(self, shared, prep_res, exec_res):
            shared["llm_usage"] = {"model": "gpt-4o", "input_tokens": 10, "output_tokens": 5}

    class Hang(Node):
        def exec(self, _):
            print("hanging", flush=True)
            time.sleep(600)

    first, second, hang = Step(), Step(), Hang()
    first >> second >> hang
    tracked = instrument(Flow(start=first), workflow="doomed", ledger=sys.argv[1])
    tracked.run({})
    """
)


def test_a_killed_run_is_crashed_and_keeps_its_finished_nodes(ledger_url):
    proc = subprocess.Popen([sys.executable, "-c", SLOW_FLOW, ledger_url], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "hanging"
    time.sleep(1.5)  # the two finished nodes finished more than a second before the kill
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)

    with Ledger.open(ledger_url) as ledger:
        run_id = ledger.resolve_run_id("")  # the only run
        assert ledger.get_run(run_id).status == "running"  # nobody has looked yet
        assert ledger.mark_crashed_runs() == 1
        stored = ledger.get_run(run_id)
    assert stored.status == "crashed"
    assert [n.node_id for n in stored.nodes] == ["step", "step-2"]
    assert [c.model for c in stored.llm_calls] == ["gpt-4o", "gpt-4o"]


def test_a_run_on_another_host_is_crashed_only_after_its_heartbeat_goes_stale(ledger):
    record = make_run(status="running", calls=[], nodes=0)
    record.host = "ci-runner-7"
    ledger.begin_run(record)

    assert ledger.mark_crashed_runs(crash_after=timedelta(minutes=10)) == 0
    assert ledger.get_run(record.run_id).status == "running"
    assert ledger.mark_crashed_runs(crash_after=timedelta(seconds=-1)) == 1
    assert ledger.get_run(record.run_id).status == "crashed"


def test_a_live_run_on_this_host_is_left_running(ledger):
    record = make_run(status="running", calls=[], nodes=0)  # this very process: alive
    ledger.begin_run(record)
    assert ledger.mark_crashed_runs() == 0
    assert ledger.get_run(record.run_id).status == "running"
