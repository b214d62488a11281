"""`runs show ID --format html`: one run as a trace viewer shows it, a waterfall of its node
executions on a time axis with its LLM calls marked, and every figure in tables below."""

from __future__ import annotations

from typing import Any

from pflow_metrics.cli.render import clean, duration, money, to_json
import pflow_metrics.html.charts as charts
from pflow_metrics.html.page import card, chart, document, labels, table, text

MAX_ROWS = 300  # executions drawn; the tables below have them all
MAX_CALLS = 1_000  # LLM calls drawn
THINNEST = 0.003  # of the time axis: a 0 ms node still shows as a sliver


def render(record) -> str:
    nodes = record.nodes
    body = [
        f"<h1>Run {text(record.run_id)}</h1>",
        f'<p class="sub">workflow {text(record.workflow, 300)} · started {record.started_at:%Y-%m-%d %H:%M:%S} UTC'
        + (f" · {', '.join(text(f'{k}={v}') for k, v in record.tags.items())}" if record.tags else "") + "</p>",
        _cards(record),
        f'<p class="warn"><strong>Error:</strong> {text(record.error, 2000)}</p>' if record.error else "",
        _waterfall(record),
    ]
    if nodes:
        body.append("<h2>Node executions</h2>" + table(
            ["at", "node", "type", "phase", "duration", "status", "attempts", "items", "action", "error"],
            [[f"+{duration(n.start_offset_ms)}", n.node_id, n.node_type, n.phase, duration(n.duration_ms), n.status,
              n.attempts, "-" if n.items is None else f"{n.items:,}", n.action or "", n.error or ""]
             for n in sorted(nodes, key=lambda n: n.start_offset_ms)],
            numeric=(0, 4, 6, 7)))
    if record.llm_calls:
        body.append("<h2>LLM calls</h2>" + table(
            ["at", "node", "phase", "model", "provider", "input", "cache read", "cache creation", "output",
             "thinking", "cost", "priced by", "duration"],
            [[_at(record, call), call.node_id, call.phase, call.model, call.provider or "-", f"{call.input_tokens:,}",
              f"{call.cache_read_tokens:,}", f"{call.cache_creation_tokens:,}", f"{call.output_tokens:,}",
              f"{call.thinking_tokens:,}", money(call.cost_usd), call.price_source or "-", duration(call.duration_ms)]
             for call in record.llm_calls],
            numeric=(0, 5, 6, 7, 8, 9, 10, 12)))
    body.append("<footer>Times are milliseconds since the run started; an LLM call is placed by its own "
                "start time.</footer>")
    return document(f"pflow-metrics run {record.run_id}", "\n".join(body), to_json({"run": record.to_dict()}),
                    "run-data")


def _cards(record) -> str:
    tokens = record.tokens
    cost = money(record.priced_cost_usd, bool(record.unpriced_calls))
    cards = [
        card("status", record.status),
        card("duration", duration(record.duration_ms),
             " · ".join(f"{name} {duration(ms)}" for name, ms in (("planner", record.planner_duration_ms),
                                                                   ("workflow", record.workflow_duration_ms))
                        if ms is not None)),
        card("cost", cost, f"{record.unpriced_calls} unpriced calls" if record.unpriced_calls else ""),
        card("LLM calls", f"{len(record.llm_calls):,}"),
        card("tokens", f"{tokens.input + tokens.cache_read + tokens.cache_creation + tokens.output:,}",
             f"in {tokens.input:,} · cache read {tokens.cache_read:,} · cache creation {tokens.cache_creation:,}"
             f" · out {tokens.output:,} · thinking {tokens.thinking:,}"),
        card("node executions", f"{len(record.nodes):,}"),
    ]
    return f'<div class="cards">{"".join(cards)}</div>'


def _offset(record, call) -> float | None:
    """Milliseconds from the run's start to the call's, when the call knows its start."""
    if call.started_at is None:
        return None
    return max((call.started_at - record.started_at).total_seconds() * 1000, 0.0)


def _at(record, call) -> str:
    offset = _offset(record, call)
    return "-" if offset is None else f"+{duration(offset)}"


def _waterfall(record) -> str:
    executions = sorted(record.nodes, key=lambda n: n.start_offset_ms)
    drawn = executions[:MAX_ROWS]
    if not drawn and not record.llm_calls:
        return '<h2>Timeline</h2><p class="note">No node ran in this run.</p>'
    rows = labels([n.node_id for n in drawn])
    ends = [n.start_offset_ms + n.duration_ms for n in drawn] + [_offset(record, c) or 0 for c in record.llm_calls]
    thinnest = max([*ends, record.duration_ms or 0, 1]) * THINNEST
    spans = [_span(node, row, thinnest) for node, row in zip(drawn, rows)]
    calls = []
    own_rows: dict[str, str] = {}  # calls of a node no drawn execution is: a row of their own
    for call in record.llm_calls[:MAX_CALLS]:
        at = _offset(record, call)
        row = _row_of(call, at, drawn, rows) or own_rows.get(call.node_id)
        if row is None:
            if len(rows) >= MAX_ROWS:
                continue
            row = own_rows[call.node_id] = labels([*rows, f"{call.node_id} (calls)"])[-1]
            rows.append(row)
        node = next((n for n, r in zip(drawn, rows) if r == row), None)
        tokens_in = call.input_tokens + call.cache_read_tokens + call.cache_creation_tokens
        calls.append({"row": row, "at": at if at is not None else (node.start_offset_ms if node else 0),
                      "hover": f"LLM call {clean(call.model, 60)} in {row}: {tokens_in:,} tokens in, "
                               f"{call.output_tokens:,} out, {money(call.cost_usd)}, "
                               f"took {duration(call.duration_ms)}"})
    note = "Bars are node executions, coloured by phase, orange when they needed retries, red when they " \
           "failed; diamonds are LLM calls. Hover a mark for its figures."
    if len(executions) > MAX_ROWS or len(record.llm_calls) > MAX_CALLS:
        note += (f" The first {min(MAX_ROWS, len(executions)):,} of {len(executions):,} executions and "
                 f"{min(MAX_CALLS, len(record.llm_calls)):,} of {len(record.llm_calls):,} LLM calls are drawn; "
                 "the tables have them all.")
    return chart("Timeline", charts.svg(charts.waterfall(spans, calls, rows)), note)


def _span(node, row: str, thinnest: float) -> dict[str, Any]:
    failed = node.status == "failed"
    badges = [duration(node.duration_ms)]
    if node.attempts > 1:
        badges.append(f"{node.attempts} attempts")
    if node.items is not None:
        badges.append(f"{node.items:,} items")
    if failed:
        badges.append("failed")
    return {"row": row, "start": node.start_offset_ms,
            "end": node.start_offset_ms + max(node.duration_ms, thinnest),
            "outcome": "failed" if failed else "retried" if node.attempts > 1 else node.phase,
            "badge": " · ".join(badges),
            "hover": f"{row} ({clean(node.node_type or 'node', 60)}, {node.phase}) from "
                     f"+{duration(node.start_offset_ms)}: " + ", ".join(badges)}


def _row_of(call, at: float | None, drawn: list, rows: list[str]) -> str | None:
    """The row of the execution of the call's node that was running when it started (else the
    first execution of that node), or None when no drawn execution is the call's node."""
    mine = [(node, row) for node, row in zip(drawn, rows) if node.node_id == call.node_id]
    if at is not None:
        for node, row in mine:
            if node.start_offset_ms <= at <= node.start_offset_ms + node.duration_ms:
                return row
    return mine[0][1] if mine else None
