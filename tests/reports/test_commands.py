"""Every query command on SQLite and PostgreSQL, with ledgers built through the write API."""

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from pflow_metrics.ledger.store import Ledger
from pflow_metrics.money import dumps
from tests.factories import make_run

NOW = datetime.now(UTC)


@pytest.fixture
def filled(ledger_url):
    """Runs over the last weeks: two workflows, two models, one unpriced, one crashed-looking."""
    runs = [
        make_run("nightly-digest", started_at=NOW - timedelta(hours=2),
                 calls=[{"model": "gpt-4o", "cost_usd": 1.0, "input_tokens": 100},
                        {"model": "claude-sonnet-4", "provider": "anthropic", "cost_usd": 2.0, "node_id": "step-1"}]),
        make_run("nightly-digest", started_at=NOW - timedelta(days=2), status="failed",
                 calls=[{"model": "gpt-4o", "cost_usd": 0.5}]),
        make_run("weekly-report", started_at=NOW - timedelta(days=3), tags={"team": "data"},
                 calls=[{"model": "house-model", "provider": "local", "cost_usd": None}]),
        make_run("nightly-digest", started_at=NOW - timedelta(days=20), calls=[{"model": "gpt-4o", "cost_usd": 8.0}]),
    ]
    with Ledger.open(ledger_url) as ledger:
        for record in runs:
            ledger.finish_run(record)
    return ledger_url, runs


def test_cost_by_model_sums_the_window_with_shares(cli, filled):
    url, _ = filled
    code, out, _ = cli("--db", url, "cost", "--by", "model", "--format", "json")
    data = json.loads(out)
    assert code == 0 and data["by"] == ["model"]
    rows = {row["model"]: row for row in data["rows"]}
    assert rows["gpt-4o"]["cost_usd"] == pytest.approx(1.5) and rows["gpt-4o"]["runs"] == 2
    # Unknown is not zero: a model nobody prices has no cost, and the total is a lower bound.
    assert rows["house-model"]["unpriced_calls"] == 1 and rows["house-model"]["cost_usd"] is None
    assert data["total"]["cost_usd"] == 3.5 and data["total"]["calls"] == 4
    assert data["total"]["cost_is_lower_bound"] is True
    assert set(data["rows"][0]) == {"model", "calls", "runs", "input_tokens", "output_tokens",
                                    "cache_creation_tokens", "cache_read_tokens", "thinking_tokens",
                                    "cost_usd", "cost_is_lower_bound", "share", "unpriced_calls"}
    assert data["since"].endswith("+00:00")


def test_cost_by_two_keys_and_by_day(cli, filled):
    url, _ = filled
    _, out, _ = cli("--db", url, "cost", "--by", "workflow,provider", "--format", "json", "--since", "30d")
    keys = {(r["workflow"], r["provider"]) for r in json.loads(out)["rows"]}
    assert ("nightly-digest", "anthropic") in keys and ("weekly-report", "local") in keys
    _, out, _ = cli("--db", url, "cost", "--by", "day", "--format", "json", "--since", "30d")
    days = {r["day"] for r in json.loads(out)["rows"]}
    assert (NOW - timedelta(days=20)).strftime("%Y-%m-%d") in days


def test_a_run_exactly_at_since_is_in_the_window(cli, ledger_url):
    edge = datetime(2026, 11, 1, 0, 0, tzinfo=UTC)
    with Ledger.open(ledger_url) as ledger:
        ledger.finish_run(make_run("edge", started_at=edge, calls=[{"cost_usd": 1.0}]))
        ledger.finish_run(make_run("edge", started_at=edge - timedelta(microseconds=1), calls=[{"cost_usd": 5.0}]))
    _, out, _ = cli("--db", ledger_url, "cost", "--format", "json",
                    "--since", "2026-11-01T00:00:00+00:00", "--until", "2026-11-02T00:00:00+00:00")
    assert json.loads(out)["total"]["cost_usd"] == pytest.approx(1.0)


def test_workflow_globs_and_tags_filter(cli, filled):
    url, _ = filled
    _, out, _ = cli("--db", url, "cost", "--by", "workflow", "--format", "json", "--workflow", "night*")
    assert {r["workflow"] for r in json.loads(out)["rows"]} == {"nightly-digest"}
    _, out, _ = cli("--db", url, "cost", "--by", "workflow", "--format", "json", "--tag", "team=data")
    assert {r["workflow"] for r in json.loads(out)["rows"]} == {"weekly-report"}


