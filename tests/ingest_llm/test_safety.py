"""Importing llm's logs: read-only, safe while llm writes, text kept out unless asked for,
priced at the response's own time, and a bad row costs only itself."""

from __future__ import annotations

import hashlib
import json
import os
import pty
import sqlite3
import subprocess
import sys
import textwrap
from decimal import Decimal

import pytest

from pflow_metrics.ledger.store import Ledger
from tests.ingest_llm.conftest import PRICING, ReportingModel

WRITER = textwrap.dedent("""
    import sys
    import llm, sqlite_utils
    from llm.migrations import migrate

    db = sqlite_utils.Database(sys.argv[1])
    migrate(db)
    if sys.argv[3] == "wal":
        db.enable_wal()
    model = llm.get_model("echo")
    conversations = [model.conversation(), model.conversation()]
    for i in range(int(sys.argv[2])):
        response = conversations[i % 2].prompt(f"prompt {i}")
        response.text()
        response.log_to_db(db)
        if i == 0:
            print("started", flush=True)
""")


@pytest.mark.parametrize("journal", ["delete", "wal"])
def test_an_import_while_llm_writes_loses_nothing(cli, sqlite_url, tmp_path, journal):
    logs = tmp_path / "logs.db"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(logs), "300", journal],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert writer.stdout.readline() == "started\n"
    imported = 0
    while True:
        running = writer.poll() is None
        code, out, err = cli("--db", sqlite_url, "ingest", "--from", "llm", logs)
        assert (code, err) == (0, ""), out
        imported += int(out.split()[1]) if out.startswith("imported") else 0
        if not running:
            break
    assert writer.wait() == 0, writer.stderr.read()  # llm's writes never failed because of the import
    with sqlite3.connect(logs) as conn:
        (logged,) = conn.execute("SELECT count(*) FROM turns").fetchone()
    assert logged == 300 and imported == 300
    report = json.loads(cli("--db", sqlite_url, "report", "--format", "json").stdout)
    assert report["calls"] == 300 and report["runs"] == 2


def test_the_logs_database_is_never_written(cli, sqlite_url, llm_cli, llm_home):
    llm_cli("-m", "echo", "one")
    logs = llm_home / "logs.db"
    before = hashlib.sha256(logs.read_bytes()).hexdigest()
    logs.chmod(0o444)
    try:
        code, _, _ = cli("--db", sqlite_url, "ingest", "--from", "llm")
    finally:
        logs.chmod(0o644)
    assert code == 0 and hashlib.sha256(logs.read_bytes()).hexdigest() == before
    assert sorted(path.name for path in llm_home.iterdir()) == ["logs.db"]


def test_prompt_text_stays_out_of_the_ledger_unless_store_prompts(cli, tmp_path, llm_cli):
    llm_cli("-m", "meter-openai", "the zebra-crossing-42 question with key sk-abcdefghijklmnopqrstuvwx")
    plain, kept = tmp_path / "plain.db", tmp_path / "kept.db"
    assert cli("--db", plain, "ingest", "--from", "llm").exit_code == 0
    assert b"zebra-crossing-42" not in plain.read_bytes()
    assert cli("--db", kept, "ingest", "--from", "llm", "--store-prompts").exit_code == 0
    with Ledger.open(str(kept)) as ledger:
        (run_id,) = [record.run_id for record in ledger.iter_runs(_run_ids(ledger))]
        (call,) = ledger.get_run(run_id).llm_calls
    assert "zebra-crossing-42" in call.prompt and call.response.startswith("meter-openai: the zebra")
    assert "sk-abcdefghijklmnopqrstuvwx" not in call.prompt  # secrets are redacted as everywhere


def _run_ids(ledger):
    from sqlalchemy import text

    with ledger.reading() as conn:
        return [row[0] for row in conn.execute(text("SELECT id FROM runs"))]


