"""The library API: `instrument(flow, workflow=...)` and `record_llm_call(shared, ...)`.

    from pflow_metrics import instrument
    tracked = instrument(flow, workflow="nightly-digest")
    tracked.run(shared)                 # or: await tracked.run_async(shared)
    tracked.last_run.run_id, tracked.last_run.status, tracked.last_run.summary
"""

from __future__ import annotations

import warnings
from collections.abc import MutableMapping
from typing import Any

from pflow_metrics.instrumentation import llm_capture
from pflow_metrics.instrumentation.session import RunResult, RunSession
from pflow_metrics.instrumentation.wrapper import MetricsWarning


class TrackedFlow:
    """An instrumented stand-in for a flow: each run is one run in the ledger. The caller's
    flow is left as it was; the instrumented copy is built per run."""

    def __init__(self, flow, *, workflow: str, ledger: bool | str = True, trace: bool = False,
                 budget_usd: float | None = None, tags: dict[str, str] | None = None,
                 store_prompts: bool = False):
        self.flow = flow
        self.options = {"ledger": ledger, "trace": trace, "budget_usd": budget_usd, "tags": tags,
                        "store_prompts": store_prompts}
        self.workflow = workflow
        self.last_run: RunResult | None = None

    def _session(self) -> RunSession:
        return RunSession(self.workflow, **self.options)

    def run(self, shared: MutableMapping) -> Any:
        """Run the flow; a failure is recorded as `failed` (or `budget_exceeded`) and re-raised."""
        session = self._session()
        try:
            action = session.run_flow(self.flow, shared)
        except BaseException as exc:
            self.last_run = session.finish(error=exc)
            raise
        self.last_run = session.finish()
        return action

    async def run_async(self, shared: MutableMapping) -> Any:
        session = self._session()
        try:
            action = await session.run_flow_async(self.flow, shared)
        except BaseException as exc:
            self.last_run = session.finish(error=exc)
            raise
        self.last_run = session.finish()
        return action


def instrument(flow, *, workflow: str, ledger: bool | str = True, trace: bool = False,
               budget_usd: float | None = None, tags: dict[str, str] | None = None,
               store_prompts: bool = False) -> TrackedFlow:
    """Wrap every node of `flow` (nested flows too) for metrics, the ledger and tracing.

    `ledger`: True for the configured ledger, False for none, or a URL / SQLite path.
    """
    return TrackedFlow(flow, workflow=workflow, ledger=ledger, trace=trace, budget_usd=budget_usd,
                       tags=tags, store_prompts=store_prompts)


def record_llm_call(shared: MutableMapping, *, model: str, input_tokens: int = 0, output_tokens: int = 0,
                    **more: Any) -> None:
    """Report an LLM call made through another SDK from inside an instrumented node.

    `more` may hold cache_read_tokens, cache_creation_tokens, thinking_tokens, provider,
    resolved_model, cost_usd (a provider-reported cost wins over computed cost), duration_ms.
    """
    sink = llm_capture.current_sink.get()
    entry = {"model": model, "input_tokens": input_tokens, "output_tokens": output_tokens, **more}
    if sink is None:
        warnings.warn("pflow-metrics: record_llm_call outside an instrumented node was not counted",
                      MetricsWarning, stacklevel=2)
        return
    sink.append(entry)
