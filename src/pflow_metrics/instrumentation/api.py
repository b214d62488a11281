"""The library API: `instrument(flow, workflow=...)` and `record_llm_call(shared, ...)`."""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

from pflow_metrics.instrumentation import llm_capture
from pflow_metrics.instrumentation.current import LLM_CALLS_KEY
from pflow_metrics.instrumentation.session import RunResult, RunSession


class TrackedFlow:
    """An instrumented copy of a flow: every run is one RunSession (one run in the ledger).
    The copy is built here, once, not at every run: the caller's flow is never modified, and
    nodes or edges added to it afterwards are not seen (instrument it again)."""

    def __init__(self, flow: Any, *, workflow: str, ledger: bool | str = True, trace: bool = False,
                 budget_usd: float | None = None, tags: dict | None = None, store_prompts: bool = False,
                 otel: bool | None = None):
        from pflow_metrics.instrumentation.wrapper import instrument_graph

        self.flow = flow
        self.graph = instrument_graph(flow, "workflow")
        self.options = {"ledger": ledger, "trace": trace, "budget_usd": budget_usd, "tags": tags,
                        "store_prompts": store_prompts, "otel": otel}
        self.workflow = workflow
        self.last_run: RunResult | None = None

    def run(self, shared: MutableMapping) -> Any:
        session = RunSession(self.workflow, **self.options)
        try:
            return session.run_instrumented(self.graph, shared, "workflow")
        except BaseException as exc:  # KeyboardInterrupt too: recorded as failed, then re-raised
            session.finish(error=exc)
            raise
        finally:
            self.last_run = session.finish()

    async def run_async(self, shared: MutableMapping) -> Any:
        session = RunSession(self.workflow, **self.options)
        try:
            return await session.run_instrumented_async(self.graph, shared, "workflow")
        except BaseException as exc:
            session.finish(error=exc)
            raise
        finally:
            self.last_run = session.finish()


def instrument(flow: Any, *, workflow: str, ledger: bool | str = True, trace: bool = False,
               budget_usd: float | None = None, tags: dict | None = None,
               store_prompts: bool = False, otel: bool | None = None) -> TrackedFlow:
    """Track `flow`: each `run(shared)` / `await run_async(shared)` is recorded as one run.
    `otel`: also send each run to OpenTelemetry as it finishes (None: as $PFLOW_METRICS_OTEL says)."""
    return TrackedFlow(flow, workflow=workflow, ledger=ledger, trace=trace, budget_usd=budget_usd,
                       tags=tags, store_prompts=store_prompts, otel=otel)


def record_llm_call(shared: MutableMapping, *, model: str, input_tokens: int = 0, output_tokens: int = 0,
                    **more: Any) -> None:
    """Report an LLM call made through another SDK. Inside an instrumented node it counts for
    that node; elsewhere it waits in `shared["__llm_calls__"]` for the next node that ends.
    Extra keys: cache_read_tokens, cache_creation_tokens, thinking_tokens, resolved_model,
    provider, cost_usd (a provider-reported cost wins over pricing), duration_ms, prompt, response."""
    entry = {"model": model, "input_tokens": input_tokens, "output_tokens": output_tokens, **more}
    sink = llm_capture.current_sink.get()
    if sink is not None:
        sink.append(entry)
        return
    calls = shared.get(LLM_CALLS_KEY)
    if not isinstance(calls, list):
        calls = shared[LLM_CALLS_KEY] = []
    calls.append(entry)