def test_an_injection_attempt_is_just_a_name(cli, filled):
    url, runs = filled
    code, out, _ = cli("--db", url, "cost", "--format", "json", "--workflow", "x'; drop table runs;--")
    assert code == 0 and json.loads(out)["rows"] == []
    with Ledger.open(url) as ledger:
        assert ledger.get_run(runs[0].run_id).workflow == "nightly-digest"


def test_report_shows_totals_chart_and_unpriced_warning(cli, filled):
    url, _ = filled
    code, out, _ = cli("--db", url, "report", "--since", "7d")
    assert code == 0
    assert "runs" in out and "67%" in out  # 2 of 3 runs in the window succeeded
    assert "█" in out
    assert "warning: unpriced models" in out and "house-model" in out
    _, out, _ = cli("--db", url, "report", "--since", "7d", "--format", "json")
    data = json.loads(out)
    assert data["runs"] == 3 and data["statuses"]["failed"] == 1
    assert data["cost_usd"] == pytest.approx(3.5) and data["unpriced_models"] == ["house-model"]
    assert data["previous"]["cost_usd"] == pytest.approx(0.0)
    assert "█" not in out


def test_runs_list_and_show(cli, filled):
    url, runs = filled
    _, out, _ = cli("--db", url, "runs", "list", "--format", "json")
    listed = json.loads(out)
    assert [r["run_id"] for r in listed] == [runs[0].run_id, runs[1].run_id, runs[2].run_id]
    _, out, _ = cli("--db", url, "runs", "show", runs[0].run_id[:10], "--format", "json")
    assert json.loads(out) == json.loads(runs[0].to_json())
    code, out, _ = cli("--db", url, "runs", "show", runs[0].run_id[:10])
    assert code == 0 and "claude-sonnet-4" in out and "step-1" in out


def test_a_crashed_run_shows_as_crashed(cli, ledger_url):
    record = make_run("killed", status="running", calls=[], nodes=0)
    record.pid = 2**22 + 12345  # no such process on this host
    with Ledger.open(ledger_url) as ledger:
        ledger.begin_run(record)
    _, out, _ = cli("--db", ledger_url, "runs", "list", "--format", "json")
    assert json.loads(out)[0]["status"] == "crashed"


@pytest.mark.parametrize(("limit", "expected", "status"), [("10", 0, "ok"), ("3", 1, "over"), ("3.5", 0, "warn"),
                                                             ("4", 0, "warn"), ("4.4", 0, "ok")])
def test_budget_exit_codes(cli, filled, limit, expected, status):
    url, _ = filled
    code, out, _ = cli("--db", url, "budget", "--max-usd", limit, "--since", "7d")
    assert code == expected
    assert out.startswith(f"budget: {status}: $3.50 of $")


def test_budget_per_run_names_offenders_and_unpriced_can_fail(cli, filled):
    url, runs = filled
    code, out, _ = cli("--db", url, "budget", "--max-usd", "2", "--since", "7d", "--per-run",
                       "--format", "json")
    data = json.loads(out)
    assert code == 1 and [o["run_id"] for o in data["offenders"]] == [runs[0].run_id]
    code, _, _ = cli("--db", url, "budget", "--max-usd", "100", "--since", "7d", "--fail-on-unpriced")
    assert code == 1
    code, out, _ = cli("--db", url, "budget", "--max-usd", "100", "--since", "7d", "--format", "markdown")
    assert code == 0 and out.startswith("### ✅ LLM budget")


def test_an_empty_or_missing_ledger_is_friendly_and_not_created(cli, tmp_path):
    missing = tmp_path / "nothing-here.db"
    for command in (["report"], ["cost"], ["runs", "list"]):
        code, out, _ = cli("--db", str(missing), *command)
        assert code == 0 and "no runs recorded in this window" in out
    code, _, _ = cli("--db", str(missing), "budget", "--max-usd", "1")
    assert code == 0
    assert not missing.exists()


@pytest.mark.parametrize("args", [
    ["report", "--since", "7x"], ["cost", "--by", "colour"], ["report", "--format", "xml"],
    ["budget", "--max-usd", "lots"], ["runs", "list", "--status", "exploded"], ["cost", "--tag", "novalue"],
    ["runs", "show", "zzzz"], ["prune", "--older-than", "forever"],
])
def test_bad_options_are_one_line_and_exit_2(cli, ledger_url, args):
    with Ledger.open(ledger_url) as ledger:
        ledger.finish_run(make_run())
    code, _, err = cli("--db", ledger_url, *args)
    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err


