"""`ingest --from llm`: what `llm` logged becomes runs, priced, once; on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import sqlite3
from decimal import Decimal

import pytest

from pflow_metrics.ledger.store import Ledger
from tests.ingest_llm.conftest import BUCKETS, PRICING, conversation_ids

COST = {"meter-openai": Decimal("0.00165"), "meter-anthropic": Decimal("0.001425"),
        "meter-gemini": Decimal("0.000475")}


@pytest.fixture
def logged(llm_cli, llm_home, price_models):
    """Four conversations: two OpenAI-style prompts in one, one each of the others."""
    price_models(PRICING)
    llm_cli("-m", "meter-openai", "first question")
    llm_cli("-m", "meter-openai", "-c", "a follow-up")
    llm_cli("-m", "meter-anthropic", "cached context")
    llm_cli("-m", "meter-gemini", "thinking hard")
    llm_cli("-m", "echo", "free words")
    return llm_home / "logs.db"


def test_each_conversation_becomes_one_run_of_priced_calls_in_five_buckets(cli, ledger_url, logged):
    code, out, err = cli("--db", ledger_url, "ingest", "--from", "llm")
    assert (code, err) == (0, "")
    assert out == "imported 5 new llm responses into 4 runs (4 new, 0 updated); 0 already in the ledger\n"

    _, out, _ = cli("--db", ledger_url, "runs", "list", "--format", "json")
    runs = json.loads(out)
    assert len(runs) == 4 and {run["workflow"] for run in runs} == {"llm"}
    assert {run["status"] for run in runs} == {"success"}

    _, out, _ = cli("--db", ledger_url, "cost", "--by", "model", "--format", "json")
    rows = {row["model"]: row for row in json.loads(out)["rows"]}
    assert rows["meter-openai"]["calls"] == 2 and rows["meter-openai"]["runs"] == 1
    for model, buckets in BUCKETS.items():
        calls = rows[model]["calls"]
        assert {key: rows[model][key] for key in buckets} == {key: n * calls for key, n in buckets.items()}
        assert Decimal(str(rows[model]["cost_usd"])) == COST[model] * calls
    # echo is priced by nobody: unpriced, never $0.
    assert rows["echo"]["cost_usd"] is None and rows["echo"]["unpriced_calls"] == 1

    _, out, _ = cli("--db", ledger_url, "report", "--format", "json")
    report = json.loads(out)
    assert report["runs"] == 4 and report["calls"] == 5 and report["cost_is_lower_bound"] is True
    assert Decimal(str(report["cost_usd"])) == 2 * COST["meter-openai"] + COST["meter-anthropic"] + COST["meter-gemini"]


def test_a_run_is_its_conversation_tagged_with_its_id(cli, ledger_url, logged):
    cli("--db", ledger_url, "ingest", "--from", "llm")
    first = conversation_ids(logged)[0]
    _, out, _ = cli("--db", ledger_url, "runs", "list", "--format", "json", "--tag", f"llm_conversation={first}")
    (run,) = json.loads(out)
    with Ledger.open(ledger_url) as ledger:
        record = ledger.get_run(run["run_id"])
    with sqlite3.connect(logged) as conn:
        times = [row[0] for row in conn.execute(
            "SELECT datetime_utc FROM turns WHERE thread_id = ? ORDER BY id", [first])]
    assert [call.started_at.isoformat() for call in record.llm_calls] == times
    assert record.started_at.isoformat() == times[0]
    assert [call.node_id for call in record.llm_calls] == ["prompt", "prompt"]


def test_a_second_import_adds_nothing_and_says_so(cli, ledger_url, logged):
    cli("--db", ledger_url, "ingest", "--from", "llm")
    _, before, _ = cli("--db", ledger_url, "export")
    code, out, _ = cli("--db", ledger_url, "ingest", "--from", "llm", str(logged))
    assert code == 0 and out == "no new llm responses; 5 already in the ledger\n"
    _, after, _ = cli("--db", ledger_url, "export")
    assert after == before


def test_a_conversation_continued_after_an_import_is_updated(cli, ledger_url, logged, llm_cli):
    cli("--db", ledger_url, "ingest", "--from", "llm")
    first = conversation_ids(logged)[0]
    llm_cli("-m", "meter-openai", "--cid", first, "one more thing")
    llm_cli("-m", "meter-gemini", "a new conversation")
    code, out, _ = cli("--db", ledger_url, "ingest", "--from", "llm")
    assert code == 0
    assert out == "imported 2 new llm responses into 2 runs (1 new, 1 updated); 5 already in the ledger\n"
    _, out, _ = cli("--db", ledger_url, "runs", "list", "--format", "json", "--tag", f"llm_conversation={first}")
    (run,) = json.loads(out)
    with Ledger.open(ledger_url) as ledger:
        assert len(ledger.get_run(run["run_id"]).llm_calls) == 3
    _, out, _ = cli("--db", ledger_url, "cost", "--by", "model", "--format", "json")
    rows = {row["model"]: row for row in json.loads(out)["rows"]}
    assert rows["meter-openai"]["calls"] == 3 and rows["meter-gemini"]["calls"] == 2
    assert json.loads(cli("--db", ledger_url, "report", "--format", "json").stdout)["runs"] == 5


def test_workflow_names_the_runs_of_new_conversations(cli, ledger_url, logged):
    code, _, _ = cli("--db", ledger_url, "ingest", "--from", "llm", "--workflow", "ad-hoc")
    _, out, _ = cli("--db", ledger_url, "cost", "--by", "workflow", "--format", "json")
    assert code == 0 and [row["workflow"] for row in json.loads(out)["rows"]] == ["ad-hoc"]
