"""What an LLM call costs: user overrides, then the genai-prices data set, else unknown.

Overrides live in `$PFLOW_HOME/pricing.toml` (or the file named by `PFLOW_PRICING`), in USD per
million tokens:

    [models."gpt-4o"]
    input = 2.50
    output = 10.00
    cache_read = 1.25          # optional, default: the input rate
    cache_creation = 3.125     # optional, default: the input rate
    aliases = ["my-gpt"]       # optional: other names that mean this model

An unknown model is never priced with a made-up default: `price_call` leaves its cost None.
genai-prices imports slowly (~0.25 s), so it is loaded on the first lookup that needs it, and
each resolved rate is cached per (model, provider, day).
"""

from __future__ import annotations

import functools
import os
import tomllib
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from pflow_metrics.config import pflow_home
from pflow_metrics.errors import UsageError
from pflow_metrics.record import LLMCallRecord

PER_MILLION = 1_000_000
PROVIDER_REPORTED = "provider"


@dataclass(frozen=True)
class Rates:
    """USD per million tokens, and where they came from ("override" or "genai-prices")."""

    model: str
    input: float
    output: float
    cache_read: float | None = None
    cache_creation: float | None = None
    source: str = "override"

    def as_dict(self) -> dict[str, float]:
        return {
            "input": self.input,
            "output": self.output,
            "cache_read": self.input if self.cache_read is None else self.cache_read,
            "cache_creation": self.input if self.cache_creation is None else self.cache_creation,
        }


def pricing_file() -> Path:
    return Path(os.environ.get("PFLOW_PRICING") or pflow_home() / "pricing.toml").expanduser()


def overrides() -> dict[str, Rates]:
    """Model name (and alias) -> Rates from the pricing file; {} when there is none."""
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
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"pricing file {path}: {exc}") from None
    found: dict[str, Rates] = {}
    for model, spec in (data.get("models") or {}).items():
        try:
            rates = Rates(
                model=model,
                input=float(spec["input"]),
                output=float(spec["output"]),
                cache_read=_optional_float(spec.get("cache_read")),
                cache_creation=_optional_float(spec.get("cache_creation")),
            )
        except (KeyError, TypeError, ValueError):
            raise UsageError(f"pricing file {path}: models.{model} needs numeric input and output rates") from None
        for name in [model, *spec.get("aliases", [])]:
            found[name] = rates
    return found


def _optional_float(value) -> float | None:
    return None if value is None else float(value)


def rates_for(model: str, provider: str | None = None, at: datetime | None = None) -> Rates | None:
    """The rates for `model` at time `at` (default now), or None when nobody prices it."""
    override = overrides().get(model)
    if override is not None:
        return override
    day = (at.date() if at is not None else date.today()).isoformat()
    return _catalogue_rates(model, provider, day)


@functools.lru_cache(maxsize=1024)
def _catalogue_rates(model: str, provider: str | None, day: str) -> Rates | None:
    found = _catalogue_lookup(model, provider, day)
    if found is None:
        return None
    price, model_id = found
    return Rates(
        model=model_id,
        input=_base(price.input_mtok),
        output=_base(price.output_mtok),
        cache_read=_base(price.cache_read_mtok) if price.cache_read_mtok is not None else None,
        cache_creation=_base(price.cache_write_mtok) if price.cache_write_mtok is not None else None,
        source="genai-prices",
    )


def _catalogue_lookup(model: str, provider: str | None, day: str):
    """(ModelPrice, model id) from genai-prices' bundled data, or None. Never fetches."""
    from genai_prices import Usage, calc_price

    moment = datetime.fromisoformat(f"{day}T12:00:00+00:00")
    for provider_id in ([provider, None] if provider else [None]):
        try:
            result = calc_price(Usage(input_tokens=0, output_tokens=0), model_ref=model,
                                provider_id=provider_id, genai_request_timestamp=moment)
        except (LookupError, ValueError):
            continue
        return result.model_price, result.model.id
    return None


def _base(price) -> float:
    """A flat rate, or the base rate of a tiered one (tiers apply above long-context thresholds)."""
    return float(getattr(price, "base", price) or 0)


def cost_of(call: LLMCallRecord, rates: Rates) -> float:
    """USD for the call's buckets: uncached input, cache reads, cache writes and output.
    Thinking tokens are part of output and are not priced again."""
    rate = rates.as_dict()
    return (
        call.input_tokens * rate["input"]
        + call.cache_read_tokens * rate["cache_read"]
        + call.cache_creation_tokens * rate["cache_creation"]
        + call.output_tokens * rate["output"]
    ) / PER_MILLION


def price_call(call: LLMCallRecord, at: datetime | None = None) -> None:
    """Fill the call's cost_usd, rates and price_source in place. A provider-reported cost wins;
    an unknown model keeps cost_usd None."""
    if call.price_source == PROVIDER_REPORTED and call.cost_usd is not None:
        return
    rates = rates_for(call.resolved_model or call.model, call.provider, at or call.started_at)
    if rates is None and call.resolved_model and call.resolved_model != call.model:
        rates = rates_for(call.model, call.provider, at or call.started_at)
    if rates is None:
        call.cost_usd, call.rates, call.price_source = None, None, None
        return
    call.cost_usd = cost_of(call, rates)
    call.rates = rates.as_dict()
    call.price_source = rates.source


def known_rates() -> list[Rates]:
    """The overrides, then every model genai-prices knows today (its current prices)."""
    from genai_prices import data_snapshot

    listed = {rates.model: rates for rates in overrides().values()}
    today = datetime.now().astimezone()
    snapshot = data_snapshot.get_snapshot()
    for provider in snapshot.providers:
        for model in provider.models:
            if model.id in listed:
                continue
            try:
                price = model.get_prices(today)
            except Exception:  # a model without a current price
                continue
            listed[model.id] = Rates(
                model=model.id, input=_base(price.input_mtok), output=_base(price.output_mtok),
                cache_read=_base(price.cache_read_mtok) if price.cache_read_mtok is not None else None,
                cache_creation=_base(price.cache_write_mtok) if price.cache_write_mtok is not None else None,
                source=f"genai-prices:{provider.id}",
            )
    return list(listed.values())
