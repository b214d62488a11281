"""Usage entries of any shape -> LLMCallRecord in the ledger's token buckets, or rejected.

Providers count differently (field notes): Anthropic's input excludes cache reads and writes;
OpenAI's prompt tokens include cached tokens. Both count reasoning inside output. Every source
is normalized once, here: input = uncached input, cache_read / cache_creation beside it,
output = all output, thinking = the part of output spent reasoning.
"""

from __future__ import annotations

from typing import Any

from pflow_metrics.errors import RecordError
from pflow_metrics.record import CALL_COST, MAX_CALL_TOKENS, MAX_DURATION_MS, LLMCallRecord


class RejectedUsage(ValueError):
    """An entry that cannot be counted; the message says why."""


def _count(value: Any, name: str) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RejectedUsage(f"{name} is not a number: {value!r:.60}")
    if isinstance(value, float):
        if not value.is_integer():  # nan and infinities too
            raise RejectedUsage(f"{name} is not a whole count: {value!r:.60}")
        value = int(value)
    if not 0 <= value <= MAX_CALL_TOKENS:
        raise RejectedUsage(f"{name} is not a count from 0 to {MAX_CALL_TOKENS:,}: {value if value.bit_length() < 64 else 'huge'}")
    return value


def _first(mapping: dict, *keys: str) -> Any:
    for key in keys:
        if mapping.get(key) is not None:
            return mapping[key]
    return None


def call_from_usage(entry: Any, node_id: str, phase: str) -> LLMCallRecord:
    """An `llm_usage`-style dict (or an `__llm_calls__` entry) as a call; RejectedUsage if malformed."""
    if not isinstance(entry, dict):
        raise RejectedUsage(f"usage entry is a {type(entry).__name__}, not a dict")
    model = entry.get("model")
    if not isinstance(model, str) or not model.strip():
        raise RejectedUsage("usage entry has no model name")
    details = entry.get("details") if isinstance(entry.get("details"), dict) else {}
    prompt_details = details.get("prompt_tokens_details") or details.get("input_tokens_details") or {}
    output_details = details.get("completion_tokens_details") or details.get("output_tokens_details") or {}

    input_tokens = _count(_first(entry, "input_tokens", "prompt_tokens", "input"), "input_tokens")
    output_tokens = _count(_first(entry, "output_tokens", "completion_tokens", "output"), "output_tokens")
    cache_creation = _count(
        _first(entry, "cache_creation_tokens", "cache_creation_input_tokens")
        or _first(details, "cache_creation_input_tokens", "cache_creation_tokens"),
        "cache_creation_tokens",
    )
    cache_read = _count(
        _first(entry, "cache_read_tokens", "cache_read_input_tokens")
        or _first(details, "cache_read_input_tokens", "cache_read_tokens"),
        "cache_read_tokens",
    )
    included_cached = _count(
        prompt_details.get("cached_tokens") if isinstance(prompt_details, dict) else None, "cached_tokens"
    )
    included_cached = included_cached or _count(details.get("cachedContentTokenCount"), "cachedContentTokenCount")
    if included_cached:  # OpenAI and Gemini style: prompt tokens include the cached ones
        cache_read = max(cache_read, included_cached)
        input_tokens = max(0, input_tokens - included_cached)
    thinking = _count(
        _first(entry, "thinking_tokens", "reasoning_tokens")
        or (output_details.get("reasoning_tokens") if isinstance(output_details, dict) else None)
        or _first(details, "reasoning_tokens", "thinking_tokens", "thoughtsTokenCount"),
        "thinking_tokens",
    )

    cost = entry.get("cost_usd")
    if cost is not None:
        try:  # the record's own check: the same limits and the same exact rounding
            cost = CALL_COST.load(cost, "cost_usd")
        except RecordError as problem:
            raise RejectedUsage(str(problem)) from None
    duration = entry.get("duration_ms")
    if isinstance(duration, bool) or not isinstance(duration, (int, float)) or not 0 <= duration <= MAX_DURATION_MS:
        duration = None
    return LLMCallRecord(
        node_id=node_id,
        phase=phase,
        model=model,
        resolved_model=_text(entry.get("resolved_model")),
        provider=_text(entry.get("provider")),
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cache_creation_tokens=cache_creation,
        cache_read_tokens=cache_read,
        thinking_tokens=min(thinking, output_tokens) if output_tokens else thinking,
        cost_usd=cost,
        price_source="provider" if cost is not None else None,
        duration_ms=None if duration is None else float(duration),
    )


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
