"""RunSession: one run in the ledger, with one MetricsCollector and (optionally) one trace.

The planner and the workflow of a run go through the same session (`run_flow(..., phase=...)`),
so both phases land in one summary and one ledger row. The ledger is written through RunWriter:
the run row at the start, the journal after every node, the finished record at the end.
Nothing here raises into the workflow except BudgetExceeded (the point of a budget) and the
workflow's own exceptions, re-raised after they were recorded.

Nothing secret leaves a run: every text of the record is redacted (pflow_metrics.redaction)
where the session takes it in, before anything writes it: the run's own fields when the run
starts, each node and call as it finishes (before the journal and the trace see it), the run's
error at the end (before the flush or the spool). Warnings are redacted too.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pflow_metrics.instrumentation import llm_capture
from pflow_metrics.instrumentation.collector import MetricsCollector
from pflow_metrics.instrumentation.current import LLM_CALLS_KEY, PLANNER_FLAG, current_session
from pflow_metrics.instrumentation.errors import BudgetExceeded, MetricsWarning
from pflow_metrics.instrumentation.usage import RejectedUsage, call_from_usage
from pflow_metrics.money import usd
from pflow_metrics.record import PHASES, LLMCallRecord, NodeRecord, RunRecord, new_run_record, utcnow
from pflow_metrics.redaction import redact_call, redact_node, redact_record, redact_text


@dataclass
class RunResult:
    run_id: str
    status: str
    summary: dict[str, Any]
    record: RunRecord
    trace_path: Path | None = None
    error: str | None = None
    ledger_warning: str | None = None
    recorded: bool = True  # False with ledger=False: the run id names nothing in any ledger


class RunSession:
    def __init__(
        self,
        workflow: str,
        *,
        ledger: bool | str = True,
        trace: bool = False,
        budget_usd: float | None = None,
        tags: dict | None = None,
        store_prompts: bool = False,
        otel: bool | None = None,
    ):
        self.record = redact_record(new_run_record(workflow, tags={str(k): str(v) for k, v in (tags or {}).items()}))
        self.run_id = self.record.run_id
        self.collector = MetricsCollector(self.record)
        self.budget_usd = None if budget_usd is None else usd(budget_usd)  # compared exactly
        self.store_prompts = store_prompts
        self.budget_error: BudgetExceeded | None = None
        self.result: RunResult | None = None
        self.writer = self._begin_ledger(ledger)
        self.trace = self._open_trace(workflow, trace)
        self.otel = self._wants_otel(otel)

    def _begin_ledger(self, ledger: bool | str):
        if ledger is False or ledger is None:
            return None
        from pflow_metrics.ledger.writer import RunWriter

        writer = RunWriter(None if ledger is True else str(ledger), self.record)
        try:
            writer.begin()
        except Exception as exc:  # RunWriter spools at finish; nothing may stop the run
            _warn(f"ledger not opened: {exc}")
        return writer

    def _open_trace(self, workflow: str, trace: bool):
        if not trace:
            return None
        from pflow_metrics.instrumentation.trace import WorkflowTraceCollector

        try:
            return WorkflowTraceCollector(workflow, self.run_id)
        except Exception as exc:
            _warn(f"trace not written: {exc}")
            return None

    @staticmethod
    def _wants_otel(otel: bool | None) -> bool:
        """`otel`, or (None) what $PFLOW_METRICS_OTEL says; a bad value is a warning here."""
        if otel is not None:
            return bool(otel)
        from pflow_metrics.config import otel_enabled

        try:
            return otel_enabled()
        except Exception as exc:
            _warn(f"OpenTelemetry export off: {exc}")
            return False

    # -- running flows -------------------------------------------------------------------

    def run_flow(self, flow: Any, shared: MutableMapping, phase: str = "workflow") -> Any:
        """Run an instrumented copy of `flow` on `shared`; returns the flow's action."""
        from pflow_metrics.instrumentation.wrapper import instrument_graph

        return self.run_instrumented(instrument_graph(flow, phase), shared, phase)

    def run_instrumented(self, graph: Any, shared: MutableMapping, phase: str) -> Any:
        """Run `graph`, built by `instrument_graph(flow, phase)` and reusable across runs, as
        part of this session."""
        flow, token, started = self._enter(graph, shared, phase)
        try:
            return flow._run(shared)
        finally:
            self._leave(token, phase, started)

    async def run_instrumented_async(self, graph: Any, shared: MutableMapping, phase: str) -> Any:
        flow, token, started = self._enter(graph, shared, phase)
        try:
            return await flow._run_async(shared)
        finally:
            self._leave(token, phase, started)

    def _enter(self, graph: Any, shared: MutableMapping, phase: str) -> tuple[Any, Any, float]:
        if phase not in PHASES:
            raise ValueError(f"phase must be one of {', '.join(PHASES)}, got {phase!r}")
        if phase == "planner":
            shared[PLANNER_FLAG] = True
        if not isinstance(shared.get(LLM_CALLS_KEY), list):
            shared[LLM_CALLS_KEY] = []
        self._guarded("llm capture", llm_capture.watch)
        # A copy per run, as PocketFlow copies every node it runs: the graph may be running
        # elsewhere at the same time.
        return copy.copy(graph), current_session.set(self), self.collector.elapsed_ms()

    def _leave(self, token: Any, phase: str, started: float) -> None:
        current_session.reset(token)
        self.collector.add_phase_time(phase, self.collector.elapsed_ms() - started)

    # -- called by the wrappers ----------------------------------------------------------

    def check_budget(self) -> None:
        if self.budget_error is not None:
            raise self.budget_error
        if self.budget_usd is not None and self.collector.priced_cost > self.budget_usd:
            self.budget_error = BudgetExceeded(self.collector.priced_cost, self.budget_usd)
            raise self.budget_error

    def node_started(self, observation: Any, shared: MutableMapping) -> None:
        if self.trace is not None:
            self._to_trace(self.trace.node_started, id(observation), shared)

    def node_finished(self, observation: Any, node: NodeRecord, entries: list[Any],
                      shared: MutableMapping, error: BaseException | None) -> None:
        calls, kept_entries = [], []
        for entry in entries:
            call = self._call(entry, node)
            if call is not None:
                calls.append(call)
                kept_entries.append(entry)
        # The one point where a node's texts enter the record: redacted before the collector,
        # the journal, `__llm_calls__` and the trace see them.
        redact_node(node)
        for call in calls:
            redact_call(call)
        self.collector.record_node(node)  # into self.record
        for call in calls:
            self.collector.record_call(call)
        _append_calls(shared, calls)
        if self.writer is not None:
            self._guarded("ledger", self.writer.progress)
        if self.trace is not None:
            from pflow_metrics.delegation import find_in_chain  # not at the top: it loads pocketflow

            # What the runtime's template wrapper resolved for this run, if it sits in the chain.
            resolutions = find_in_chain(observation.node, "template_resolutions", dict)
            self._to_trace(self.trace.node_finished, id(observation), node, calls, shared, error,
                           resolutions, kept_entries)

    def _call(self, entry: Any, node: NodeRecord) -> LLMCallRecord | None:
        from pflow_metrics.pricing import price_call

        try:
            call = call_from_usage(entry, node.node_id, node.phase)
        except RejectedUsage as exc:
            self.collector.rejected_usage += 1
            _warn(f"node {node.node_id}: usage entry rejected: {exc}")
            return None
        if call.duration_ms is None:
            call.duration_ms = node.duration_ms
        started_at = entry.get("started_at")
        call.started_at = started_at if hasattr(started_at, "tzinfo") and started_at.tzinfo else utcnow()
        if self.store_prompts:
            call.prompt, call.response = _text(entry.get("prompt")), _text(entry.get("response"))
        try:
            price_call(call)
        except Exception as exc:  # a broken pricing.toml leaves the call unpriced, the run goes on
            _warn(f"call of {call.model} not priced: {exc}")
        return call

    def _guarded(self, what: str, action: Callable[..., Any], *args: Any) -> bool:
        """Run one of the metrics' own side tasks (llm capture, the ledger journal, the trace):
        a failure is a warning, never the workflow's problem. Returns whether it worked."""
        try:
            action(*args)
        except Exception as exc:
            _warn(f"{what} problem: {exc}")
            return False
        return True

    def _to_trace(self, action: Callable[..., Any], *args: Any) -> None:
        """Write to the trace, guarded; the first failure switches the trace off for the run."""
        if not self._guarded("trace", action, *args):
            self.trace = None

    # -- the end -------------------------------------------------------------------------

    def finish(self, status: str | None = None, error: BaseException | str | None = None) -> RunResult:
        """End the run once (later calls return the same result) and record it."""
        if self.result is not None:
            return self.result
        if isinstance(error, BudgetExceeded) and self.budget_error is None:
            self.budget_error = error
        status = status or ("budget_exceeded" if self.budget_error is not None
                            else "failed" if error is not None else "success")
        record = self.record
        record.status = status
        record.ended_at = utcnow()
        record.duration_ms = self.collector.elapsed_ms()
        record.planner_duration_ms = self.collector.phase_ms["planner"] or None
        record.workflow_duration_ms = self.collector.phase_ms["workflow"]
        record.error = _error_text(error if error is not None else self.budget_error)
        redact_record(record)  # before the flush, the spool and the trace's summary
        summary = self.collector.get_summary()
        ledger_warning = None
        if self.writer is not None:
            try:
                ledger_warning = self.writer.finish()
            except Exception as exc:
                ledger_warning = redact_text(f"pflow-metrics: run {self.run_id} not recorded: {exc}")
                _warn(ledger_warning)
        trace_path = None
        if self.trace is not None:
            trace_path = self.trace.path
            self._to_trace(self.trace.finish, {"status": status, "error": record.error,
                                               "run_id": self.run_id, **summary})
        if self.otel:  # after the ledger: a collector that is down costs the run nothing
            self._guarded("OpenTelemetry export", _export_otel, record)
        self.result = RunResult(run_id=self.run_id, status=status, summary=summary, record=record,
                                trace_path=trace_path, error=record.error, ledger_warning=ledger_warning,
                                recorded=self.writer is not None)
        return self.result

    def __enter__(self) -> RunSession:
        return self

    def __exit__(self, kind, error, traceback) -> bool:
        self.finish(error=error)
        return False  # the workflow's own exception (KeyboardInterrupt too) goes on up


def _append_calls(shared: MutableMapping, calls: list[LLMCallRecord]) -> None:
    """The spec's accumulation list: every call of the run, with node_id and is_planner."""
    if not calls:
        return
    try:
        target = shared.get(LLM_CALLS_KEY)
        if not isinstance(target, list):
            target = shared[LLM_CALLS_KEY] = []
        for call in calls:
            entry = call.to_dict()
            entry.pop("prompt", None)
            entry.pop("response", None)
            entry["is_planner"] = call.phase == "planner"
            target.append(entry)
    except Exception as exc:
        _warn(f"{LLM_CALLS_KEY} not updated: {exc}")


def _export_otel(record: RunRecord) -> None:
    try:
        from pflow_metrics.instrumentation.otel import export_run
    except ImportError as exc:
        raise RuntimeError(f"needs the otel extra (pip install 'pflow-metrics[otel]'): {exc}") from None
    export_run(record)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _error_text(error: BaseException | str | None) -> str | None:
    if error is None:
        return None
    if isinstance(error, str):
        return error
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


def _warn(message: str) -> None:
    warnings.warn(f"pflow-metrics: {redact_text(message)}", MetricsWarning, stacklevel=3)
