"""Our streaming JSON-lines workflow trace as pflow's trace document (format 1.1.0).

pflow writes one JSON document per run when the run ends:
{"format_version", "execution_id", "workflow_name", "start_time", "end_time", "duration_ms",
 "final_status", "nodes_executed", "nodes_failed", "nodes": [{"node_id", "node_type",
 "duration_ms", "success", "shared_before", "shared_after", "mutations": {"added", "removed",
 "modified"}, "timestamp", "error"?, "template_resolutions"?, "llm_call"?, "llm_prompt"?,
 "llm_response"?}], "llm_summary"?: {"total_calls", "total_tokens", "models_used"}}.

`export_trace(events)` builds that document from the events `read_trace` returns, with our
extras beside pflow's keys (`run_id`, `status`, per node `phase`, `attempts`, `action`,
`llm_calls`, ...). A trace file is input like any other: every field may hold any JSON value,
so each is used only when it has the expected type. Only workflow nodes are exported (pflow keeps
the planner in a trace of its own); a run killed before its summary line exports the nodes it
finished, with `final_status` "failed" and `"incomplete": true`.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

TRACE_FORMAT_VERSION = "1.1.0"
# pflow's limits (and names) for the prompt and the response kept per node.
PROMPT_MAX_LENGTH = 50_000
RESPONSE_MAX_LENGTH = 20_000
# pflow keeps these root keys of the store in a trace and drops every other `__x__` key.
KEPT_SYSTEM_KEYS = ("__llm_calls__", "__metrics__", "__is_planner__")


def export_trace(events: list[dict[str, Any]]) -> dict[str, Any]:
    """pflow's trace document for the events of one of our traces (header first)."""
    header = events[0]
    summary = next((e for e in reversed(events) if e.get("type") == "summary"), None)
    nodes = [_node(e) for e in events[1:] if e.get("type") == "node" and e.get("phase") != "planner"]
    failed = sum(1 for node in nodes if not node["success"])
    start = _text(header.get("started_at"))
    duration = _number(summary.get("duration_ms")) if summary else None
    if duration is None:
        duration = _between(start, _last_time(events))
    status = _text(summary.get("status")) if summary else None
    document: dict[str, Any] = {
        "format_version": TRACE_FORMAT_VERSION,
        "execution_id": _text(header.get("run_id")),
        "workflow_name": _text(header.get("workflow")) or "workflow",
        "start_time": start,
        "end_time": _plus(start, duration) or _last_time(events),
        "duration_ms": None if duration is None else round(duration, 2),
        "final_status": "success" if status == "success" and not failed else "failed",
        "nodes_executed": len(nodes),
        "nodes_failed": failed,
        "nodes": nodes,
    }
    calls = [call for node in nodes for call in node.get("llm_calls", [])]
    if calls:
        document["llm_summary"] = {
            "total_calls": len(calls),
            "total_tokens": sum(_count(call.get("total_tokens")) for call in calls),
            "models_used": sorted({call["model"] for call in calls if isinstance(call.get("model"), str)}),
        }
    # ours
    document["run_id"] = document["execution_id"]
    document["status"] = status
    if summary is None:
        document["incomplete"] = True
    elif isinstance(summary.get("error"), str):
        document["error"] = summary["error"]
    return document


def _node(event: dict[str, Any]) -> dict[str, Any]:
    node_id = _text(event.get("node_id"))
    before = event.get("shared_before")
    has_store = isinstance(before, dict)
    before = before if has_store else {}
    after = _after(before, event.get("changes"))
    duration = _number(event.get("duration_ms"))
    node: dict[str, Any] = {
        "node_id": node_id,
        "node_type": _text(event.get("node_type")),
        "duration_ms": None if duration is None else round(duration, 2),
        "success": event.get("status") == "success",
        "shared_before": _filtered(before),
        "shared_after": _filtered(after),
        "mutations": _mutations(before, after),
        "timestamp": _text(event.get("at")),
    }
    if isinstance(event.get("error"), str) and event["error"]:
        node["error"] = event["error"]
    if isinstance(event.get("template_resolutions"), dict) and event["template_resolutions"]:
        node["template_resolutions"] = event["template_resolutions"]
    calls = [_usage(call) for call in _list(event.get("llm_calls")) if isinstance(call, dict)]
    if calls:
        node["llm_call"] = calls[-1]  # pflow keeps one call per node: the last llm_usage
        prompt = next((c.get("prompt") for c in reversed(_list(event.get("llm_calls")))
                       if isinstance(c, dict) and isinstance(c.get("prompt"), str)), None)
        if prompt:
            _truncated(node, "llm_prompt", prompt, PROMPT_MAX_LENGTH)
    response = next((c.get("response") for c in reversed(_list(event.get("llm_calls")))
                     if isinstance(c, dict) and isinstance(c.get("response"), str)), None)
    response = response or _stored_response(after, node_id)
    if response:
        _truncated(node, "llm_response", response, RESPONSE_MAX_LENGTH)
    # ours
    node["phase"] = _text(event.get("phase"))
    for key in ("attempts", "action", "items", "start_offset_ms"):
        if event.get(key) is not None:
            node[key] = event[key]
    if calls:
        node["llm_calls"] = calls
    if not has_store:
        node["snapshots_dropped"] = _text(event.get("snapshots_dropped")) or "no store snapshot in the trace"
    return node


