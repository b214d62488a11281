"""Run records for tests, built the way the instrumentation builds them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pflow_metrics.ledger.rows import call_rows, node_rows, run_row
from pflow_metrics.record import LLMCallRecord, NodeRecord, RunRecord, new_run_record


def make_run(
    workflow: str = "nightly-digest",
    *,
    started_at: datetime | None = None,
    status: str = "success",
    calls: list[dict] | None = None,
    nodes: int = 2,
    tags: dict[str, str] | None = None,
    duration_ms: float = 120.0,
) -> RunRecord:
    """A finished run with `nodes` node executions and one LLM call per entry of `calls`."""
    record = new_run_record(workflow, tags=tags)
    record.started_at = started_at or datetime.now(UTC)
    record.ended_at = record.started_at + timedelta(milliseconds=duration_ms)
    record.duration_ms = duration_ms
    record.workflow_duration_ms = duration_ms
    record.status = status
    record.nodes = [
        NodeRecord(node_id=f"step-{i}", node_type="EchoNode", duration_ms=duration_ms / max(nodes, 1),
                   start_offset_ms=i * 1.0, action="default")
        for i in range(nodes)
    ]
    record.llm_calls = [
        LLMCallRecord(
            node_id=call.get("node_id", "step-0"),
            model=call.get("model", "gpt-4o"),
            provider=call.get("provider", "openai"),
            phase=call.get("phase", "workflow"),
            input_tokens=call.get("input_tokens", 100),
            output_tokens=call.get("output_tokens", 50),
            cache_read_tokens=call.get("cache_read_tokens", 0),
            cache_creation_tokens=call.get("cache_creation_tokens", 0),
            thinking_tokens=call.get("thinking_tokens", 0),
            cost_usd=call.get("cost_usd", 0.01),
            duration_ms=call.get("duration_ms", 10.0),
            started_at=record.started_at,
        )
        for call in (calls if calls is not None else [{}])
    ]
    return record


def rows_before_exact_money(record: RunRecord) -> dict[str, list[dict]]:
    """The record's rows as revisions 0001 and 0002 stored them: costs as float dollars in
    `cost_usd`, and a run's cost NULL when any call was unpriced."""
    run = run_row(record)
    run["cost_usd"] = None if record.unpriced_calls else float(record.priced_cost_usd)
    calls = call_rows(record)
    for row in calls:
        nanos = row.pop("cost_nanousd")
        row["cost_usd"] = None if nanos is None else nanos / 1e9
    return {"runs": [run], "node_executions": node_rows(record), "llm_calls": calls}
