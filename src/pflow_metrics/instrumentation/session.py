"""RunSession: one run in the ledger, with one MetricsCollector and an optional trace.

The planner and the workflow of `pflow-metrics run --plan` share one session, so the run's
metrics have a planner part and a workflow part. `instrument()` opens one session per run.

    with RunSession("nightly-digest") as session:
        session.run_flow(flow, shared)
    session.result.run_id
"""

from __future__ import annotations

import time
import warnings
from collections.abc import MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pflow_metrics.instrumentation.collector import MetricsCollector
from pflow_metrics.instrumentation.wrapper import BudgetExceeded, MetricsWarning, instrument_graph
from pflow_metrics.record import NodeRecord, RunRecord, new_run_record, utcnow


@dataclass
class RunResult:
    run_id: str
    status: str
    summary: dict[str, Any]
    record: RunRecord
    trace_path: Path | None = None
    error: str | None = None
    ledger_warning: str | None = None


class RunSession:
    def __init__(self, workflow: str, *, ledger: bool | str = True, trace: bool = False,
                 budget_usd: float | None = None, tags: dict[str, str] | None = None,
                 store_prompts: bool = False):
        self.record = new_run_record(workflow, tags)
        self.run_id = self.record.run_id
        self.collector = MetricsCollector()
        self.budget_usd = budget_usd
        self.store_prompts = store_prompts
        self.result: RunResult | None = None
        self._budget_stop: BudgetExceeded | None = None
        self.trace = self._quietly(lambda: _trace(workflow, self.run_id)) if trace else None
        self.writer = None
        if ledger is not False:
            from pflow_metrics.ledger.writer import RunWriter

            self.writer = RunWriter(None if ledger is True else ledger, self.record)
            self.writer.begin()

    # -- running ---------------------------------------------------------------------------

    def run_flow(self, flow, shared: MutableMapping, phase: str = "workflow") -> Any:
        """Run an instrumented copy of `flow` on `shared` as part of this run."""
        graph = self._prepare(flow, shared, phase)
        started = time.perf_counter()
        try:
            return graph._run(shared)
        finally:
            self.collector.add_phase_time(phase, (time.perf_counter() - started) * 1000)

    async def run_flow_async(self, flow, shared: MutableMapping, phase: str = "workflow") -> Any:
        graph = self._prepare(flow, shared, phase)
        started = time.perf_counter()
        try:
            return await graph._run_async(shared)
        finally:
            self.collector.add_phase_time(phase, (time.perf_counter() - started) * 1000)

    def _prepare(self, flow, shared: MutableMapping, phase: str):
        shared.setdefault("__llm_calls__", [])
        if phase == "planner":
            shared["__is_planner__"] = True
        return instrument_graph(flow, self, phase)

    # -- called by the wrappers ------------------------------------------------------------

    def check_budget(self) -> None:
        if self.budget_usd is not None and self.collector.priced_cost > self.budget_usd:
            self._budget_stop = BudgetExceeded(
                f"budget exceeded: ${self.collector.priced_cost:.4f} spent of a ${self.budget_usd:.4f} limit"
            )
            raise self._budget_stop

    def node_started(self, wrapper, shared: MutableMapping) -> None:
        if self.trace is not None:
            self._quietly(lambda: self.trace.node_started(shared))

    def node_finished(self, wrapper, node: NodeRecord, calls: list, shared: MutableMapping,
                      error: BaseException | None, template_resolutions: Any = None) -> None:
        from pflow_metrics.pricing import price_call

        is_planner = wrapper.phase == "planner"
        for call in calls:
            self._quietly(lambda call=call: price_call(call, call.started_at or utcnow()))
            self.collector.record_call(call)
            shared.setdefault("__llm_calls__", []).append(
                {**call.to_dict(), "node_id": call.node_id, "is_planner": is_planner}
            )
        self.collector.record_node(node)
        if self.trace is not None:
            self._quietly(lambda: self.trace.node_finished(node, calls, shared, error, template_resolutions))
        if self.writer is not None:
            self._sync_record()
            self.writer.progress()

    def reject_usage(self, node_id: str, problem: Exception) -> None:
        self.collector.rejected_usage += 1
        warnings.warn(f"pflow-metrics: usage from node {node_id} rejected: {problem}", MetricsWarning, stacklevel=3)

    # -- finishing -------------------------------------------------------------------------

    def finish(self, status: str | None = None, error: BaseException | str | None = None) -> RunResult:
        """End the run: record it in the ledger, close the trace. Safe to call once."""
        if self.result is not None:
            return self.result
        if status is None:
            if error is None:
                status = "success"
            elif isinstance(error, BudgetExceeded) or error is self._budget_stop:
                status = "budget_exceeded"
            else:
                status = "failed"
        message = None
        if error is not None:
            message = error if isinstance(error, str) else (f"{type(error).__name__}: {error}".rstrip(": ")
                                                            if str(error) else type(error).__name__)
        record = self.record
        record.status = status
        record.error = message
        record.ended_at = utcnow()
        self._sync_record()
        summary = self.collector.get_summary()
        record.duration_ms = summary["duration_ms"]
        record.planner_duration_ms = self.collector.phase_ms["planner"] or None
        record.workflow_duration_ms = self.collector.phase_ms["workflow"]
        warning = self.writer.finish() if self.writer is not None else None
        if self.trace is not None:
            self._quietly(lambda: self.trace.finish(summary, status, message))
        self.result = RunResult(
            run_id=record.run_id, status=status, summary=summary, record=record,
            trace_path=self.trace.path if self.trace is not None else None, error=message,
            ledger_warning=warning,
        )
        return self.result

    def _sync_record(self) -> None:
        """The record the ledger sees: the collector's nodes and calls (prompts only if asked)."""
        self.record.nodes = list(self.collector.nodes)
        if self.store_prompts:
            self.record.llm_calls = list(self.collector.calls)
        else:
            self.record.llm_calls = [_without_text(call) for call in self.collector.calls]
        self.record.compute_totals()

    def __enter__(self) -> RunSession:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.finish(error=exc)

    @staticmethod
    def _quietly(action):
        """Run a metrics side task; a failure is a warning, never an error in the workflow."""
        try:
            return action()
        except Exception as exc:
            warnings.warn(f"pflow-metrics: {exc}", MetricsWarning, stacklevel=3)
            return None


def _trace(workflow: str, run_id: str):
    from pflow_metrics.instrumentation.trace import WorkflowTraceCollector

    return WorkflowTraceCollector(workflow, run_id)


def _without_text(call):
    if call.prompt is None and call.response is None:
        return call
    from dataclasses import replace

    return replace(call, prompt=None, response=None)
