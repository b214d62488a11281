"""`pricing list`, `pricing show` and `reprice`, with ledgers built through the write API on
SQLite and PostgreSQL and rates from a pricing file (or genai-prices where said)."""

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from pflow_metrics.ledger.store import Ledger
from pflow_metrics.pricing import catalogue_version
from tests.factories import make_run

NOW = datetime.now(UTC)
MILLION = 1_000_000
# gpt-4o at $4 per million input tokens: unlike genai-prices' $2.50, so a reprice shows.
PRICING = '[models."gpt-4o"]\ninput = 4.0\noutput = 8.0\naliases = ["my-gpt"]\n'


def input_only(model="gpt-4o", cost_usd=2.5, input_tokens=MILLION, **more):
    """A call of input tokens only (a million: its cost is the input rate), stored at `cost_usd`."""
    return {"model": model, "input_tokens": input_tokens, "output_tokens": 0, "cost_usd": cost_usd, **more}


def write(url, *records):
    with Ledger.open(url) as ledger:
        ledger.finish_runs(records)
    return records


def stored(url, run_id):
    with Ledger.open(url) as ledger:
        return ledger.get_run(run_id)


def cost_total(cli, url):
    _, out, _ = cli("--db", url, "cost", "--by", "model", "--format", "json")
    return {row["model"]: row["cost_usd"] for row in json.loads(out)["rows"]}


# -- pricing list / show ---------------------------------------------------------------------

def test_list_names_the_pricing_file_and_the_genai_prices_version(cli, price_models, pflow_home):
    price_models(PRICING)
    code, out, _ = cli("pricing", "list", "--format", "json")
    rows = {row["model"]: row for row in json.loads(out)}
    assert code == 0
    assert rows["gpt-4o"]["source"] == "override" and rows["gpt-4o"]["input_rate"] == 4.0
    assert rows["gpt-4o"]["origin"] == f"pricing file {pflow_home / 'pricing.toml'}"
    claude = rows["claude-sonnet-4-5"]
    assert (claude["source"], claude["provider"]) == ("genai-prices", "anthropic")
    assert claude["origin"].startswith(f"genai-prices {catalogue_version()} (bundled data), prices of ")
    assert set(claude) == {"model", "provider", "input_rate", "output_rate", "cache_read_rate", "cache_creation_rate",
                            "source", "origin"}


@pytest.mark.parametrize("fmt", ["table", "csv", "markdown"])
def test_list_in_every_text_format_shows_rates_and_sources(cli, price_models, pflow_home, fmt):
    price_models(PRICING)
    code, out, _ = cli("pricing", "list", "--format", fmt)
    assert code == 0 and ("cache_creation_rate" if fmt == "csv" else "cache creation $/M") in out
    assert str(pflow_home / "pricing.toml") in out and f"genai-prices {catalogue_version()}" in out


def test_list_provider_keeps_one_catalogue_provider_and_the_pricing_file(cli, price_models):
    price_models(PRICING)
    _, out, _ = cli("pricing", "list", "--provider", "anthropic", "--format", "json")
    providers = {row["provider"] for row in json.loads(out)}
    assert providers == {"anthropic", None}


def test_show_an_alias_gives_the_pricing_file_model(cli, price_models, pflow_home):
    price_models(PRICING)
    code, out, _ = cli("pricing", "show", "my-gpt", "--format", "json")
    assert code == 0
    assert json.loads(out) == {"model": "gpt-4o", "provider": None, "input_rate": 4.0, "output_rate": 8.0,
                               "cache_read_rate": 4.0, "cache_creation_rate": 4.0, "source": "override",
                               "origin": f"pricing file {pflow_home / 'pricing.toml'}"}


def test_show_a_catalogue_model(cli):
    code, out, _ = cli("pricing", "show", "claude-sonnet-4-5", "--provider", "anthropic")
    assert code == 0 and "claude-sonnet-4-5" in out and "anthropic" in out and "genai-prices" in out


