"""`gate` speed on a large SQLite ledger (issue 14), against raw sqlite3 in the same run.

    python benchmarks/bench_gate.py [--quick] [--scale 0.1]

Full scale: 200,000 runs of 12 workflows and 2,000,000 LLM calls over a year, written through
ingest; the newest 20 runs of one workflow carry the candidate commit in their CI context. The
figure is `gate --workflow workflow-3` for that commit, as a whole process and in-process,
beside a raw SQL query of the same per-run values (candidate runs by commit, baseline runs of
the last 14 days without them, each with its calls, tokens and cost).
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

from benchmarks.common import median_seconds, print_table  # noqa: E402
from pflow_metrics.ledger import gate  # noqa: E402
from pflow_metrics.ledger.filters import Filters  # noqa: E402
from pflow_metrics.ledger.ingest import ingest_lines  # noqa: E402
from pflow_metrics.ledger.store import Ledger  # noqa: E402
from tests.factories import make_run  # noqa: E402

SHA = "c0ffee0123456789"
WORKFLOW = "workflow-3"
CANDIDATES = 20


def record_lines(runs: int, now: datetime):
    """Runs spread over a year, ten calls each; the newest CANDIDATES of WORKFLOW ran at SHA."""
    rng = random.Random(14)
    for i in range(runs):
        workflow = f"workflow-{i % 12}"
        candidate = workflow == WORKFLOW and i >= runs - 12 * CANDIDATES
        started = now - timedelta(minutes=rng.uniform(1, 60)) if candidate \
            else now - timedelta(seconds=rng.uniform(3600, 365 * 86400))
        calls = [{"model": "gpt-4o", "node_id": f"step-{rng.randint(0, 2)}",
                  "cost_usd": rng.uniform(0.001, 0.05) * (1.2 if candidate else 1),
                  "input_tokens": rng.randint(10, 5000), "output_tokens": rng.randint(10, 800)} for _ in range(10)]
        record = make_run(workflow, started_at=started, calls=calls, nodes=3, duration_ms=rng.uniform(500, 3000))
        record.ci = {"provider": "github", "git_sha": SHA if candidate else f"old{i % 50}", "git_branch": "main"}
        yield record.to_json()


# The same values as queries.run_values for the two sets, in one statement each.
RAW_SQL = """
SELECT r.id, r.workflow, r.status, r.started_at, r.duration_ms,
       (SELECT count(*) FROM llm_calls c WHERE c.run_id = r.id),
       (SELECT coalesce(sum(c.input_tokens + c.output_tokens + c.cache_read_tokens + c.cache_creation_tokens
                            + c.thinking_tokens), 0) FROM llm_calls c WHERE c.run_id = r.id),
       (SELECT coalesce(sum(c.cost_nanousd), 0) FROM llm_calls c WHERE c.run_id = r.id),
       (SELECT count(*) - count(c.cost_nanousd) FROM llm_calls c WHERE c.run_id = r.id)
FROM runs r WHERE r.workflow = ? AND {where} ORDER BY r.started_at, r.id
"""
CANDIDATE_WHERE = "(r.ci_git_sha = ? OR json_extract(r.tags, '$.git_sha') = ?)"
BASELINE_WHERE = "r.started_at >= ? AND NOT (r.ci_git_sha IS ? OR json_extract(r.tags, '$.git_sha') IS ?)"


def main(quick: bool = False) -> None:
    scale = float(sys.argv[sys.argv.index("--scale") + 1]) if "--scale" in sys.argv else (0.02 if quick else 1.0)
    runs = int(200_000 * scale)
    folder = Path(tempfile.mkdtemp(prefix="pflow-bench-gate-"))
    path = folder / "ledger.db"
    now = datetime.now(UTC)
    with Ledger.open(str(path)) as ledger:
        ingest_lines(ledger, record_lines(runs, now))

        def ours() -> gate.Gate:
            candidate = gate.select_runs(ledger, Filters(workflows=[WORKFLOW], tags={"git_sha": SHA}))
            baseline = gate.select_runs(ledger, Filters(since=now - timedelta(days=14), workflows=[WORKFLOW]))
            return gate.compare(candidate, baseline, gate.Settings(), {}, {})

        verdict = ours()
        in_process = median_seconds(ours, 5)

    raw = sqlite3.connect(path)
    since = (now - timedelta(days=14)).replace(tzinfo=None).isoformat(" ")

    def raw_query() -> int:
        candidate = raw.execute(RAW_SQL.format(where=CANDIDATE_WHERE), (WORKFLOW, SHA, SHA)).fetchall()
        baseline = raw.execute(RAW_SQL.format(where=BASELINE_WHERE), (WORKFLOW, since, SHA, SHA)).fetchall()
        return len(candidate) + len(baseline)

    raw_rows = raw_query()
    raw_s = median_seconds(raw_query, 5)
    ours_rows = verdict.candidate["runs"] + verdict.baseline["runs"]

    def process(*args: str) -> float:
        return median_seconds(lambda: subprocess.run(args, capture_output=True, check=False), 5)

    whole = process(sys.executable, "-m", "pflow_metrics", "--db", str(path), "gate", "--candidate-tag",
                    f"git_sha={SHA}", "--workflow", WORKFLOW, "--format", "json")
    bare = process(sys.executable, "-c", "import sqlalchemy")
    started = time.perf_counter()
    shown = subprocess.run([sys.executable, "-m", "pflow_metrics", "--db", str(path), "gate", "--candidate-tag",
                            f"git_sha={SHA}", "--workflow", WORKFLOW], capture_output=True, text=True, check=False)
    once = time.perf_counter() - started

    print_table(f"gate on {runs:,} runs / {runs * 10:,} calls (SQLite); one workflow, "
                f"{verdict.candidate['runs']} candidate and {verdict.baseline['runs']} baseline runs", [
        ("same runs as raw SQL", f"{ours_rows}", f"{raw_rows}", "equal" if ours_rows == raw_rows else "DIFFER"),
        ("gate, in-process", f"{in_process * 1000:.1f} ms", f"raw SQL {raw_s * 1000:.1f} ms",
         f"{in_process / raw_s:.1f}x"),
        ("gate, whole process", f"{whole * 1000:.0f} ms", f"raw SQL {raw_s * 1000:.1f} ms", f"{whole / raw_s:.1f}x"),
        ("gate, whole process", f"{whole * 1000:.0f} ms", f"import sqlalchemy {bare * 1000:.0f} ms",
         f"{whole / bare:.1f}x"),
    ])
    print(f"\nverdict (exit {shown.returncode}, {once * 1000:.0f} ms):\n{shown.stdout}{shown.stderr}")


if __name__ == "__main__":
    main(quick="--quick" in sys.argv)
