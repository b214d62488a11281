"""`pflow-metrics trace show FILE`: a workflow trace as a readable timeline; `trace export FILE
[-o OUT]`: the same trace as pflow's trace document."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import typer

from pflow_metrics.cli.query_options import Command, Format, FormatOption
from pflow_metrics.cli.render import columns, duration, local_time, money, render_rows
from pflow_metrics.config import PRIVATE_FILE_MODE
from pflow_metrics.errors import UsageError

app = typer.Typer(help="Read workflow traces (written by `run --trace`).", no_args_is_help=True)


NODES = columns("start_offset_ms", "node_id", "node_type", "phase", "status", "duration_ms", "attempts", "items",
                "action", "calls", "input_tokens", "output_tokens", "cost_usd", "error", hidden=("error",))


@app.command("show", cls=Command)
def show(file: Path = typer.Argument(..., metavar="FILE",
                                     help="A workflow-trace-*.jsonl file. Example: ~/.pflow/debug/workflow-trace-x.jsonl."),
         format: FormatOption = Format.table) -> None:
    """Print the header, one line per node (with its LLM calls and changed keys), and the summary;
    with --format json, csv or markdown, one row per node."""
    from pflow_metrics.instrumentation.trace import (
        read_trace,  # with the redactor: only when asked
    )

    events = read_trace(file)
    if format is Format.table:
        for line in timeline(events):
            typer.echo(line)
        return
    typer.echo(render_rows([node_row(event) for event in events[1:] if event.get("type") == "node"], NODES, format))


def node_row(event: dict[str, Any]) -> dict[str, Any]:
    """A node event as a row of typed values: a field of the wrong type is left empty."""
    from pflow_metrics.money import usd

    calls = [call for call in _list(event.get("llm_calls")) if isinstance(call, dict)]
    costs = [_number(call.get("cost_usd")) for call in calls]
    return {
        **{name: value if isinstance(value := event.get(name), str) else None
           for name in ("node_id", "node_type", "phase", "status", "action", "error")},
        "start_offset_ms": _number(event.get("start_offset_ms")), "duration_ms": _number(event.get("duration_ms")),
        "attempts": _count(event.get("attempts")), "items": _count(event.get("items")), "calls": len(calls),
        "input_tokens": sum(_count(call.get("input_tokens")) or 0 for call in calls),
        "output_tokens": sum(_count(call.get("output_tokens")) or 0 for call in calls),
        "cost_usd": None if None in costs else sum((usd(cost) for cost in costs), usd(0)),
    }


@app.command("export", cls=Command)
def export(
    file: Path = typer.Argument(..., metavar="FILE", help="A workflow-trace-*.jsonl file (written by run --trace)."),
    out: Path = typer.Option(None, "-o", "--output", metavar="FILE",
                             help="Write here instead of stdout. Default: stdout. Example: -o trace.json."),
) -> None:
    """Write the trace as pflow's trace document (JSON), for tools that read pflow traces."""
    from pflow_metrics.instrumentation.trace import read_trace
    from pflow_metrics.instrumentation.trace_export import export_trace
    from pflow_metrics.money import dumps

    # ASCII, as pflow writes it: a value may hold a lone surrogate, which no UTF-8 file can.
    text = dumps(export_trace(read_trace(file)), indent=2, fallback=str, allow_nan=True) + "\n"
    if out is None:
        typer.echo(text, nl=False)
        return
    try:  # private, like the trace it comes from
        descriptor = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE_MODE)
        with os.fdopen(descriptor, "w", encoding="ascii") as handle:
            handle.write(text)
    except OSError as exc:
        raise UsageError(f"cannot write {out}: {exc.strerror or exc}") from None


def timeline(events: list[dict[str, Any]]) -> list[str]:
    """The lines `trace show` prints. A trace file is input like any other: every field may hold
    any JSON value, so each is shown only when it has the expected type ("?" otherwise), and
    text is shown printable (control characters escaped) and cut."""
    header = events[0]
    lines = [f"trace of {_text(header.get('workflow'))} · run {_text(header.get('run_id'), 8, cut='')} · "
             f"started {_moment(header.get('started_at'))}"]
    for event in events[1:]:
        if event.get("type") == "node":
            lines.extend(_node_lines(event))
        elif event.get("type") == "summary":
            lines.append(_summary_line(event))
    if events[-1].get("type") != "summary":
        lines.append("(no summary line: the run did not finish)")
    return lines


