"""Load (issue 6): 8 processes each recording 100 runs of a 3-node instrumented flow into one
new SQLite ledger at once; runs per second against the same processes with the ledger off.

    python benchmarks/bench_load.py [--quick]
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import print_table  # noqa: E402
from tests.ledger.test_concurrency import WORKER  # noqa: E402


def timed_workers(script: str, ledger: str, workers: int, runs: int) -> float:
    started = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, "-c", script, ledger, str(w), str(runs)]) for w in range(workers)]
    if any(proc.wait() != 0 for proc in procs):
        raise SystemExit("a worker failed")
    return time.perf_counter() - started


def main(quick: bool = False) -> None:
    workers, runs = 8, (20 if quick else 100)
    folder = Path(tempfile.mkdtemp(prefix="pflow-bench-load-"))
    with_ledger = timed_workers(WORKER, f"sqlite:///{folder / 'ledger.db'}", workers, runs)
    without = timed_workers(WORKER.replace("ledger=url", "ledger=False"), "-", workers, runs)
    total = workers * runs
    print_table(f"{workers} processes x {runs} runs, one SQLite ledger", [
        ("runs per second, ledger on", f"{total / with_ledger:,.0f}", f"ledger off {total / without:,.0f}",
         f"{without / with_ledger:.2f}x of ledger off"),
    ])


if __name__ == "__main__":
    main(quick="--quick" in sys.argv)