def test_each_response_is_priced_at_its_own_time(cli, sqlite_url, llm_cli, llm_home, register_llm_models):
    """genai-prices: o3 cost $10/$40 per million until 2025-06-10, $2/$8 since."""
    register_llm_models(ReportingModel("reasoner", resolved="o3", usage=(1000, 100, {})))
    llm_cli("-m", "reasoner", "long ago")
    llm_cli("-m", "reasoner", "today")
    with sqlite3.connect(llm_home / "logs.db") as conn:  # as if the first were logged in January 2025
        conn.execute("UPDATE turns SET datetime_utc = '2025-01-15T10:00:00+00:00' "
                     "WHERE id = (SELECT min(id) FROM turns)")
    assert cli("--db", sqlite_url, "ingest", "--from", "llm").exit_code == 0
    out = cli("--db", sqlite_url, "runs", "list", "--format", "json", "--since", "2024-01-01").stdout
    costs = {run["started_at"][:4]: Decimal(str(run["cost_usd"])) for run in json.loads(out)}
    assert costs["2025"] == Decimal("0.014") and costs[max(costs)] == Decimal("0.0028")


def test_a_bad_row_is_skipped_with_its_id_and_the_others_land(cli, sqlite_url, llm_cli, llm_home, price_models):
    price_models(PRICING)
    for prompt in ("a", "b", "c", "d", "e"):
        llm_cli("-m", "meter-openai", prompt)
    with sqlite3.connect(llm_home / "logs.db") as conn:
        ids = [row[0] for row in conn.execute("SELECT id FROM turns ORDER BY id")]
        conn.execute("UPDATE turns SET input_tokens = 'many' WHERE id = ?", [ids[0]])
        conn.execute("UPDATE turns SET token_details = '{not json' WHERE id = ?", [ids[1]])
        conn.execute("UPDATE turns SET datetime_utc = '\x1b]0;pwned\x07' WHERE id = ?", [ids[2]])
        conn.execute("UPDATE turns SET input_tokens = NULL, output_tokens = NULL WHERE id = ?", [ids[3]])
    code, out, err = cli("--db", sqlite_url, "ingest", "--from", "llm")
    assert code == 1
    assert out == "imported 2 new llm responses into 2 runs (2 new, 0 updated); 0 already in the ledger; 3 skipped\n"
    lines = err.splitlines()
    assert len(lines) == 3 and all(line.startswith("pflow-metrics: warning: llm response ") for line in lines)
    assert ids[0] in lines[0] and "input_tokens" in lines[0] and "token_details" in lines[1]
    assert "\x1b" not in err  # terminal escapes are shown escaped
    # A response logged without usage is a call whose cost is unknown, not $0.
    rows = json.loads(cli("--db", sqlite_url, "cost", "--by", "model", "--format", "json").stdout)["rows"]
    assert rows[0]["calls"] == 2 and rows[0]["unpriced_calls"] == 1
    assert cli("--db", sqlite_url, "report").exit_code == 0


@pytest.mark.parametrize("source", ["llm", "jsonl"])
def test_ingest_shows_a_progress_bar_on_a_terminal_and_nothing_in_a_pipe(cli, cli_process, llm_cli, llm_home,
                                                                          tmp_path, source):
    llm_cli("-m", "echo", "one")
    llm_cli("-m", "echo", "two")
    logs, ledger = llm_home / "logs.db", tmp_path / "ledger.db"
    if source == "llm":
        args = ["--db", ledger, "ingest", "--from", "llm", logs]
    else:
        cli("--db", ledger, "ingest", "--from", "llm", logs)
        exported = tmp_path / "runs.jsonl"
        exported.write_text(cli("--db", ledger, "export").stdout)
        args = ["--db", tmp_path / "other.db", "ingest", exported]
    piped = cli_process.run(*args)
    assert piped.returncode == 0 and piped.stderr == ""

    leader, follower = pty.openpty()
    process = subprocess.Popen([cli_process.exe, *map(str, args)], env=cli_process.env,
                               stdout=subprocess.PIPE, stderr=follower, text=True)
    os.close(follower)
    shown = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the terminal closed with the process
            break
        if not chunk:
            break
        shown += chunk
    os.close(leader)
    assert process.wait(timeout=60) == 0
    assert b"100%" in shown and (b"importing llm logs" if source == "llm" else b"ingesting") in shown


