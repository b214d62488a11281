"""`ingest --from llm` speed (issue 17), against baselines measured in the same run.

    python benchmarks/bench_llm_import.py [--quick] [--scale 0.1]

Full scale: a logs.db with llm's own schema (its migrations) holding 20,000 turns in 4,000
conversations of four models over a year. Figures: the first import (every response read,
mapped, priced and written) beside `ingest` of the same runs as JSON lines (the same records,
already priced: what writing them costs); a second import, which finds everything in the
ledger, beside a raw sqlite3 read of the same rows (the floor: what reading them costs).
"""

from __future__ import annotations

import json
import random
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import llm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import print_table, verdict  # noqa: E402
from pflow_metrics.ledger.ingest import ingest_lines  # noqa: E402
from pflow_metrics.ledger.llm_logs import import_llm_logs, read_llm_logs  # noqa: E402
from pflow_metrics.ledger.store import Ledger  # noqa: E402
from pflow_metrics.pricing import rates_for  # noqa: E402

MODELS = ("gpt-4o-mini", "claude-3-5-sonnet-20241022", "gemini-2.0-flash", "echo")
DETAILS = {
    "gpt-4o-mini": {"prompt_tokens_details": {"cached_tokens": 64}},
    "claude-3-5-sonnet-20241022": {"cache_read_input_tokens": 512, "cache_creation_input_tokens": 128},
    "gemini-2.0-flash": {"cachedContentTokenCount": 32, "thoughtsTokenCount": 16},
    "echo": None,
}


def write_logs(path: Path, turns: int) -> None:
    """A logs.db migrated by llm itself, with `turns` rows as llm 0.36 writes them."""
    import sqlite_utils
    from llm.migrations import migrate

    db = sqlite_utils.Database(path)
    migrate(db)
    rng = random.Random(17)
    start = datetime.now(UTC) - timedelta(days=365)
    rows = []
    for i in range(turns):
        model = rng.choice(MODELS)
        rows.append({
            "id": f"01bench{i:019d}", "thread_id": f"01conversation{i // 5:012d}", "model": model,
            "resolved_model": None, "input_tokens": rng.randint(10, 5000), "output_tokens": rng.randint(10, 2000),
            "token_details": json.dumps(DETAILS[model]) if DETAILS[model] else None,
            "duration_ms": rng.randint(200, 20_000),
            "datetime_utc": (start + timedelta(seconds=i * 365 * 86400 / turns)).isoformat(),
        })
    db["turns"].insert_all(rows, batch_size=1000)
    db.close()


def raw_read(path: Path) -> int:
    with sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True) as conn:
        return len(conn.execute("SELECT id, thread_id, model, resolved_model, input_tokens, output_tokens, "
                                "token_details, duration_ms, datetime_utc FROM turns").fetchall())


def timed(work) -> tuple[float, object]:
    start = time.perf_counter()
    result = work()
    return time.perf_counter() - start, result


def main(quick: bool = False) -> None:
    scale = float(sys.argv[sys.argv.index("--scale") + 1]) if "--scale" in sys.argv else (0.1 if quick else 1.0)
    turns = int(20_000 * scale)
    folder = Path(tempfile.mkdtemp(prefix="pflow-bench-llm-"))
    logs = folder / "logs.db"
    write_logs(logs, turns)
    # Once per process, not per response: genai-prices' data and llm's plugins (which name the
    # provider of each model). Loaded first, so the figure is what each response costs.
    rates_for("gpt-4o-mini")
    llm.get_models()
    with Ledger.open(str(folder / "ledger.db")) as ledger:
        first, result = timed(lambda: import_llm_logs(ledger, read_llm_logs(logs)))
        assert result.new == turns, result
        again, result = timed(lambda: import_llm_logs(ledger, read_llm_logs(logs)))
        assert result.already == turns and result.new == 0, result
        lines = [record.to_json() for record in ledger.iter_runs(_run_ids(ledger))]
    with Ledger.open(str(folder / "copy.db")) as copy:
        jsonl, landed = timed(lambda: ingest_lines(copy, lines))
    read, count = timed(lambda: raw_read(logs))
    assert count == turns and landed.landed == len(lines)
    print_table(f"{turns:,} llm responses in {len(lines):,} conversations", [
        # Pricing each response (genai-prices' own arithmetic) is most of the difference.
        ("first import", f"{first:.2f}s", f"ingest of the same runs {jsonl:.2f}s",
         verdict(first <= 4 * jsonl, f"<= 4x ({first / jsonl:.1f}x)")),
        # Reading the runs back to find what is there is the rest.
        ("second import (nothing new)", f"{again:.2f}s", f"raw sqlite3 read {read:.3f}s",
         verdict(again <= 40 * read, f"<= 40x ({again / read:.0f}x)")),
    ])


def _run_ids(ledger: Ledger) -> list[str]:
    from sqlalchemy import text

    with ledger.reading() as conn:
        return [row[0] for row in conn.execute(text("SELECT id FROM runs"))]


if __name__ == "__main__":
    main(quick="--quick" in sys.argv)
