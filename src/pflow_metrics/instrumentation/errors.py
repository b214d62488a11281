"""What the instrumentation raises or warns about."""

from __future__ import annotations


class BudgetExceeded(Exception):
    """The run's cost passed its budget; no further node was started."""

    def __init__(self, spent_usd: float, budget_usd: float):
        super().__init__(f"budget exceeded: spent ${spent_usd:.6f} of a ${budget_usd:.6f} budget; no further node started")
        self.spent_usd = spent_usd
        self.budget_usd = budget_usd

    def __reduce__(self):
        return type(self), (self.spent_usd, self.budget_usd)


class MetricsWarning(UserWarning):
    """Something in the metrics went wrong; the workflow went on."""