def test_options_for_the_other_source_are_refused(cli, sqlite_url, tmp_path):
    for args in (["--workflow", "x", "runs.jsonl"], ["--store-prompts", "runs.jsonl"], []):
        code, _, err = cli("--db", sqlite_url, "ingest", *args)
        assert code == 2 and err.count("\n") == 1, args
    code, _, err = cli("--db", sqlite_url, "ingest", "--from", "llm", "--workflow", " ")
    assert code == 2 and "--workflow" in err
    code, _, err = cli("--db", sqlite_url, "ingest", "--from", "llm", tmp_path / "a", tmp_path / "b")
    assert code == 2 and "at most one PATH" in err


HOSTILE = [
    ("input_tokens", -1), ("input_tokens", 2**63 - 1), ("input_tokens", 1e308), ("input_tokens", "twelve"),
    ("output_tokens", b"\x00\xff"), ("token_details", "[]"), ("token_details", '{"cache_read_input_tokens": -5}'),
    ("token_details", "[" * 100_000), ("datetime_utc", "9999-12-31T23:59:59"),
    ("datetime_utc", "0001-01-01T00:00:00+05:00"), ("datetime_utc", ""), ("datetime_utc", None),
    ("model", None), ("model", ""),
]


@pytest.mark.parametrize(("column", "value"), HOSTILE, ids=[f"{c}={str(v)[:20]!r}" for c, v in HOSTILE])
def test_a_hostile_value_costs_only_its_own_row(cli, sqlite_url, llm_cli, llm_home, column, value):
    llm_cli("-m", "echo", "kept")
    llm_cli("-m", "echo", "spoiled")
    with sqlite3.connect(llm_home / "logs.db") as conn:
        conn.execute(f"UPDATE turns SET {column} = ? WHERE id = (SELECT max(id) FROM turns)", [value])
    code, out, err = cli("--db", sqlite_url, "ingest", "--from", "llm")
    assert code == 1 and out.startswith("imported 1 new llm responses") and out.endswith("; 1 skipped\n")
    assert err.count("\n") == 1 and err.startswith("pflow-metrics: warning: llm response ")
    for command in (["report"], ["cost", "--by", "model"], ["runs", "list"], ["export"]):
        assert cli("--db", sqlite_url, *command).exit_code == 0, command


def test_extreme_but_valid_values_are_kept_within_the_ledgers_limits(cli, sqlite_url, llm_cli, llm_home, tmp_path):
    llm_cli("-m", "echo", "at the end of time")
    with sqlite3.connect(llm_home / "logs.db") as conn:
        conn.execute("UPDATE turns SET datetime_utc = '9998-12-31T23:00:00+00:00', duration_ms = ?", [10**11])
    assert cli("--db", sqlite_url, "ingest", "--from", "llm").exit_code == 0
    exported = tmp_path / "runs.jsonl"
    exported.write_text(cli("--db", sqlite_url, "export", "--since", "1970-01-01").stdout)
    assert len(exported.read_text().splitlines()) == 1
    # What the import stored is a valid record: another ledger takes it as it is.
    code, out, err = cli("--db", tmp_path / "copy.db", "ingest", exported)
    assert (code, err) == (0, "") and out == "ingested 1 runs\n"


def test_a_database_llm_keeps_locked_is_exit_1_and_can_be_tried_again(cli, sqlite_url, llm_cli, llm_home, monkeypatch):
    llm_cli("-m", "echo", "one")
    monkeypatch.setenv("PFLOW_SQLITE_BUSY_TIMEOUT_MS", "100")
    holder = sqlite3.connect(llm_home / "logs.db", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # a writer in the middle of its commit, for longer than we wait
    try:
        code, out, err = cli("--db", sqlite_url, "ingest", "--from", "llm")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert (code, out) == (1, "") and "stayed locked" in err and err.count("\n") == 1
    assert cli("--db", sqlite_url, "ingest", "--from", "llm").stdout.startswith("imported 1 new")
