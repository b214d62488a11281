"""Instrumentation overhead (issue 3), against bare PocketFlow measured in the same run.

    python benchmarks/bench_instrumentation.py [--quick]

1. 2,000 no-op nodes, metrics on and ledger off: microseconds added per node (target <= 10).
2. Tracing 100 nodes that each change one small key, over a small store and over a 1 MB store
   (as one big string, and as 2,000 entries of 500 bytes): the cost must follow what changed.
3. A 5-node flow with the SQLite ledger on: runs per second, and the ratio to ledger off.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pocketflow import Flow, Node  # noqa: E402

from benchmarks.common import median_seconds, print_table, verdict  # noqa: E402
from pflow_metrics.instrumentation import instrument  # noqa: E402


class Noop(Node):
    pass


class Touch(Node):
    """Changes one small key, as a typical node does."""

    def post(self, shared, prep_res, exec_res):
        shared["counter"] = shared.get("counter", 0) + 1


def chain(kind: type[Node], count: int) -> Flow:
    nodes = [kind() for _ in range(count)]
    for left, right in zip(nodes, nodes[1:]):
        left >> right
    return Flow(start=nodes[0])


def per_node_overhead(nodes: int, repeat: int) -> tuple[float, float]:
    """Median seconds of a bare and an instrumented run of the same flow. After one warm-up run
    of each, the two alternate, so that load on a shared machine weighs on both alike."""
    flow = chain(Noop, nodes)
    tracked = instrument(flow, workflow="bench-noop", ledger=False)
    runs = (lambda: flow.run({}), lambda: tracked.run({}))
    for run in runs:
        run()
    samples: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeat):
        for run, times in zip(runs, samples):
            start = time.perf_counter()
            run()
            times.append(time.perf_counter() - start)
    bare, metered = (statistics.median(times) for times in samples)
    return bare, metered


def tracing(store: dict, nodes: int, repeat: int) -> float:
    flow = chain(Touch, nodes)
    tracked = instrument(flow, workflow="bench-trace", ledger=False, trace=True)
    return median_seconds(lambda: tracked.run(dict(store)), repeat)


def ledger_runs_per_second(url: str, runs: int) -> tuple[float, float]:
    flow = chain(Touch, 5)
    with_ledger = instrument(flow, workflow="bench-ledger", ledger=url)
    without = instrument(flow, workflow="bench-ledger", ledger=False)
    with_ledger.run({})  # open and create the ledger outside the timing
    on = median_seconds(lambda: [with_ledger.run({}) for _ in range(runs)], 3)
    off = median_seconds(lambda: [without.run({}) for _ in range(runs)], 3)
    return runs / on, runs / off


def main(quick: bool = False) -> list[tuple[str, str, str, str]]:
    warnings.simplefilter("ignore")
    home = tempfile.mkdtemp(prefix="pflow-bench-home-")
    os.environ["PFLOW_HOME"] = home
    rows = []

    nodes = 2000
    bare, metered = per_node_overhead(nodes, 9 if quick else 31)
    added_us = (metered - bare) / nodes * 1e6
    rows.append((f"{nodes} no-op nodes, metrics on, ledger off", f"{metered * 1e3:.1f} ms",
                 f"{bare * 1e3:.1f} ms bare, {bare / nodes * 1e6:.1f} µs/node ({metered / bare:.1f}x)",
                 verdict(added_us <= 10, f"+{added_us:.1f} µs/node (<= 10)")))

    repeat = 3 if quick else 7
    small = {"topic": "owls", "counter": 0}
    big_string = {**small, "document": "x" * 1_000_000}
    many_entries = {**small, "rows": {f"row-{i}": "y" * 500 for i in range(2000)}}
    untraced = median_seconds(lambda: instrument(chain(Touch, 100), workflow="b", ledger=False).run(dict(big_string)), repeat)
    small_t = tracing(small, 100, repeat)
    string_t = tracing(big_string, 100, repeat)
    entries_t = tracing(many_entries, 100, repeat)
    rows.append(("trace 100 nodes, small store", f"{small_t * 1e3:.1f} ms", f"{untraced * 1e3:.1f} ms untraced", "-"))
    rows.append(("trace 100 nodes, 1 MB store (one string)", f"{string_t * 1e3:.1f} ms",
                 f"{small_t * 1e3:.1f} ms small store", verdict(string_t / small_t < 3, f"{string_t / small_t:.2f}x small (< 3x)")))
    rows.append(("trace 100 nodes, 1 MB store (2,000 entries)", f"{entries_t * 1e3:.1f} ms",
                 f"{small_t * 1e3:.1f} ms small store", verdict(entries_t / small_t < 10, f"{entries_t / small_t:.2f}x small (< 10x)")))
    trace_bytes = max((p.stat().st_size for p in (Path(home) / "debug").glob("workflow-trace-bench-trace-*")), default=0)
    rows.append(("largest trace file", f"{trace_bytes / 1024:.0f} KiB", "-", "-"))

    runs = 20 if quick else 100
    url = f"sqlite:///{Path(home) / 'bench.db'}"
    on, off = ledger_runs_per_second(url, runs)
    rows.append(("5-node flow, SQLite ledger on", f"{on:.0f} runs/s", f"{off:.0f} runs/s ledger off",
                 f"{on / off:.2f}x of ledger off"))
    print_table("instrumentation overhead (same-run baselines)", rows)
    return rows


if __name__ == "__main__":
    main(quick="--quick" in sys.argv[1:])