def _node_lines(event: dict[str, Any]) -> list[str]:
    mark = "✓" if event.get("status") == "success" else "✗"
    extras = []
    attempts, items = _count(event.get("attempts")), _count(event.get("items"))
    if attempts is not None and attempts > 1:
        extras.append(f"{_text(attempts, 24)} attempts")
    if items is not None:
        extras.append(f"{_text(items, 24)} items")
    if event.get("action"):
        extras.append(f"-> {_text(event['action'])}")
    lines = [
        f"{_ms(event.get('start_offset_ms')):>10} {mark} {_text(event.get('node_id'))} ({_text(event.get('node_type'))}) "
        f"{_ms(event.get('duration_ms'))}" + (f" · {' · '.join(extras)}" if extras else "")
    ]
    for call in _list(event.get("llm_calls")):
        call = call if isinstance(call, dict) else {}
        cost = _number(call.get("cost_usd"))
        lines.append(f"{'':>12}llm {_text(call.get('model'))}: {_count_text(call.get('input_tokens'))} in / "
                     f"{_count_text(call.get('output_tokens'))} out, "
                     + money(cost))
    changes = event.get("changes") if isinstance(event.get("changes"), dict) else {}
    changed = [f"{mark}{_text(key)}" for mark, part in (("+", "added"), ("~", "modified"), ("-", "removed"))
               for key in _keys(changes.get(part)) if not _internal(key)]
    if changed:
        lines.append(f"{'':>12}changed: {' '.join(changed)}")
    if event.get("error"):
        lines.append(f"{'':>12}error: {_text(event['error'], 2_000)}")
    return lines


def _summary_line(event: dict[str, Any]) -> str:
    metrics = event.get("metrics") if isinstance(event.get("metrics"), dict) else {}
    total = metrics.get("total") if isinstance(metrics.get("total"), dict) else {}
    cost = _number(total.get("cost_usd"))
    if cost is not None:
        cost_text = money(cost)
    else:
        partial = _number(total.get("partial_cost_usd")) or 0.0
        unpriced = ", ".join(_text(model) for model in _list(total.get("unpriced_models")))
        cost_text = f"{money(partial, lower_bound=True)} (unpriced: {unpriced})"
    return (f"{_text(event.get('status'))} · {_ms(event.get('duration_ms'))} · "
            f"{_count_text(total.get('nodes_executed'), 0)} nodes · {_count_text(total.get('input_tokens'), 0)} in / "
            f"{_count_text(total.get('output_tokens'), 0)} out tokens · {cost_text}"
            + (f" · {_text(event['error'], 2_000)}" if event.get("error") else ""))


def _text(value: Any, limit: int = 80, cut: str = "…") -> str:
    """Any JSON value as one printable line of at most `limit` characters."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    text = text[: limit * 8]  # escaping at most octuples a character; cut before, not after
    shown = "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text)
    return shown if len(shown) <= limit else shown[: limit - len(cut)] + cut


def _moment(value: Any) -> str:
    """The header's start in the one time rule (local time with offset), or the text as it is."""
    from datetime import datetime

    try:
        return local_time(datetime.fromisoformat(value))
    except (TypeError, ValueError):
        return _text(value)


def _number(value: Any) -> float | None:
    """A finite number (not a boolean) as a float, else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:  # an integer past the float range
        return None
    return number if math.isfinite(number) else None


def _count(value: Any) -> int | None:
    return value if type(value) is int and value >= 0 else None


def _count_text(value: Any, default: Any = "?") -> str:
    count = _count(value)
    return _text(count, 24) if count is not None else str(default) if value is None else "?"


def _list(value: Any) -> list:
    return value if isinstance(value, list) else []


def _keys(value: Any) -> list:
    """The names in a changes entry: an object's keys or a list's text items."""
    if isinstance(value, dict):
        return list(value)
    return [item for item in _list(value) if isinstance(item, str)]


def _internal(key: str) -> bool:
    """The store's bookkeeping (`__llm_calls__`, `__is_planner__`), not the workflow's data."""
    return key.startswith("__") and key.endswith("__")


def _ms(value: Any) -> str:
    number = _number(value)
    return duration(number) if number is not None else "?"
