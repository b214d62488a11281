"""Report query speed on a large SQLite ledger (issue 5), against raw sqlite3 in the same run.

    python benchmarks/bench_reports.py [--quick] [--scale 0.1]

Full scale: 200,000 runs and 2,000,000 LLM calls over a year, written through ingest.
"""

from __future__ import annotations

import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import median_seconds, print_table, verdict  # noqa: E402
from pflow_metrics.ledger.ingest import ingest_lines  # noqa: E402
from pflow_metrics.ledger.queries import Filters, cost_by, report  # noqa: E402
from pflow_metrics.ledger.store import Ledger  # noqa: E402
from tests.factories import make_run  # noqa: E402

MODELS = [("gpt-4o", "openai"), ("claude-sonnet-4", "anthropic"), ("gemini-2.5-pro", "google"), ("house", "local")]


def record_lines(runs: int, now: datetime):
    rng = random.Random(7)
    for i in range(runs):
        started = now - timedelta(seconds=rng.uniform(0, 365 * 86400))
        calls = []
        for _ in range(10):
            model, provider = rng.choice(MODELS)
            calls.append({"model": model, "provider": provider, "node_id": f"step-{rng.randint(0, 2)}",
                          "cost_usd": None if model == "house" else rng.uniform(0.001, 0.05),
                          "input_tokens": rng.randint(10, 5000), "output_tokens": rng.randint(10, 800)})
        yield make_run(f"workflow-{i % 12}", started_at=started, calls=calls, nodes=3).to_json()


def main(quick: bool = False) -> None:
    scale = float(sys.argv[sys.argv.index("--scale") + 1]) if "--scale" in sys.argv else (0.02 if quick else 1.0)
    runs = int(200_000 * scale)
    folder = Path(tempfile.mkdtemp(prefix="pflow-bench-reports-"))
    path = folder / "ledger.db"
    ledger = Ledger.open(str(path))
    now = datetime.now(UTC)
    started = time.perf_counter()
    ingest_lines(ledger, record_lines(runs, now))
    ingest_s = time.perf_counter() - started  # includes building every day's and month's roll-ups

    week = Filters(since=now - timedelta(days=7))
    ours_week = median_seconds(lambda: cost_by(ledger, week, ["model"]), 5)
    raw = sqlite3.connect(path)
    since = (now - timedelta(days=7)).replace(tzinfo=None).isoformat(" ")
    # CROSS JOIN makes SQLite walk runs by start time first: the fastest plan for raw SQL here
    # (a plain JOIN scans every call through the model index).
    raw_all_sql = ("SELECT c.model, count(*), count(DISTINCT c.run_id), sum(c.input_tokens), sum(c.output_tokens), "
                   "sum(c.cost_nanousd) FROM runs r CROSS JOIN llm_calls c ON c.run_id = r.id {where} GROUP BY c.model")
    raw_sql = raw_all_sql.format(where="WHERE r.started_at >= ?")
    raw_week = median_seconds(lambda: raw.execute(raw_sql, (since,)).fetchall(), 5)
    all_time = median_seconds(lambda: cost_by(ledger, Filters(), ["model"]), 3)
    year = median_seconds(lambda: report(ledger, Filters(since=now - timedelta(days=365))), 3)
    raw_all = median_seconds(lambda: raw.execute(raw_all_sql.format(where="")).fetchall(), 1)

    # The usual case in CI: a run lands, then a report, which first rebuilds that day and month.
    after_write = median_seconds(lambda: report(ledger, Filters(since=now - timedelta(days=365))), 3,
                                 setup=lambda: ledger.finish_run(make_run("workflow-0", started_at=now, nodes=3)))
    ledger.close()

    def process(*args: str) -> float:
        return median_seconds(lambda: subprocess.run(args, capture_output=True, check=False), 5)

    cli = [sys.executable, "-m", "pflow_metrics", "--db", str(path)]
    cold_budget = process(*cli, "budget", "--max-usd", "1000000")
    cold_cost = process(*cli, "cost", "--by", "model")
    bare = process(sys.executable, "-c", "import sqlalchemy")

    print_table(f"reports on {runs:,} runs / {runs * 10:,} calls (SQLite)", [
        ("ingest, roll-ups included", f"{runs / ingest_s:,.0f} runs/s", "-", "-"),
        ("cost --by model --since 7d", f"{ours_week * 1000:.1f} ms", f"raw SQL {raw_week * 1000:.1f} ms",
         verdict(ours_week <= 1.5 * raw_week, f"<= 1.5x ({ours_week / raw_week:.2f}x)")),
        ("cost --by model, all time", f"{all_time * 1000:.0f} ms", f"raw SQL {raw_all * 1000:.0f} ms",
         verdict(all_time <= 0.2, "<= 200 ms")),
        ("report --since 365d", f"{year * 1000:.0f} ms", "-", verdict(year <= 0.2, "<= 200 ms")),
        ("report --since 365d, one new run", f"{after_write * 1000:.0f} ms", "-",
         verdict(after_write <= 0.2, "<= 200 ms")),
        ("budget, whole process", f"{cold_budget * 1000:.0f} ms", f"import sqlalchemy {bare * 1000:.0f} ms",
         f"{cold_budget / bare:.1f}x"),
        ("cost, whole process", f"{cold_cost * 1000:.0f} ms", f"import sqlalchemy {bare * 1000:.0f} ms",
         f"{cold_cost / bare:.1f}x"),
    ])


if __name__ == "__main__":
    main(quick="--quick" in sys.argv)
