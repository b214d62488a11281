"""What an LLM call costs: user overrides, then the genai-prices data set, else unknown.

Overrides live in `$PFLOW_HOME/pricing.toml` (or the file named by `$PFLOW_PRICING`), in USD
per million tokens:

    [models."gpt-4o"]
    input = 2.50
    output = 10.00
    cache_read = 1.25          # optional, default: the input rate
    cache_creation = 3.125     # optional, default: the input rate
    aliases = ["my-gpt"]       # optional: other names that mean this model

An unknown model is never priced with a made-up default: `price_call` leaves its cost None.
genai-prices imports slowly (~0.25 s), so it is loaded on the first lookup that needs it; it
prices from its bundled data (never fetched) by the call's date, and each resolved price is
cached per (model, provider, day).
"""

from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from importlib.metadata import version
from pathlib import Path
from typing import Any

from pflow_metrics.config import pricing_file
from pflow_metrics.errors import UsageError
from pflow_metrics.money import MAX_CALL_USD, usd
from pflow_metrics.record import MAX_RATE_USD, LLMCallRecord

PER_MILLION = 1_000_000
PROVIDER_REPORTED = "provider"
OVERRIDE = "override"
CATALOGUE = "genai-prices"
# `known_rates` lists these providers' models: the whole catalogue (2,000+ entries, mostly
# resellers such as openrouter) would bury them.
LISTED_PROVIDERS = ("openai", "anthropic", "google", "mistral", "deepseek", "x-ai", "groq", "cohere")


@dataclass(frozen=True)
class Rates:
    """USD per million tokens. Cache rates of None fall back to the input rate."""

    input: float
    output: float
    cache_read: float | None = None
    cache_creation: float | None = None
    source: str = OVERRIDE  # "override" | "genai-prices"
    model: str = ""  # the priced model id
    provider: str | None = None  # the genai-prices provider id; None for overrides

    def as_dict(self) -> dict[str, float]:
        return {
            "input": self.input,
            "output": self.output,
            "cache_read": self.input if self.cache_read is None else self.cache_read,
            "cache_creation": self.input if self.cache_creation is None else self.cache_creation,
        }


def overrides() -> dict[str, Rates]:
    """Model name (and alias) -> Rates from the pricing file; {} when there is none.
    A malformed file raises UsageError naming it."""
    path = pricing_file()
    try:
        stamp = path.stat().st_mtime_ns
    except OSError:
        return {}
    return _read_overrides(str(path), stamp)


@functools.lru_cache(maxsize=8)
def _read_overrides(path: str, _stamp: int) -> dict[str, Rates]:
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"pricing file {path}: {exc}") from None
    models = data.get("models") or {}
    if not isinstance(models, dict):
        raise UsageError(f"pricing file {path}: [models] must be a table")
    found: dict[str, Rates] = {}
    for model, spec in models.items():
        try:
            rates = Rates(
                input=_rate(spec["input"]),
                output=_rate(spec["output"]),
                cache_read=_optional_rate(spec.get("cache_read")),
                cache_creation=_optional_rate(spec.get("cache_creation")),
                model=model,
            )
            aliases = list(spec.get("aliases", []))
        except (KeyError, TypeError, ValueError):
            raise UsageError(
                f"pricing file {path}: models.{model} needs finite numeric input and output rates "
                f"from 0 to {MAX_RATE_USD:,} USD per million tokens"
            ) from None
        for name in [model, *aliases]:
            found[str(name)] = rates
    return found


def _rate(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= MAX_RATE_USD:
        raise ValueError(value)  # nan and inf included
    return float(value)


def _optional_rate(value: Any) -> float | None:
    return None if value is None else _rate(value)


def rates_for(model: str, provider: str | None = None, at: datetime | None = None) -> Rates | None:
    """The rates for `model` at time `at` (default now), or None when nobody prices it."""
    override = overrides().get(model)
    if override is not None:
        return override
    found = _catalogue_price(model, provider, price_day(at))
    return None if found is None else found[0]


def price_day(at: datetime | None) -> str:
    """The UTC day whose prices apply at `at` (default now)."""
    moment = at if at is not None else datetime.now(UTC)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).date().isoformat()


@functools.lru_cache(maxsize=1024)
def _catalogue_price(model: str, provider: str | None, day: str) -> tuple[Rates, Any] | None:
    """(Rates, genai-prices ModelPrice) from the bundled data, or None. Never fetches."""
    from genai_prices import Usage, calc_price

    moment = datetime.fromisoformat(f"{day}T12:00:00+00:00")
    # The provider named by an llm plugin may be unknown to genai-prices: then let it guess.
    for provider_id in dict.fromkeys([provider, None]):
        try:
            result = calc_price(Usage(input_tokens=0, output_tokens=0), model_ref=model,
                                provider_id=provider_id, genai_request_timestamp=moment)
        except (LookupError, ValueError):
            continue
        price = result.model_price
        rates = _catalogue_rates(price, result.model.id, result.provider.id)
        return rates, price
    return None