def test_since_error_says_how_to_write_it(cli):
    _, _, err = cli("report", "--since", "7x")
    assert "--since: cannot read '7x'; try 7d, 24h or 2026-11-01" in err


def test_export_then_ingest_merges_ledgers_idempotently(cli, filled, tmp_path):
    url, runs = filled
    _, out, _ = cli("--db", url, "export", "--since", "30d")
    exported = tmp_path / "runs.jsonl"
    exported.write_text(out)
    target = str(tmp_path / "merged.db")
    for again in ("", " (4 already in the ledger, written again)"):
        code, out, _ = cli("--db", target, "ingest", str(exported))
        assert (code, out) == (0, f"ingested 4 runs{again}\n")
    _, out, _ = cli("--db", target, "cost", "--since", "30d", "--format", "json")
    assert json.loads(out)["total"]["calls"] == 5


def test_ingest_skips_bad_lines_by_number_and_keeps_the_good(cli, tmp_path):
    good = make_run("good").to_json()
    negative = make_run("bad").to_dict()
    negative["llm_calls"][0]["input_tokens"] = -3
    future = {**make_run("future").to_dict(), "schema": 99}
    source = tmp_path / "mixed.jsonl"
    source.write_text("\n".join([good, "{not json", dumps(negative), dumps(future), "[1]"]) + "\n")
    target = str(tmp_path / "ledger.db")
    code, out, err = cli("--db", target, "ingest", str(source))
    assert code == 1 and "ingested 1 runs; 4 bad lines skipped" in out
    assert f"{source}:2: skipped: not JSON" in err
    assert "llm_calls[0].input_tokens" in err and f"{source}:3:" in err
    assert "schema: version 99 is newer" in err


def test_ingest_prices_calls_that_came_without_a_cost(cli, tmp_path):
    record = make_run("imported", calls=[{"model": "gpt-4o", "cost_usd": None, "input_tokens": 1_000_000,
                                          "output_tokens": 0}])
    source = tmp_path / "one.jsonl"
    source.write_text(record.to_json() + "\n")
    target = str(tmp_path / "ledger.db")
    cli("--db", target, "ingest", str(source))
    with Ledger.open(target) as ledger:
        stored = ledger.get_run(record.run_id)
    assert stored.llm_calls[0].cost_usd == pytest.approx(2.5)  # gpt-4o input: $2.50 per million
    assert stored.cost_usd == pytest.approx(2.5)


def test_prune_deletes_old_runs_and_dry_run_only_counts(cli, filled):
    url, runs = filled
    _, out, _ = cli("--db", url, "prune", "--older-than", "10d", "--dry-run")
    assert "would delete 1 runs" in out
    _, out, _ = cli("--db", url, "prune", "--older-than", "10d")
    assert "deleted 1 runs" in out
    _, out, _ = cli("--db", url, "runs", "list", "--since", "365d", "--format", "json")
    assert runs[3].run_id not in {r["run_id"] for r in json.loads(out)}


def test_hostile_names_are_stored_and_shown_safely(cli, ledger_url):
    name = "../../etc/passwd\x1b[31m'\"" + "x" * 10_000
    record = make_run(name)
    with Ledger.open(ledger_url) as ledger:
        ledger.finish_run(record)
        assert ledger.get_run(record.run_id).workflow == name
    code, out, _ = cli("--db", ledger_url, "runs", "list")
    assert code == 0 and "\x1b" not in out and "\\x1b" in out


@pytest.mark.parametrize("command", [["budget", "--max-usd", "5"], ["cost", "--by", "model"], ["report"],
                                     ["runs", "list"], ["export"]])
def test_report_commands_do_not_import_heavy_modules(tmp_path, command):
    ledger = tmp_path / "ledger.db"
    Ledger.open(str(ledger)).close()
    code = (
        "import sys\nfrom pflow_metrics.cli.app import main\n"
        f"try:\n    main(['--db', {str(ledger)!r}, *{command!r}])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('llm', 'alembic', 'pocketflow', 'genai_prices') if m in sys.modules]\n"
        "print('HEAVY', heavy, file=sys.stderr)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                            env={**os.environ, "PFLOW_HOME": str(tmp_path)})
    assert "HEAVY []" in result.stderr, result.stderr


@pytest.mark.parametrize("command", ["report", "cost"])
def test_report_and_cost_take_no_utc_option_since_their_days_are_utc(cli, tmp_path, command):
    code, out, err = cli("--db", tmp_path / "l.db", command, "--utc")
    assert code == 2 and out == "" and "--utc" in err and err.count("\n") == 1