def test_show_an_unknown_model_is_one_line_and_exit_1(cli):
    code, out, err = cli("pricing", "show", "house-model-nobody-prices")
    assert code == 1 and err == ""
    assert out.count("\n") == 1 and out.startswith("house-model-nobody-prices: unpriced")
    code, out, _ = cli("pricing", "show", "house-model-nobody-prices", "--format", "json")
    assert code == 1 and json.loads(out)["source"] == "unknown"


# -- reprice ---------------------------------------------------------------------------------

def test_dry_run_shows_the_difference_and_changes_nothing(cli, ledger_url, price_models):
    price_models(PRICING)
    (run,) = write(ledger_url, make_run(calls=[input_only()]))
    code, out, _ = cli("--db", ledger_url, "reprice", "--dry-run", "--format", "json")
    data = json.loads(out)
    assert code == 0 and data["dry_run"] is True
    assert (data["runs_changed"], data["calls_changed"]) == (1, 1)
    assert (data["old_cost_usd"], data["new_cost_usd"], data["delta_usd"]) == pytest.approx((2.5, 4.0, 1.5))
    assert stored(ledger_url, run.run_id).to_dict() == run.to_dict()
    _, out, _ = cli("--db", ledger_url, "reprice", "--dry-run")
    assert out.startswith("would reprice 1 of 1 calls in 1 of 1 runs: $2.50 -> $4.00 (+$1.50)")


def test_reprice_writes_call_costs_and_run_totals_that_cost_then_reports(cli, ledger_url, price_models):
    price_models(PRICING)
    first, second = write(ledger_url,
                          make_run(calls=[input_only(), input_only("claude-sonnet-4-5", 0.1, 100_000,
                                                                       provider="anthropic")]),
                          make_run(started_at=NOW - timedelta(days=1), calls=[input_only()]))
    code, out, _ = cli("--db", ledger_url, "reprice")
    assert code == 0 and out.startswith("repriced 3 of 3 calls in 2 of 2 runs")
    call = stored(ledger_url, second.run_id).llm_calls[0]
    assert (call.cost_usd, call.price_source) == (Decimal("4"), "override")
    assert call.rates == {"input": 4.0, "output": 8.0, "cache_read": 4.0, "cache_creation": 4.0}
    claude = stored(ledger_url, first.run_id).llm_calls[1]
    assert (claude.cost_usd, claude.price_source) == (Decimal("0.3"), "genai-prices")  # $3 per million today
    assert stored(ledger_url, first.run_id).cost_usd == Decimal("4.3")
    assert cost_total(cli, ledger_url) == {"gpt-4o": pytest.approx(8.0), "claude-sonnet-4-5": pytest.approx(0.3)}
    _, out, _ = cli("--db", ledger_url, "reprice", "--format", "json")
    assert json.loads(out)["calls_changed"] == 0  # stored costs read back exactly: nothing left to do


def test_provider_reported_costs_are_kept(cli, ledger_url, price_models):
    price_models(PRICING)
    record = make_run(calls=[input_only(cost_usd=0.01)])
    record.llm_calls[0].price_source = "provider"
    write(ledger_url, record)
    _, out, _ = cli("--db", ledger_url, "reprice", "--format", "json")
    assert json.loads(out)["provider_reported_calls"] == 1 and json.loads(out)["calls_changed"] == 0
    call = stored(ledger_url, record.run_id).llm_calls[0]
    assert (call.cost_usd, call.price_source) == (Decimal("0.01"), "provider")


