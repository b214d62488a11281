"""Recomputing stored LLM call costs with today's rates (`pflow-metrics reprice`).

Each call in the window is priced again as a new call would be today: the pricing file, then
genai-prices at today's date. Three kinds of call keep what is stored:
- a cost the provider reported (price_source "provider");
- a call whose model nobody prices any more: its old cost stays rather than becoming unpriced;
- every call of a run still running: its process writes the whole run when it ends, which
  would overwrite a repriced copy.
Changed runs are written back whole with `Ledger.finish_runs`, so the run totals and anything
else the ledger derives from a run follow the new costs.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal

from pflow_metrics.ledger.queries import Filters, count_runs, iter_records
from pflow_metrics.ledger.store import Ledger
from pflow_metrics.money import ZERO
from pflow_metrics.pricing import PROVIDER_REPORTED, price_call
from pflow_metrics.record import LLMCallRecord, RunRecord, utcnow

BATCH = 500


@dataclass
class ModelChange:
    """One model's calls in the window, costed before and after."""

    calls: int = 0
    calls_changed: int = 0  # calls whose stored cost, rates or source change
    old_cost_usd: Decimal = ZERO  # unpriced calls count as 0
    new_cost_usd: Decimal = ZERO

    @property
    def delta_usd(self) -> Decimal:
        return self.new_cost_usd - self.old_cost_usd


@dataclass
class RepriceResult:
    runs: int = 0  # finished runs in the window
    runs_changed: int = 0
    calls: int = 0
    calls_changed: int = 0
    old_cost_usd: Decimal = ZERO
    new_cost_usd: Decimal = ZERO
    models: dict[str, ModelChange] = field(default_factory=dict)
    provider_reported: int = 0  # calls whose provider-reported cost was kept
    kept_old_cost: Counter[str] = field(default_factory=Counter)  # model -> calls no longer priced
    still_unpriced: Counter[str] = field(default_factory=Counter)  # model -> calls unpriced before and now
    running_skipped: int = 0  # runs left alone because they are still running

    @property
    def delta_usd(self) -> Decimal:
        return self.new_cost_usd - self.old_cost_usd


def reprice(ledger: Ledger, filters: Filters, *, dry_run: bool = False, at: datetime | None = None,
            progress: Callable[[int, int], None] | None = None) -> RepriceResult:
    """Price the calls of the runs in `filters` at `at` (default now) and, unless `dry_run`,
    write the runs whose calls changed. Returns what changed. `progress(done, total)` is told
    how many runs of the window have been looked at (the CLI draws a bar with it)."""
    moment = at or utcnow()
    result = RepriceResult()
    pending: list[RunRecord] = []
    total = count_runs(ledger, filters) if progress is not None else 0
    for done, record in enumerate(iter_records(ledger, filters), 1):
        if progress is not None:
            progress(done, max(total, done))
        if record.status == "running":
            result.running_skipped += 1
            continue
        result.runs += 1
        if not _reprice_run(record, moment, result):
            continue
        result.runs_changed += 1
        if dry_run:
            continue
        pending.append(record)
        if len(pending) >= BATCH:
            ledger.finish_runs(pending)
            pending = []
    if pending:
        ledger.finish_runs(pending)
    return result


def _reprice_run(record: RunRecord, at: datetime, result: RepriceResult) -> bool:
    """Reprice the run's calls in place and tally them; True when any call changed."""
    changed = False
    for index, call in enumerate(record.llm_calls):
        fresh = _priced_today(call, at, result)
        model = result.models.setdefault(call.model, ModelChange())
        model.calls += 1
        model.old_cost_usd += call.cost_usd or ZERO
        model.new_cost_usd += fresh.cost_usd or ZERO
        result.calls += 1
        result.old_cost_usd += call.cost_usd or ZERO
        result.new_cost_usd += fresh.cost_usd or ZERO
        if (fresh.cost_usd, fresh.rates, fresh.price_source) != (call.cost_usd, call.rates, call.price_source):
            model.calls_changed += 1
            result.calls_changed += 1
            record.llm_calls[index] = fresh
            changed = True
    return changed


def _priced_today(call: LLMCallRecord, at: datetime, result: RepriceResult) -> LLMCallRecord:
    """The call with today's price, or the call itself when what is stored must stay."""
    if call.price_source == PROVIDER_REPORTED and call.cost_usd is not None:
        result.provider_reported += 1
        return call
    fresh = replace(call)
    price_call(fresh, at)
    if fresh.cost_usd is not None:
        return fresh
    if call.cost_usd is None:
        result.still_unpriced[call.model] += 1
    else:
        result.kept_old_cost[call.model] += 1
    return call
