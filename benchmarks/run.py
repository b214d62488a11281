"""Run every benchmark and print its figures as ratios against baselines measured in the same run.

    python benchmarks/run.py            # full sizes
    python benchmarks/run.py --quick    # smaller, for a first look
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SUITES = ("bench_startup", "bench_ledger", "bench_instrumentation", "bench_reports", "bench_gate", "bench_load",
          "bench_validation", "bench_llm_import")


def main() -> None:
    args = sys.argv[1:]
    for name in SUITES:
        module = importlib.import_module(f"benchmarks.{name}")
        print(f"\n=== {name}")
        sys.argv = [name, *args]
        module.main(quick="--quick" in args)


if __name__ == "__main__":
    main()
