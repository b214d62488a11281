"""`pflow-metrics trace show FILE`: a workflow trace as a readable timeline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from pflow_metrics.instrumentation.trace import read_trace

app = typer.Typer(help="Read workflow traces (written by `run --trace`).", no_args_is_help=True)


@app.command("show")
def show(file: Path = typer.Argument(..., metavar="FILE", help="A workflow-trace-*.jsonl file.")) -> None:
    """Print the header, one line per node (with its LLM calls and changed keys), and the summary."""
    for line in timeline(read_trace(file)):
        typer.echo(line)


def timeline(events: list[dict[str, Any]]) -> list[str]:
    header = events[0]
    lines = [f"trace of {header.get('workflow')} · run {str(header.get('run_id'))[:8]} · started {header.get('started_at')}"]
    for event in events[1:]:
        if event["type"] == "node":
            lines.extend(_node_lines(event))
        elif event["type"] == "summary":
            lines.append(_summary_line(event))
    if events[-1]["type"] != "summary":
        lines.append("(no summary line: the run did not finish)")
    return lines


def _node_lines(event: dict[str, Any]) -> list[str]:
    mark = "✓" if event.get("status") == "success" else "✗"
    extras = []
    if (event.get("attempts") or 1) > 1:
        extras.append(f"{event['attempts']} attempts")
    if event.get("items") is not None:
        extras.append(f"{event['items']} items")
    if event.get("action"):
        extras.append(f"-> {event['action']}")
    lines = [
        f"{_ms(event.get('start_offset_ms')):>10} {mark} {event.get('node_id')} ({event.get('node_type')}) "
        f"{_ms(event.get('duration_ms'))}" + (f" · {' · '.join(extras)}" if extras else "")
    ]
    for call in event.get("llm_calls") or []:
        cost = call.get("cost_usd")
        lines.append(f"{'':>12}llm {call.get('model')}: {call.get('input_tokens')} in / {call.get('output_tokens')} out, "
                     + (f"${cost:.6f}" if isinstance(cost, (int, float)) else "unpriced"))
    changes = event.get("changes") or {}
    changed = [*(f"+{k}" for k in changes.get("added") or {}), *(f"~{k}" for k in changes.get("modified") or {}),
               *(f"-{k}" for k in changes.get("removed") or [])]
    if changed:
        lines.append(f"{'':>12}changed: {' '.join(changed)}")
    if event.get("error"):
        lines.append(f"{'':>12}error: {event['error']}")
    return lines


def _summary_line(event: dict[str, Any]) -> str:
    total = (event.get("metrics") or {}).get("total") or {}
    cost = total.get("cost_usd")
    cost_text = f"${cost:.6f}" if isinstance(cost, (int, float)) else f"≥ ${total.get('partial_cost_usd') or 0:.6f} (unpriced: {', '.join(total.get('unpriced_models') or [])})"
    return (f"{event.get('status')} · {_ms(event.get('duration_ms'))} · {total.get('nodes_executed', 0)} nodes · "
            f"{total.get('input_tokens', 0)} in / {total.get('output_tokens', 0)} out tokens · {cost_text}"
            + (f" · {event['error']}" if event.get("error") else ""))


def _ms(value: Any) -> str:
    return f"{value:.1f}ms" if isinstance(value, (int, float)) else "?"
