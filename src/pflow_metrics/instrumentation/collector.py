"""MetricsCollector: node timings per phase, LLM calls, tokens and cost for one run."""

from __future__ import annotations

import time
from typing import Any

from pflow_metrics.money import ZERO
from pflow_metrics.record import PHASES, LLMCallRecord, NodeRecord, Tokens


class MetricsCollector:
    """Shared by the planner and the workflow of one run, so both phases land in one summary."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.nodes: list[NodeRecord] = []
        self.calls: list[LLMCallRecord] = []
        self.phase_ms = dict.fromkeys(PHASES, 0.0)
        self.rejected_usage = 0
        self.priced_cost = ZERO  # exact Decimal USD

    def elapsed_ms(self) -> float:
        return (time.perf_counter() - self.started) * 1000

    def offset_ms(self, moment: float) -> float:
        """A `time.perf_counter()` reading as milliseconds since the run started."""
        return (moment - self.started) * 1000

    def record_node(self, node: NodeRecord) -> None:
        self.nodes.append(node)

    def record_call(self, call: LLMCallRecord) -> None:
        self.calls.append(call)
        if call.cost_usd is not None:
            self.priced_cost += call.cost_usd

    def add_phase_time(self, phase: str, ms: float) -> None:
        self.phase_ms[phase] += ms

    def get_summary(self, llm_calls: list[LLMCallRecord] | None = None) -> dict[str, Any]:
        """{"duration_ms", "metrics": {"planner", "workflow", "total"}} as in the spec."""
        calls = self.calls if llm_calls is None else llm_calls
        parts = {phase: self._part(phase, [c for c in calls if c.phase == phase]) for phase in PHASES}
        total = self._part(None, calls)
        total["duration_ms"] = self.elapsed_ms()
        unpriced = sorted({c.model for c in calls if c.cost_usd is None})
        total["unpriced_models"] = unpriced
        total["partial_cost_usd"] = sum((c.cost_usd for c in calls if c.cost_usd is not None), ZERO)
        total["rejected_usage_entries"] = self.rejected_usage
        return {"duration_ms": total["duration_ms"], "metrics": {**parts, "total": total}}

    def _part(self, phase: str | None, calls: list[LLMCallRecord]) -> dict[str, Any]:
        nodes = [n for n in self.nodes if phase is None or n.phase == phase]
        tokens = Tokens()
        for call in calls:
            tokens.add(call.tokens)
        unpriced = any(call.cost_usd is None for call in calls)
        timings: dict[str, float] = {}
        for node in nodes:
            timings[node.node_id] = timings.get(node.node_id, 0.0) + node.duration_ms
        part = {
            "duration_ms": self.phase_ms[phase] if phase else None,
            "nodes_executed": len(nodes),
            "cost_usd": None if unpriced else sum((c.cost_usd for c in calls), ZERO),
            "llm_calls": len(calls),
            "input_tokens": tokens.input,
            "output_tokens": tokens.output,
            "total_tokens": tokens.input + tokens.cache_read + tokens.cache_creation + tokens.output,
            "models_used": sorted({c.model for c in calls}),
            "node_timings": timings,
        }
        if tokens.cache_read or tokens.cache_creation:
            part["cache_read_tokens"] = tokens.cache_read
            part["cache_creation_tokens"] = tokens.cache_creation
        if tokens.thinking:
            part["thinking_tokens"] = tokens.thinking
        return part
