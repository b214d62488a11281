"""Run records <-> ledger rows: the one mapping between the record's fields and the columns
of runs, node_executions and llm_calls (ledger/models.py). The store writes with it and reads
back with it; tests and benchmarks that write rows of a given revision use it too.

Money goes in as whole nano-dollars (money.py); a run's totals are derived from its calls.
"""

from __future__ import annotations

from typing import Any

from pflow_metrics.money import from_nanos, to_nanos
from pflow_metrics.record import RATE_KEYS, LLMCallRecord, NodeRecord, RunRecord


def _storable(row: dict[str, Any]) -> dict[str, Any]:
    """The row with text neither engine can hold made storable, the same way on both: a NUL
    (PostgreSQL refuses it) and a lone surrogate (not UTF-8) become U+FFFD. A NUL in a shell
    node's stderr must not lose the run."""
    for key, value in row.items():
        if isinstance(value, str):
            row[key] = _storable_text(value)
        elif isinstance(value, dict):
            row[key] = {_storable_text(k): _storable_text(v) for k, v in value.items()}
    return row


def _storable_text(text: str) -> str:
    if text.isascii():
        if "\x00" in text:
            return text.replace("\x00", "\ufffd")
        return text
    try:
        text.encode()
    except UnicodeEncodeError:
        text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text.replace("\x00", "\ufffd")


def run_row(record: RunRecord) -> dict[str, Any]:
    ci = record.ci or {}
    tokens = record.tokens
    return _storable({
        "id": record.run_id,
        "workflow": record.workflow,
        "status": record.status,
        "started_at": record.started_at,
        "ended_at": record.ended_at,
        "heartbeat_at": record.ended_at or record.started_at,
        "duration_ms": record.duration_ms,
        "planner_duration_ms": record.planner_duration_ms,
        "workflow_duration_ms": record.workflow_duration_ms,
        "input_tokens": tokens.input,
        "output_tokens": tokens.output,
        "cache_creation_tokens": tokens.cache_creation,
        "cache_read_tokens": tokens.cache_read,
        "thinking_tokens": tokens.thinking,
        "cost_nanousd": to_nanos(record.priced_cost_usd),
        "unpriced_calls": record.unpriced_calls,
        "error": record.error,
        "host": record.host,
        "pid": record.pid,
        "ci_provider": ci.get("provider"),
        "ci_job_id": ci.get("job_id"),
        "ci_git_sha": ci.get("git_sha"),
        "ci_git_branch": ci.get("git_branch"),
        "tags": record.tags,
        "tool_version": record.tool_version,
    })


def node_rows(record: RunRecord, start: int = 0) -> list[dict[str, Any]]:
    return [
        _storable({
            "run_id": record.run_id,
            "seq": seq,
            "node_id": node.node_id,
            "node_type": node.node_type,
            "phase": node.phase,
            "start_offset_ms": node.start_offset_ms,
            "duration_ms": node.duration_ms,
            "status": node.status,
            "attempts": node.attempts,
            "action": node.action,
            "error": node.error,
            "items": node.items,
        })
        for seq, node in enumerate(record.nodes[start:], start)
    ]


def call_rows(record: RunRecord, start: int = 0) -> list[dict[str, Any]]:
    rows = []
    for seq, call in enumerate(record.llm_calls[start:], start):
        rates = call.rates or {}
        rows.append(_storable(
            {
                "run_id": record.run_id,
                "seq": seq,
                "node_id": call.node_id,
                "phase": call.phase,
                "model": call.model,
                "resolved_model": call.resolved_model,
                "provider": call.provider,
                "input_tokens": call.input_tokens,
                "output_tokens": call.output_tokens,
                "cache_creation_tokens": call.cache_creation_tokens,
                "cache_read_tokens": call.cache_read_tokens,
                "thinking_tokens": call.thinking_tokens,
                "cost_nanousd": to_nanos(call.cost_usd),
                "input_rate": rates.get("input"),
                "output_rate": rates.get("output"),
                "cache_read_rate": rates.get("cache_read"),
                "cache_creation_rate": rates.get("cache_creation"),
                "price_source": call.price_source,
                "duration_ms": call.duration_ms,
                "started_at": call.started_at,
                "prompt": call.prompt,
                "response": call.response,
            }
        ))
    return rows


def record_from_rows(run, nodes, calls) -> RunRecord:
    ci = {
        key: value
        for key, value in (
            ("provider", run.ci_provider),
            ("job_id", run.ci_job_id),
            ("git_sha", run.ci_git_sha),
            ("git_branch", run.ci_git_branch),
        )
        if value
    }
    return RunRecord(
        run_id=run.id,
        workflow=run.workflow,
        status=run.status,
        started_at=run.started_at,
        ended_at=run.ended_at,
        duration_ms=run.duration_ms,
        planner_duration_ms=run.planner_duration_ms,
        workflow_duration_ms=run.workflow_duration_ms,
        error=run.error,
        host=run.host,
        pid=run.pid,
        ci=ci or None,
        tags=run.tags or {},
        tool_version=run.tool_version,
        nodes=[
            NodeRecord(
                node_id=row.node_id, node_type=row.node_type, phase=row.phase,
                duration_ms=row.duration_ms, status=row.status, attempts=row.attempts,
                action=row.action, error=row.error, start_offset_ms=row.start_offset_ms,
                items=row.items,
            )
            for row in nodes
        ],
        llm_calls=[_call_from_row(row) for row in calls],
    )


def _call_from_row(row) -> LLMCallRecord:
    rates = {key: getattr(row, f"{key}_rate") for key in RATE_KEYS if getattr(row, f"{key}_rate") is not None}
    return LLMCallRecord(
        node_id=row.node_id, phase=row.phase, model=row.model, resolved_model=row.resolved_model,
        provider=row.provider, input_tokens=row.input_tokens, output_tokens=row.output_tokens,
        cache_creation_tokens=row.cache_creation_tokens, cache_read_tokens=row.cache_read_tokens,
        thinking_tokens=row.thinking_tokens, cost_usd=from_nanos(row.cost_nanousd), rates=rates or None,
        price_source=row.price_source, duration_ms=row.duration_ms, started_at=row.started_at,
        prompt=row.prompt, response=row.response,
    )

