"""Many processes writing one ledger at once, starting from an empty one (issue 2, issue 6)."""

import subprocess
import sys
import textwrap

from sqlalchemy import func, select

from pflow_metrics.ledger.models import LLMCall, NodeExecution, Run
from pflow_metrics.ledger.store import Ledger

WORKER = textwrap.dedent(
    """
    import sys, warnings
    warnings.simplefilter("error")  # a spooled run (ledger not written) fails the worker
    from pflow_metrics.ledger.writer import RunWriter
    from tests.factories import make_run
    url, worker, runs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    for i in range(runs):
        record = make_run(workflow=f"worker-{worker}", calls=[{"cost_usd": 0.001 * (worker + 1)}] * 2, nodes=3)
        writer = RunWriter(url, record)
        writer.begin()
        writer.progress()
        assert writer.finish() is None
    """
)


def test_eight_writers_on_a_new_ledger_lose_nothing(ledger_url, tmp_path):
    workers, runs = 8, 25
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, ledger_url, str(worker), str(runs)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for worker in range(workers)
    ]
    outcomes = [(proc.wait(timeout=300), proc.stderr.read()) for proc in procs]

    for code, stderr in outcomes:
        assert code == 0, stderr
        assert "database is locked" not in stderr
    with Ledger.open(ledger_url) as ledger, ledger.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Run)).scalar() == workers * runs
        assert conn.execute(select(func.count()).select_from(NodeExecution)).scalar() == workers * runs * 3
        assert conn.execute(select(func.count()).select_from(LLMCall)).scalar() == workers * runs * 2
        total = conn.execute(select(func.sum(Run.cost_usd))).scalar()
    expected = sum(runs * 2 * 0.001 * (worker + 1) for worker in range(workers))
    assert abs(total - expected) < 1e-9