def test_unpriced_calls_get_priced_and_unknown_models_keep_their_old_cost(cli, ledger_url):
    record = make_run(calls=[input_only(cost_usd=None), input_only("house-model", 0.3, provider="local"),
                             input_only("nobody-model", None, provider="local")])
    write(ledger_url, record)
    code, out, _ = cli("--db", ledger_url, "reprice")
    assert code == 0
    assert "note: kept the old cost of calls to models nobody prices any more: house-model (1 calls)" in out
    assert "note: still unpriced: nobody-model (1 calls)" in out
    run = stored(ledger_url, record.run_id)
    assert [call.cost_usd for call in run.llm_calls] == [Decimal("2.5"), Decimal("0.3"), None]  # gpt-4o: genai-prices
    assert (run.cost_usd, run.unpriced_calls) == (None, 1)


def test_the_window_and_workflow_limit_what_is_repriced(cli, ledger_url, price_models):
    price_models(PRICING)
    recent, old, other = write(ledger_url, make_run("digest", calls=[input_only()]),
                               make_run("digest", started_at=NOW - timedelta(days=20), calls=[input_only()]),
                               make_run("other", calls=[input_only()]))
    cli("--db", ledger_url, "reprice", "--since", "7d", "--workflow", "dig*")
    costs = {run.run_id: stored(ledger_url, run.run_id).cost_usd for run in (recent, old, other)}
    assert costs == {recent.run_id: pytest.approx(4.0), old.run_id: 2.5, other.run_id: 2.5}


def test_a_run_still_running_is_left_to_its_process(cli, ledger_url, price_models):
    price_models(PRICING)
    record = make_run(status="running", calls=[input_only()])
    with Ledger.open(ledger_url) as ledger:
        ledger.begin_run(record)
        ledger.journal(record, 0, 0)
    _, out, _ = cli("--db", ledger_url, "reprice")
    assert "skipped 1 runs still running" in out
    assert stored(ledger_url, record.run_id).llm_calls[0].cost_usd == 2.5


def test_reprice_on_a_missing_ledger_is_friendly_and_creates_nothing(cli, tmp_path):
    missing = tmp_path / "nothing-here.db"
    code, out, _ = cli("--db", str(missing), "reprice")
    assert code == 0 and "no runs recorded in this window" in out and not missing.exists()


@pytest.mark.parametrize("args", [
    ["reprice", "--since", "7x"], ["reprice", "--format", "xml"], ["reprice", "--until", "whenever"],
    ["pricing", "list", "--format", "xml"], ["pricing", "list", "--provider", "no-such-provider"],
    ["pricing", "show", "gpt-4o", "--format", "yaml"], ["pricing", "show"], ["pricing", "frobnicate"],
])
def test_bad_options_are_one_line_and_exit_2(cli, ledger_url, args):
    write(ledger_url, make_run())
    code, _, err = cli("--db", ledger_url, *args)
    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err


def test_a_malformed_pricing_file_stops_reprice_before_writing(cli, ledger_url, price_models):
    (run,) = write(ledger_url, make_run(calls=[input_only()]))
    price_models("not toml [")
    code, _, err = cli("--db", ledger_url, "reprice")
    assert code == 2 and err.count("\n") == 1 and "pricing file" in err
    assert stored(ledger_url, run.run_id).to_dict() == run.to_dict()


@pytest.mark.parametrize("fmt", ["table", "csv", "markdown"])
def test_reprice_text_formats_have_a_row_per_model_and_tables_a_total(cli, ledger_url, price_models, fmt):
    price_models(PRICING)
    write(ledger_url, make_run(calls=[input_only(), input_only("house-model", 0.3, provider="local")]))
    code, out, _ = cli("--db", ledger_url, "reprice", "--dry-run", "--format", fmt)
    rows = [line for line in out.splitlines() if line.lstrip("| ").startswith(("gpt-4o", "house-model", "total"))]
    if fmt == "csv":  # one tidy table: the models, in plain numbers
        assert code == 0 and rows == ["gpt-4o,1,1,2.5,4,1.5", "house-model,1,0,0.3,0.3,0"]
        return
    assert code == 0 and len(rows) == 3 and "+$1.50" in rows[-1]
    if fmt == "markdown":  # a note straight after the table would read as one more table row
        assert "|\n\nnote: kept the old cost" in out
