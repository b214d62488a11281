"""Money is exact on both engines: stored as whole nano-dollars, summed as integers, printed as
exact decimals, compared exactly against budgets; unknown costs are never shown as $0."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from pflow_metrics.ledger.store import Ledger
from pflow_metrics.money import dumps, plain, usd
from tests.factories import make_run

NOW = datetime.now(UTC)



def store(url, *records):
    with Ledger.open(url) as ledger:
        ledger.finish_runs(records)


def dimes(count: int, workflow: str = "digest"):
    return [make_run(workflow, started_at=NOW - timedelta(minutes=i + 1), calls=[{"cost_usd": 0.1}])
            for i in range(count)]


def test_many_small_costs_add_up_to_the_exact_decimal_in_json(cli, ledger_url):
    store(ledger_url, *dimes(158))
    code, out, _ = cli("--db", ledger_url, "cost", "--by", "model", "--format", "json")
    assert code == 0
    # The raw text, not a parsed float: no 15.80999999999976.
    assert '"cost_usd": 15.8,' in out
    assert json.loads(out, parse_float=Decimal)["total"]["cost_usd"] == Decimal("15.8")
    _, out, _ = cli("--db", ledger_url, "report", "--format", "json")
    assert json.loads(out, parse_float=Decimal)["cost_usd"] == Decimal("15.8")


def test_spend_equal_to_the_budget_is_within_it(cli, ledger_url):
    store(ledger_url, *dimes(3))
    code, out, _ = cli("--db", ledger_url, "budget", "--max-usd", "0.3")
    assert code == 0
    assert out.startswith("budget: warn: $0.3000 of $0.3000 (100%)")
    code, out, _ = cli("--db", ledger_url, "budget", "--max-usd", "0.3", "--format", "json")
    data = json.loads(out, parse_float=Decimal)
    assert code == 0 and data["status"] == "warn" and data["ratio"] == 1 and data["spend_usd"] == Decimal("0.3")


def test_a_budget_ratio_is_an_exact_decimal(cli, ledger_url):
    store(ledger_url, make_run(calls=[{"cost_usd": 0.88}]))
    _, out, _ = cli("--db", ledger_url, "budget", "--max-usd", "1", "--format", "json")
    assert '"ratio": 0.88,' in out


def test_a_cent_over_the_budget_is_over(cli, ledger_url):
    store(ledger_url, *dimes(3), make_run(calls=[{"cost_usd": "0.000000001"}]))
    code, out, _ = cli("--db", ledger_url, "budget", "--max-usd", "0.3", "--format", "json")
    assert code == 1 and json.loads(out)["status"] == "over"


@pytest.mark.parametrize("limit", ["nan", "inf", "-1", "1e400", "lots"])
def test_a_budget_limit_that_is_not_an_amount_is_a_usage_error(cli, tmp_path, limit):
    code, _, err = cli("--db", str(tmp_path / "l.db"), "budget", "--max-usd", limit)
    assert code == 2 and err.count("\n") == 1 and "--max-usd" in err and "Traceback" not in err


def test_a_model_nobody_prices_is_unpriced_not_free(cli, ledger_url):
    store(ledger_url, make_run(calls=[{"model": "house-model", "cost_usd": None}]),
          make_run(calls=[{"model": "gpt-4o", "cost_usd": 0.25}]))
    _, out, _ = cli("--db", ledger_url, "cost", "--by", "model", "--format", "json")
    data = json.loads(out, parse_float=Decimal)
    rows = {row["model"]: row for row in data["rows"]}
    assert rows["house-model"]["cost_usd"] is None and rows["house-model"]["unpriced_calls"] == 1
    assert data["total"]["cost_usd"] == Decimal("0.25") and data["total"]["cost_is_lower_bound"] is True
    _, out, _ = cli("--db", ledger_url, "cost", "--by", "model")
    house = next(line for line in out.splitlines() if line.startswith("house-model"))
    assert "unpriced" in house and "$0.0000" not in house and "0%" not in house
    total = next(line for line in out.splitlines() if line.startswith("total"))
    assert "≥ $0.2500" in total
    _, out, _ = cli("--db", ledger_url, "report")
    assert "≥ $0.2500" in next(line for line in out.splitlines() if line.startswith("cost "))


def test_a_run_whose_calls_nobody_prices_is_unpriced_in_runs_list_and_show(cli, ledger_url):
    unpriced = make_run(calls=[{"model": "house-model", "cost_usd": None}])
    part = make_run(calls=[{"model": "house-model", "cost_usd": None}, {"model": "gpt-4o", "cost_usd": 0.25}])
    store(ledger_url, unpriced, part)
    _, out, _ = cli("--db", ledger_url, "runs", "list", "--format", "json")
    rows = {row["run_id"]: row for row in json.loads(out, parse_float=Decimal)}
    assert rows[unpriced.run_id]["cost_usd"] is None and rows[unpriced.run_id]["cost_is_lower_bound"] is False
    assert rows[part.run_id]["cost_usd"] == Decimal("0.25") and rows[part.run_id]["cost_is_lower_bound"] is True
    _, out, _ = cli("--db", ledger_url, "runs", "list")
    line = next(line for line in out.splitlines() if line.startswith(unpriced.run_id[:8]))
    assert "unpriced" in line and "$0.0000" not in line
    _, out, _ = cli("--db", ledger_url, "runs", "show", unpriced.run_id, "--section", "run", "--format", "json")
    assert '"cost_usd": null' in out


def test_a_window_of_only_unpriced_calls_has_no_cost(cli, ledger_url):
    store(ledger_url, make_run(calls=[{"model": "house-model", "cost_usd": None}]))
    _, out, _ = cli("--db", ledger_url, "report", "--format", "json")
    data = json.loads(out)
    assert data["cost_usd"] is None and data["cost_per_run"] is None
    _, out, _ = cli("--db", ledger_url, "report")
    assert "unpriced" in next(line for line in out.splitlines() if line.startswith("cost "))


def test_ingest_refuses_a_run_whose_cost_disagrees_with_its_calls(cli, tmp_path):
    record = make_run(calls=[{"cost_usd": 0.1}]).to_dict()
    record["cost_usd"] = 999
    source = tmp_path / "lie.jsonl"
    source.write_text(dumps(record) + "\n" + make_run("honest").to_json() + "\n")
    db = str(tmp_path / "l.db")
    code, out, err = cli("--db", db, "ingest", str(source))
    assert code == 1 and "lie.jsonl:1:" in err and "cost_usd: 999 disagrees with its llm_calls" in err
    _, out, _ = cli("--db", db, "runs", "list", "--format", "json")
    assert [row["workflow"] for row in json.loads(out)] == ["honest"]


def test_costs_too_large_to_be_real_are_refused_so_no_report_prints_infinity(cli, tmp_path):
    record = make_run(calls=[{"cost_usd": 1}, {"cost_usd": 1}]).to_dict()
    for call in record["llm_calls"]:
        call["cost_usd"] = 1e308
    record.pop("cost_usd")
    source = tmp_path / "huge.jsonl"
    source.write_text(json.dumps(record) + "\n")
    db = str(tmp_path / "l.db")
    code, _, err = cli("--db", db, "ingest", str(source))
    assert code == 1 and "llm_calls[0].cost_usd: must be an amount of USD from 0 to 10,000" in err
    for command in (["report"], ["cost"], ["budget", "--max-usd", "1"]):
        _, out, _ = cli("--db", db, *command, "--format", "json")
        json.loads(out, parse_constant=lambda token: pytest.fail(f"{token} is not JSON"))


def test_costs_read_back_exactly_on_both_engines(ledger_url):
    costs = ["0.1", "0.2", "0.000000001", "9999.999999999", "0.3333333333"]
    record = make_run(calls=[{"cost_usd": Decimal(cost)} for cost in costs])
    store(ledger_url, record)
    with Ledger.open(ledger_url) as ledger:
        stored = ledger.get_run(record.run_id)
    assert [call.cost_usd for call in stored.llm_calls] == [usd(cost) for cost in costs]
    assert stored.cost_usd == sum((usd(cost) for cost in costs), Decimal(0))
    assert plain(stored.cost_usd) == "10000.633333333"  # rounded once, to the nano-dollar, then exact


def test_token_counts_past_32_bits_land_on_both_engines(ledger_url):
    record = make_run(calls=[{"input_tokens": 800_000_000} for _ in range(3)])
    store(ledger_url, record)
    with Ledger.open(ledger_url) as ledger:
        assert ledger.get_run(record.run_id).tokens.input == 2_400_000_000


def test_budget_csv_is_a_table_with_plain_numbers(cli, ledger_url):
    import csv
    import io

    store(ledger_url, *dimes(3), make_run("costly", calls=[{"cost_usd": "0.25"}]))
    code, out, _ = cli("--db", ledger_url, "budget", "--max-usd", "0.2", "--per-run", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 1 and rows[0]["status"] == "over" and rows[0]["spend_usd"] == "0.55"
    assert rows[0]["limit_usd"] == "0.2" and rows[0]["ratio"] == "1.25" and rows[0]["runs"] == "4"
    assert [(row["workflow"], row["cost_usd"]) for row in rows[1:]] == [("costly", "0.25")]


@pytest.mark.parametrize("zero", ["-0", "-0.0", "-0.0000000001"])
def test_a_negative_zero_limit_is_zero(cli, tmp_path, zero):
    code, out, _ = cli("--db", tmp_path / "l.db", "budget", "--max-usd", zero)
    assert code == 0 and "$0.0000 of $0.0000" in out and "-" not in out.split(" in the")[0]
