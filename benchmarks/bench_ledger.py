"""Flush speed of the SQLite ledger (issue 2), against raw sqlite3 in the same run.

    python benchmarks/bench_ledger.py [--quick]
"""

from __future__ import annotations

import sqlite3
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import median_seconds, print_table, verdict  # noqa: E402
from pflow_metrics.ledger.rows import call_rows, node_rows  # noqa: E402
from pflow_metrics.ledger.store import Ledger  # noqa: E402
from tests.factories import make_run  # noqa: E402


def raw_sqlite_finish(conn: sqlite3.Connection, record) -> None:
    """The baseline: the same rows through sqlite3 executemany in one transaction."""
    nodes = node_rows(record)
    calls = call_rows(record)
    conn.execute("BEGIN IMMEDIATE")
    node_cols = list(nodes[0])
    call_cols = list(calls[0])
    conn.executemany(
        f"INSERT INTO node_executions ({', '.join(node_cols)}) VALUES ({', '.join('?' * len(node_cols))})",
        [tuple(row[c] for c in node_cols) for row in nodes],
    )
    conn.executemany(
        f"INSERT INTO llm_calls ({', '.join(call_cols)}) VALUES ({', '.join('?' * len(call_cols))})",
        [tuple(str(row[c]) if c == "started_at" else row[c] for c in call_cols) for row in calls],
    )
    conn.execute("COMMIT")


def main(quick: bool = False) -> list[tuple[str, str, str, str]]:
    repeat = 5 if quick else 15
    folder = Path(tempfile.mkdtemp(prefix="pflow-bench-"))
    ledger = Ledger.open(str(folder / "ledger.db"))
    bigs = [make_run(calls=[{"node_id": f"n{i}"} for i in range(1000)], nodes=1000) for _ in range(repeat)]
    big = bigs[0]
    for record in bigs:
        ledger.begin_run(record)  # as a real run does; finish then writes its children

    small = [make_run(calls=[{}, {}, {}], nodes=3) for _ in range(repeat * 20)]
    raw_path = folder / "raw.db"
    with Ledger.open(str(raw_path)) as raw_ledger:
        for record in [big, *small]:
            raw_ledger.begin_run(record)  # the parent rows the foreign keys need
    raw = sqlite3.connect(raw_path, isolation_level=None)
    for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON"):
        raw.execute(f"PRAGMA {pragma}")

    def clear_raw():
        raw.execute("DELETE FROM node_executions")
        raw.execute("DELETE FROM llm_calls")

    pending_big = iter(bigs)
    ours = median_seconds(lambda: ledger.finish_run(next(pending_big)), repeat)
    raw_big = median_seconds(lambda: raw_sqlite_finish(raw, big), repeat, setup=clear_raw)

    pending = iter(small)
    tiny = median_seconds(lambda: ledger.finish_run(next(pending)), len(small))
    pending_raw = iter(small)
    tiny_raw = median_seconds(lambda: raw_sqlite_finish(raw, next(pending_raw)), len(small))
    raw.close()
    ledger.close()

    rows = [
        ("finish 1,000 nodes + 1,000 calls", f"{ours * 1000:.1f} ms", f"raw sqlite3 {raw_big * 1000:.1f} ms",
         verdict(ours <= 2 * raw_big, f"<= 2x ({ours / raw_big:.2f}x)")),
        ("finish 3 nodes + 3 calls (median)", f"{tiny * 1000:.2f} ms", f"raw sqlite3 {tiny_raw * 1000:.2f} ms",
         verdict(tiny <= 0.001, f"<= 1 ms ({tiny / tiny_raw:.2f}x raw)")),
    ]
    print_table("ledger flush (SQLite, WAL)", rows)
    return rows


if __name__ == "__main__":
    main(quick="--quick" in sys.argv)
