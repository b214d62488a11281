"""Small helpers shared by the benchmarks: repeat a function, take the median, print a table."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def median_seconds(work: Callable[[], object], repeat: int, setup: Callable[[], object] | None = None) -> float:
    """Median wall time of `work()` over `repeat` runs; `setup()` runs untimed before each."""
    samples = []
    for _ in range(repeat):
        if setup is not None:
            setup()
        start = time.perf_counter()
        work()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def print_table(title: str, rows: list[tuple[str, str, str, str]]) -> None:
    """rows: (figure, measured, baseline, verdict)."""
    print(f"\n{title}")
    widths = [max(len(row[i]) for row in rows + [("figure", "measured", "baseline", "target")]) for i in range(4)]
    header = ("figure", "measured", "baseline", "target")
    for row in [header, *rows]:
        print("  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths)))


def verdict(ok: bool, target: str) -> str:
    return f"{'PASS' if ok else 'FAIL'} {target}"
