"""Workflow validation time (the Trust issue): linear in the size of the workflow, however many
nodes and problems it has. Each figure is measured against the same workflow ten times smaller,
in the same run: linear time makes the ratio about 10 (quadratic made it about 100).

    python benchmarks/bench_validation.py [--quick]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import median_seconds, print_table, verdict  # noqa: E402
from pflow_metrics.runtime.ir import validate_workflow  # noqa: E402

TYPES = ("echo", "llm", "shell", "read-file")


def chain(nodes: int, bad_edges: int = 0) -> dict:
    ids = [f"step_{i}" for i in range(nodes)]
    edges = [{"from": a, "to": b} for a, b in zip(ids, ids[1:])]
    edges += [{"from": f"step_{i}x", "to": f"stpe_{i}"} for i in range(bad_edges)]  # both ends near a node
    return {"ir_version": "0.1.0", "nodes": [{"id": i, "type": "echo", "params": {"text": "${step_0.text}"}}
                                             for i in ids], "edges": edges}


def main(quick: bool = False) -> None:
    nodes, bad = (5_000, 1_250) if quick else (20_000, 5_000)
    rows = []
    for label, big, small in [
        (f"valid chain of {nodes:,} nodes", chain(nodes), chain(nodes // 10)),
        (f"{nodes:,} nodes, {bad:,} bad edges", chain(nodes, bad), chain(nodes // 10, bad // 10)),
    ]:
        seconds = median_seconds(lambda: validate_workflow(big, TYPES), 3)
        baseline = median_seconds(lambda: validate_workflow(small, TYPES), 3)
        ratio = seconds / baseline
        rows.append((label, f"{seconds:.3f}s", f"{baseline:.4f}s at a tenth", verdict(ratio < 30, f"ratio {ratio:.0f} < 30")))
    print_table("workflow validation", rows)


if __name__ == "__main__":
    main(quick="--quick" in sys.argv[1:])
