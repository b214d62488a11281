"""MetricsCollector: node timings per phase, LLM calls, tokens and cost for one run."""

from __future__ import annotations

import time
from typing import Any

from pflow_metrics.money import ZERO
from pflow_metrics.record import PHASES, LLMCallRecord, NodeRecord, RunRecord, Tokens


class MetricsCollector:
    """Summarizes one run's RunRecord as it fills. Shared by the planner and the workflow of the
    run, so both phases land in one summary.

    The record's `nodes` and `llm_calls` are the one list of what ran (appended through
    `record_node` and `record_call`); the collector adds what the record does not hold while
    the run goes on: the clock, each phase's time, rejected usage entries, and the priced cost
    so far as a running sum (the budget is checked before every node)."""

    def __init__(self, record: RunRecord) -> None:
        self.record = record
        self.started = time.perf_counter()
        self.phase_ms = dict.fromkeys(PHASES, 0.0)
        self.rejected_usage = 0
        self.priced_cost = ZERO  # exact Decimal USD
        self.phases_run: set[str] = set()

    def elapsed_ms(self) -> float:
        return (time.perf_counter() - self.started) * 1000

    def offset_ms(self, moment: float) -> float:
        """A `time.perf_counter()` reading as milliseconds since the run started."""
        return (moment - self.started) * 1000

    def record_node(self, node: NodeRecord) -> None:
        self.record.nodes.append(node)

    def record_call(self, call: LLMCallRecord) -> None:
        self.record.llm_calls.append(call)
        if call.cost_usd is not None:
            self.priced_cost += call.cost_usd

    def add_phase_time(self, phase: str, ms: float) -> None:
        self.phase_ms[phase] += ms
        self.phases_run.add(phase)

    def get_summary(self) -> dict[str, Any]:
        """pflow's summary, with our extras beside its keys:

        {"duration_ms", "duration_planner_ms" (None without a planner), "total_cost_usd",
         "num_nodes", "metrics": {"planner" and "workflow" (each only when that phase ran),
         "total"}}. Money is an exact Decimal, None when a call could not be priced (never
        guessed: `unpriced_models` and `partial_cost_usd` say what is known). Durations are
        rounded to 0.01 ms as in pflow. `nodes_executed` and `num_nodes` count distinct nodes
        (pflow's meaning); `node_runs` counts executions (a loop runs a node more than once)."""
        calls, nodes = self.record.llm_calls, self.record.nodes
        metrics: dict[str, Any] = {
            phase: self._part(phase, [n for n in nodes if n.phase == phase], [c for c in calls if c.phase == phase])
            for phase in PHASES if phase in self.phases_run or any(n.phase == phase for n in nodes)
        }
        total = self._part(None, nodes, calls)
        duration = _ms(self.elapsed_ms())
        total["duration_ms"] = duration
        total["unpriced_models"] = sorted({c.model for c in calls if c.cost_usd is None})
        total["partial_cost_usd"] = sum((c.cost_usd for c in calls if c.cost_usd is not None), ZERO)
        total["rejected_usage_entries"] = self.rejected_usage
        metrics["total"] = total
        return {
            "duration_ms": duration,
            "duration_planner_ms": metrics["planner"]["duration_ms"] if "planner" in metrics else None,
            "total_cost_usd": total["cost_usd"],
            "num_nodes": sum(metrics[phase]["nodes_executed"] for phase in PHASES if phase in metrics),
            "metrics": metrics,
        }

    def _part(self, phase: str | None, nodes: list[NodeRecord], calls: list[LLMCallRecord]) -> dict[str, Any]:
        """The figures of one phase (None: the whole run) from its nodes and calls."""
        tokens = Tokens()
        for call in calls:
            tokens.add(call.tokens)
        unpriced = any(call.cost_usd is None for call in calls)
        timings: dict[str, float] = {}
        for node in nodes:
            timings[node.node_id] = timings.get(node.node_id, 0.0) + node.duration_ms
        tokens_input = tokens.input + tokens.cache_read + tokens.cache_creation  # all input sent
        part = {
            # pflow's keys
            # A phase that ran as a flow of its own has its time; nodes marked planner by
            # `__is_planner__` inside the workflow have only their own.
            "duration_ms": None if phase is None else _ms(
                self.phase_ms[phase] if phase in self.phases_run else sum(n.duration_ms for n in nodes)),
            "nodes_executed": len({(n.phase, n.node_id) for n in nodes}),
            "cost_usd": None if unpriced else sum((c.cost_usd for c in calls), ZERO),
            "tokens_input": tokens_input,
            "tokens_output": tokens.output,
            "tokens_total": tokens_input + tokens.output,
            "models_used": sorted({c.model for c in calls}),
            "node_timings": timings,
            # ours
            "node_runs": len(nodes),
            "llm_calls": len(calls),
            "input_tokens": tokens.input,
            "output_tokens": tokens.output,
            "total_tokens": tokens_input + tokens.output,
        }
        if tokens.cache_read or tokens.cache_creation:
            part["cache_read_tokens"] = tokens.cache_read
            part["cache_creation_tokens"] = tokens.cache_creation
        if tokens.thinking:
            part["thinking_tokens"] = tokens.thinking
        return part


def _ms(value: float) -> float:
    return round(value, 2)
