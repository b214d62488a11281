"""Text from the ledger never drives the terminal: every table cell and message is cleaned in
one place (cli/render.py), whatever field it comes from."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from pflow_metrics.ledger.store import Ledger
from tests.factories import make_run

HOSTILE = "\x1b]0;pwned\x07\x1b[2J\x9b31m"



def test_control_characters_in_any_stored_text_reach_no_table(cli, tmp_path):
    record = make_run(f"wf{HOSTILE}", calls=[{"provider": HOSTILE, "model": f"m{HOSTILE}", "node_id": f"n{HOSTILE}"}],
                      tags={"team": HOSTILE})
    record.nodes[0].node_type = HOSTILE
    record.nodes[0].action = HOSTILE
    record.error = HOSTILE
    db = str(tmp_path / "l.db")
    with Ledger.open(db) as ledger:
        ledger.finish_run(record)
    for args in (["runs", "show", record.run_id], ["runs", "show", record.run_id, "--format", "markdown"],
                 ["runs", "list"], ["report"], ["report", "--format", "markdown"],
                 ["cost", "--by", "model,provider,node,workflow"], ["budget", "--max-usd", "0", "--per-run"],
                 ["reprice", "--dry-run"]):
        _, out, err = cli("--db", db, *args)
        assert not set("\x1b\x07\x9b") & set(out + err), args


def test_a_sum_past_64_bits_is_one_line_not_a_crash(cli, tmp_path):
    db = tmp_path / "l.db"
    with Ledger.open(str(db)) as ledger:
        ledger.finish_run(make_run(calls=[{"cost_usd": 1}, {"cost_usd": 1}]))
        with ledger.engine.begin() as conn:  # rows written around pflow-metrics' limits
            conn.execute(text("UPDATE llm_calls SET cost_nanousd = 9000000000000000000"))
    for command in (["budget", "--max-usd", "1"], ["report"], ["cost"]):
        code, out, err = cli("--db", str(db), *command)
        assert code == 2 and err.count("\n") == 1 and "past 64 bits" in err, (command, err)