def _after(before: dict[str, Any], changes: Any) -> dict[str, Any]:
    """The store after the node: its store before, with the node's changes applied."""
    after = dict(before)
    if not isinstance(changes, dict):
        return after
    for part in ("added", "modified"):
        if isinstance(changes.get(part), dict):
            after.update(changes[part])
    for key in _list(changes.get("removed")):
        if isinstance(key, str):
            after.pop(key, None)
    return after


def _filtered(store: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in store.items()
            if not (key.startswith("__") and key not in KEPT_SYSTEM_KEYS)}


def _mutations(before: dict[str, Any], after: dict[str, Any]) -> dict[str, list[str]]:
    return {
        "added": sorted(key for key in after if key not in before),
        "removed": sorted(key for key in before if key not in after),
        "modified": sorted(key for key in before if key in after and before[key] != after[key]),
    }


def _usage(call: dict[str, Any]) -> dict[str, Any]:
    """An LLM call in pflow's llm_usage shape (model, input_tokens, output_tokens,
    total_tokens, cache_creation_input_tokens, cache_read_input_tokens), then ours."""
    input_tokens, output_tokens = _count(call.get("input_tokens")), _count(call.get("output_tokens"))
    cache_creation, cache_read = _count(call.get("cache_creation_tokens")), _count(call.get("cache_read_tokens"))
    usage = {
        "model": _text(call.get("model")),
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "total_tokens": input_tokens + cache_creation + cache_read + output_tokens,
        "cache_creation_input_tokens": cache_creation,
        "cache_read_input_tokens": cache_read,
    }
    for key, value in call.items():
        if key not in usage and key not in ("prompt", "system", "response", "cache_creation_tokens",
                                            "cache_read_tokens"):
            usage[key] = value
    return usage


def _stored_response(store: dict[str, Any], node_id: str | None) -> str | None:
    """pflow's fallback: `response` at the root, else in the node's namespace."""
    if "response" in store:
        return store["response"] if isinstance(store["response"], str) else None
    space = store.get(node_id) if node_id else None
    if isinstance(space, dict) and isinstance(space.get("response"), str):
        return space["response"]
    return None


def _truncated(node: dict[str, Any], name: str, value: str, limit: int) -> None:
    if len(value) > limit:
        node[f"{name}_truncated"] = value[:limit] + "... [truncated]"
    else:
        node[name] = value


def _last_time(events: list[dict[str, Any]]) -> str | None:
    return next((e["at"] for e in reversed(events) if isinstance(e.get("at"), str)), None)


def _parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def _plus(start: str | None, duration_ms: float | None) -> str | None:
    began = _parse_time(start)
    if began is None or duration_ms is None:
        return None
    try:
        return (began + timedelta(milliseconds=duration_ms)).isoformat()
    except OverflowError:
        return None


def _between(start: str | None, end: str | None) -> float | None:
    began, ended = _parse_time(start), _parse_time(end)
    if began is None or ended is None:
        return None
    try:
        return (ended - began).total_seconds() * 1000
    except TypeError:  # one with a time zone, one without
        return None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) and number >= 0 else None


def _count(value: Any) -> int:
    return value if type(value) is int and value >= 0 else 0


def _list(value: Any) -> list:
    return value if isinstance(value, list) else []
