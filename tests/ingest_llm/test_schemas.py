"""Every logs.db schema llm has had since it logged usage is read; older ones and other
applications' databases are refused in one line (exit 2)."""

from __future__ import annotations

import json
import sqlite3

import llm
import pytest

from pflow_metrics.ledger.store import Ledger
from tests.ingest_llm.conftest import BUCKETS, PRICING, log_legacy, older_logs_db


def _answered(model_id: str, prompt: str):
    response = llm.get_model(model_id).prompt(prompt)
    response.text()
    return response


@pytest.mark.parametrize("before", ["m019_resolved_model", "m023_message_store"])
def test_a_responses_only_database_imports(cli, sqlite_url, tmp_path, models, price_models, before):
    """llm 0.19 (usage, no resolved_model) and the last schema before `turns`."""
    price_models(PRICING)
    db = older_logs_db(tmp_path / "logs.db", before)
    log_legacy(db, _answered("meter-anthropic", "first"), "conv-a")
    log_legacy(db, _answered("meter-anthropic", "second"), "conv-a")
    log_legacy(db, _answered("meter-gemini", "other"), "conv-b")
    db.close()
    code, out, err = cli("--db", sqlite_url, "ingest", "--from", "llm", tmp_path / "logs.db")
    assert (code, err) == (0, "")
    assert out.startswith("imported 3 new llm responses into 2 runs")
    rows = {row["model"]: row for row in json.loads(cli("--db", sqlite_url, "cost", "--by", "model",
                                                        "--format", "json").stdout)["rows"]}
    assert rows["meter-anthropic"]["calls"] == 2 and rows["meter-anthropic"]["runs"] == 1
    assert {key: rows["meter-gemini"][key] for key in BUCKETS["meter-gemini"]} == BUCKETS["meter-gemini"]


def test_an_upgraded_database_counts_as_llm_logs_does(cli, sqlite_url, llm_home, llm_cli):
    """Every turn, plus each responses row whose id is not also a turn; a conversation begun in
    the old table and continued in the new one is one run."""
    db = older_logs_db(llm_home / "logs.db", "m023_message_store")
    log_legacy(db, _answered("echo", "old one"), "01legacyconversation00000")
    log_legacy(db, _answered("echo", "old two"), "01otherconversation000000")
    db.close()
    llm_cli("-m", "echo", "--cid", "01legacyconversation00000", "continued now")  # llm upgrades the file first
    llm_cli("-m", "echo", "brand new")
    with sqlite3.connect(llm_home / "logs.db") as conn:
        (turn_id,) = conn.execute("SELECT id FROM turns ORDER BY id LIMIT 1").fetchone()
    db = __import__("sqlite_utils").Database(llm_home / "logs.db")
    log_legacy(db, _answered("echo", "both tables"), "01legacyconversation00000", response_id=turn_id)
    db.close()

    code, out, _ = cli("--db", sqlite_url, "ingest", "--from", "llm")
    assert code == 0 and out.startswith("imported 4 new llm responses into 3 runs")
    _, out, _ = cli("--db", sqlite_url, "runs", "list", "--format", "json",
                    "--tag", "llm_conversation=01legacyconversation00000")
    (run,) = json.loads(out)
    with Ledger.open(sqlite_url) as ledger:
        assert len(ledger.get_run(run["run_id"]).llm_calls) == 2


def test_a_database_from_before_usage_was_logged_is_refused_naming_the_columns(cli, sqlite_url, tmp_path):
    older_logs_db(tmp_path / "logs.db", "m013_usage").close()
    code, out, err = cli("--db", sqlite_url, "ingest", "--from", "llm", tmp_path / "logs.db")
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("pflow-metrics: error: ")
    assert "responses has no input_tokens, output_tokens, token_details columns" in err


def test_a_database_from_before_the_responses_table_is_refused(cli, sqlite_url, tmp_path):
    older_logs_db(tmp_path / "logs.db", "m010_create_new_log_tables").close()
    code, _, err = cli("--db", sqlite_url, "ingest", "--from", "llm", tmp_path / "logs.db")
    assert code == 2 and "has no turns or responses table" in err and err.count("\n") == 1


def _other_databases(tmp_path, sqlite_url):
    text = tmp_path / "notes.txt"
    text.write_text("hello\n" * 100)
    empty = tmp_path / "empty.db"
    empty.touch()
    foreign = tmp_path / "app.db"
    with sqlite3.connect(foreign) as conn:  # another application's table named like llm's
        conn.execute("CREATE TABLE responses (id TEXT, model TEXT, input_tokens INT)")
    with Ledger.open(sqlite_url):
        pass
    return {"a text file": text, "an empty file": empty, "another application's SQLite": foreign,
            "our own ledger": sqlite_url.removeprefix("sqlite:///"), "a directory": tmp_path,
            "a missing file": tmp_path / "nope" / "logs.db"}


def test_a_database_that_is_not_llms_is_exit_2_in_one_line(cli, sqlite_url, tmp_path):
    for what, path in _other_databases(tmp_path, sqlite_url).items():
        code, out, err = cli("--db", sqlite_url, "ingest", "--from", "llm", path)
        assert (code, out) == (2, ""), what
        assert err.startswith("pflow-metrics: error: ") and err.count("\n") == 1, (what, err)
        assert "Traceback" not in err
    code, _, _ = cli("--db", tmp_path / "new-ledger.db", "ingest", "--from", "llm", tmp_path / "notes.txt")
    assert code == 2 and not (tmp_path / "new-ledger.db").exists()  # refused before any ledger is created


def test_no_llm_database_at_the_default_path_is_exit_2(cli, sqlite_url, llm_home):
    code, _, err = cli("--db", sqlite_url, "ingest", "--from", "llm")
    assert code == 2 and f"no llm logs database at {llm_home / 'logs.db'}" in err
    assert list(llm_home.iterdir()) == []  # nothing created in llm's directory
