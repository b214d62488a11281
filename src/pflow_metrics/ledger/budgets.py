"""Budget checks: is the spend in a window (or of each run in it) within a limit?

The library decides the verdict; `pflow-metrics budget` parses options and renders it.
Comparisons are exact (money.py): spend equal to the limit is within it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from pflow_metrics.ledger.filters import Filters
from pflow_metrics.ledger.queries import spend, window_spend
from pflow_metrics.ledger.store import Ledger
from pflow_metrics.money import ZERO, ratio

STATUSES = ("ok", "warn", "over", "unpriced")


@dataclass
class BudgetCheck:
    spend_usd: Decimal  # priced spend in the window
    limit_usd: Decimal
    ratio: Decimal | None  # the checked spend (the window's, or the costliest run's) over the limit; None for $0
    status: str  # ok, warn, over, or unpriced (unpriced calls with fail_on_unpriced)
    unpriced_calls: int
    runs: int
    per_run: bool
    offenders: list[dict[str, Any]] = field(default_factory=list)  # runs over the limit (per_run)

    @property
    def failed(self) -> bool:
        return self.status in ("over", "unpriced")


def check_budget(ledger: Ledger | None, filters: Filters, limit: Decimal, *, per_run: bool = False,
                 warn_at: Decimal = Decimal("0.8"), fail_on_unpriced: bool = False) -> BudgetCheck:
    """The verdict for the runs in `filters` (none when there is no ledger yet). The window's
    spend comes from the roll-ups; only `per_run` reads each run's own."""
    if ledger is None:
        found: dict[str, Any] = {"cost_usd": ZERO, "unpriced_calls": 0, "runs": [] if per_run else 0}
    else:
        found = spend(ledger, filters) if per_run else window_spend(ledger, filters)
    runs = found["runs"] if per_run else []
    offenders = [run for run in runs if run["cost_usd"] > limit]
    checked = max((run["cost_usd"] for run in runs), default=ZERO) if per_run else found["cost_usd"]
    share = ratio(checked, limit) if limit else None
    over = bool(offenders) if per_run else found["cost_usd"] > limit
    if over:
        status = "over"
    elif fail_on_unpriced and found["unpriced_calls"]:
        status = "unpriced"
    elif share is not None and share >= warn_at:
        status = "warn"
    else:
        status = "ok"
    return BudgetCheck(spend_usd=found["cost_usd"], limit_usd=limit, ratio=share, status=status,
                       unpriced_calls=found["unpriced_calls"], runs=len(runs) if per_run else found["runs"],
                       per_run=per_run,
                       offenders=[{"run_id": run["id"], "workflow": run["workflow"], "cost_usd": run["cost_usd"]}
                                  for run in offenders])