def _catalogue_rates(price: Any, model: str, provider: str) -> Rates:
    """Rates from a genai-prices ModelPrice."""
    return Rates(
        input=_base(price.input_mtok),
        output=_base(price.output_mtok),
        cache_read=_optional_base(price.cache_read_mtok),
        cache_creation=_optional_base(price.cache_write_mtok),
        source=CATALOGUE,
        model=model,
        provider=provider,
    )


def _base(price: Any) -> float:
    """A flat rate, or the base rate of a tiered one (tiers apply above long-context thresholds)."""
    return float(getattr(price, "base", price) or 0)


def _optional_base(price: Any) -> float | None:
    return None if price is None else _base(price)


def cost_of(call: LLMCallRecord, rates: Rates) -> Decimal:
    """Exact USD for the call's buckets: uncached input, cache reads, cache writes and output.
    Thinking tokens are part of output and are not priced again."""
    rate = {kind: usd(value) for kind, value in rates.as_dict().items()}
    return usd((
        call.input_tokens * rate["input"]
        + call.cache_read_tokens * rate["cache_read"]
        + call.cache_creation_tokens * rate["cache_creation"]
        + call.output_tokens * rate["output"]
    ) / PER_MILLION)


def _catalogue_cost(call: LLMCallRecord, price: Any) -> Decimal:
    """genai-prices' own arithmetic, so long-context tiers apply. Its input count includes the
    cache tokens (it subtracts them itself), unlike our uncached input bucket."""
    from genai_prices import Usage

    usage = Usage(
        input_tokens=call.input_tokens + call.cache_read_tokens + call.cache_creation_tokens,
        cache_read_tokens=call.cache_read_tokens,
        cache_write_tokens=call.cache_creation_tokens,
        output_tokens=call.output_tokens,
    )
    return usd(price.calc_price(usage)["total_price"])  # genai-prices computes in Decimal


def price_call(call: LLMCallRecord, at: datetime | None = None) -> None:
    """Fill the call's cost_usd, rates and price_source in place. A provider-reported cost
    wins; an unknown model leaves cost_usd None."""
    if call.price_source == PROVIDER_REPORTED and call.cost_usd is not None:
        return
    moment = at or call.started_at
    names = dict.fromkeys(name for name in (call.resolved_model, call.model) if name)
    for name in names:
        override = overrides().get(name)
        if override is not None:
            _apply(call, override, cost_of(call, override))
            return
    for name in names:
        found = _catalogue_price(name, call.provider, price_day(moment))
        if found is not None:
            rates, price = found
            try:
                cost = _catalogue_cost(call, price)
            except (ValueError, ArithmeticError):
                cost = cost_of(call, rates)
            _apply(call, rates, cost)
            return
    call.cost_usd, call.rates, call.price_source = None, None, None


def _apply(call: LLMCallRecord, rates: Rates, cost: Decimal) -> None:
    # A cost past the most a call may cost is not a price anyone pays: leave the call unpriced.
    if not cost <= MAX_CALL_USD:
        call.cost_usd, call.rates, call.price_source = None, None, None
        return
    call.cost_usd = cost
    call.rates = rates.as_dict()
    call.price_source = rates.source


def known_rates(providers: tuple[str, ...] = LISTED_PROVIDERS) -> list[Rates]:
    """The overrides, then today's genai-prices rates of the main providers' models."""
    from genai_prices import data_snapshot

    listed = {rates.model: rates for rates in overrides().values()}
    today = datetime.now(UTC)
    for provider in data_snapshot.get_snapshot().providers:
        if provider.id not in providers:
            continue
        for model in provider.models:
            if model.id in listed:
                continue
            try:
                price = model.get_prices(today)
            except Exception:  # a model without a price today: nothing to list
                continue
            if price.input_mtok is None or price.output_mtok is None:
                continue
            listed[model.id] = _catalogue_rates(price, model.id, provider.id)
    return list(listed.values())


def catalogue_providers() -> list[str]:
    """The provider ids genai-prices knows (for checking a --provider value)."""
    from genai_prices import data_snapshot

    return [provider.id for provider in data_snapshot.get_snapshot().providers]


@functools.cache
def catalogue_version() -> str:
    """The installed genai-prices version: its bundled data is what prices calls."""
    return version("genai-prices")
