"""Many processes recording instrumented runs into one new ledger at once (issues 2 and 6).

This proves nothing is lost or double-counted while writers contend; throughput at scale is
benchmarks/bench_load.py's job, so the runs per process are few."""

import json
import subprocess
from decimal import Decimal
import sys
import textwrap

from sqlalchemy import func, select

from pflow_metrics.ledger.models import LLMCall, NodeExecution, Run
from pflow_metrics.ledger.store import Ledger

WORKER = textwrap.dedent(
    """
    import sys, warnings
    warnings.simplefilter("error")  # a spooled run (ledger not written) fails the worker
    from pocketflow import Flow, Node
    from pflow_metrics import instrument

    url, worker, runs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])

    class Step(Node):
        def post(self, shared, prep_res, exec_res):
            shared["llm_usage"] = {"model": "gpt-4o", "input_tokens": 10, "output_tokens": 5,
                                   "cost_usd": 0.001 * (worker + 1)}

    first, second, third = Step(), Step(), Step()
    first >> second >> third
    tracked = instrument(Flow(start=first), workflow=f"worker-{worker}", ledger=url)
    for _ in range(runs):
        tracked.run({})
        assert tracked.last_run.ledger_warning is None, tracked.last_run.ledger_warning
    """
)


def test_eight_processes_record_every_run_into_one_new_ledger(cli, ledger_url):
    workers, runs = 8, 15
    procs = [
        subprocess.Popen([sys.executable, "-c", WORKER, ledger_url, str(worker), str(runs)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for worker in range(workers)
    ]
    outcomes = [(proc.wait(timeout=600), proc.stderr.read()) for proc in procs]

    for code, stderr in outcomes:
        assert code == 0, stderr
        assert "database is locked" not in stderr
    with Ledger.open(ledger_url) as ledger, ledger.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Run)).scalar() == workers * runs
        assert conn.execute(select(func.count()).select_from(NodeExecution)).scalar() == workers * runs * 3
        assert conn.execute(select(func.count()).select_from(LLMCall)).scalar() == workers * runs * 3
    expected = sum(runs * 3 * Decimal("0.001") * (worker + 1) for worker in range(workers))

    code, out, err = cli("--db", ledger_url, "cost", "--by", "workflow", "--format", "json", "--since", "1h")
    assert code == 0, err
    total = json.loads(out, parse_float=Decimal)["total"]
    assert total["runs"] == workers * runs
    assert total["cost_usd"] == expected
