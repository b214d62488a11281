"""Pricing: pricing.toml overrides and aliases, then genai-prices, else unpriced."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from pflow_metrics.errors import UsageError
from pflow_metrics.pricing import Rates, cost_of, known_rates, price_call, rates_for
from pflow_metrics.record import LLMCallRecord


def test_an_override_and_its_alias_price_the_call(price_models):
    price_models('[models.house]\ninput = 2.0\noutput = 8.0\ncache_read = 0.5\naliases = ["house-latest"]\n')
    call = LLMCallRecord(node_id="n", model="house-latest", input_tokens=1000, output_tokens=500,
                         cache_read_tokens=2000, cache_creation_tokens=100)
    price_call(call)
    assert call.price_source == "override"
    assert call.rates == {"input": 2.0, "output": 8.0, "cache_read": 0.5, "cache_creation": 2.0}
    assert call.cost_usd == Decimal("0.0072")  # (1000 * 2 + 2000 * 0.5 + 100 * 2 + 500 * 8) / 1e6, exactly
    assert rates_for("house").model == "house"


def test_an_override_wins_over_genai_prices(price_models):
    price_models('[models."gpt-4o"]\ninput = 1.0\noutput = 1.0\n')
    assert rates_for("gpt-4o") == Rates(input=1.0, output=1.0, source="override", model="gpt-4o")


def test_genai_prices_knows_gpt_4o_with_cached_input():
    at = datetime(2025, 6, 1, tzinfo=UTC)
    rates = rates_for("gpt-4o", "openai", at)
    assert (rates.source, rates.model, rates.input, rates.output, rates.cache_read) == (
        "genai-prices", "gpt-4o", 2.5, 10.0, 1.25)
    # Our buckets: 800 uncached + 200 cache-read input tokens (OpenAI counted 1,000 prompt tokens).
    call = LLMCallRecord(node_id="n", model="gpt-4o", provider="openai", input_tokens=800,
                         cache_read_tokens=200, output_tokens=100, started_at=at)
    price_call(call)
    assert call.cost_usd == Decimal("0.00325")  # (800 * 2.5 + 200 * 1.25 + 100 * 10) / 1e6
    assert call.price_source == "genai-prices"


def test_genai_prices_prices_claude_cache_writes_and_reads():
    at = datetime(2025, 10, 1, tzinfo=UTC)
    call = LLMCallRecord(node_id="n", model="claude-sonnet-4-5", provider="anthropic", input_tokens=1000,
                         cache_read_tokens=4000, cache_creation_tokens=2000, output_tokens=500,
                         thinking_tokens=200, started_at=at)
    price_call(call)
    # thinking is inside output: priced once
    assert call.cost_usd == Decimal("0.0192")  # (1000 * 3 + 4000 * 0.3 + 2000 * 3.75 + 500 * 15) / 1e6
    assert call.cost_usd == cost_of(call, rates_for("claude-sonnet-4-5", "anthropic", at))


def test_an_unknown_provider_name_still_finds_the_model():
    assert rates_for("gpt-4o", "some-llm-plugin").model == "gpt-4o"


def test_an_unknown_model_is_never_priced_with_a_default():
    call = LLMCallRecord(node_id="n", model="house-model-nobody-prices", input_tokens=10, output_tokens=10)
    price_call(call)
    assert (call.cost_usd, call.rates, call.price_source) == (None, None, None)
    assert rates_for("house-model-nobody-prices") is None


def test_the_resolved_model_is_priced_first_then_the_requested_one(price_models):
    price_models('[models.alias-only]\ninput = 1.0\noutput = 1.0\n')
    call = LLMCallRecord(node_id="n", model="alias-only", resolved_model="alias-only-2025", input_tokens=10)
    price_call(call)
    assert call.cost_usd == Decimal("0.00001")


def test_a_provider_reported_cost_is_kept():
    call = LLMCallRecord(node_id="n", model="gpt-4o", input_tokens=10**6, cost_usd=0.01, price_source="provider")
    price_call(call)
    assert (call.cost_usd, call.price_source) == (Decimal("0.01"), "provider")


@pytest.mark.parametrize("text", ["[models.x]\ninput = 'cheap'\noutput = 1\n", "[models.x]\noutput = 1\n",
                                  "[models.x]\ninput = -1\noutput = 1\n", "not toml [",
                                  "[models.x]\ninput = inf\noutput = 1\n", "[models.x]\ninput = nan\noutput = 1\n",
                                  "[models.x]\ninput = 1\noutput = 1e300\n"])
def test_a_malformed_pricing_file_is_a_one_line_usage_error(price_models, text):
    price_models(text)
    with pytest.raises(UsageError, match="pricing file"):
        rates_for("x")


def test_known_rates_lists_overrides_and_main_provider_models(price_models):
    price_models('[models.house]\ninput = 2.0\noutput = 8.0\n')
    listed = {rates.model: rates for rates in known_rates()}
    assert listed["house"].source == "override"
    assert listed["gpt-4o"].source == "genai-prices" and listed["gpt-4o"].input > 0
    assert 50 < len(listed) < 1000
