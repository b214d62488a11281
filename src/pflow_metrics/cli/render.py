"""Rendering query results: tables (tabulate), markdown, CSV, JSON, and unicode bar charts.

Text from the ledger or from a run is anyone's: a provider named "\x1b]0;pwned\x07" must not
drive the terminal. Every table and markdown cell and every one-line message goes through
`clean` here, so no command has to remember to. CSV and JSON carry values exactly (JSON
escapes control characters itself)."""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from typing import Any

BLOCKS = " ▏▎▍▌▋▊▉█"
NO_RUNS = "no runs recorded in this window"


def one_line(text: Any) -> str:
    """A message on one line, with control characters shown escaped."""
    return clean(" ".join(str(text).split()), limit=None)


def warning_line(text: Any) -> str:
    """A warning as the one stderr line every command prints (messages may carry our prefix)."""
    return f"pflow-metrics: warning: {one_line(text).removeprefix('pflow-metrics: ')}"


def money(value: Any, lower_bound: bool = False) -> str:
    """Dollars for people, one rule in every command: cents from $1, four places below it, and
    two significant digits below $0.0001 (a cheap call is $0.000032, not $0.0000). None is a cost
    nobody could price ("unpriced", never $0); a total that leaves unpriced calls out is a lower
    bound ("≥ $1.20"). JSON and CSV carry the exact amount instead."""
    if value is None:
        return "unpriced"
    if value >= 1:
        text = f"${value:,.2f}"
    elif value == 0 or value >= Decimal("0.0001"):
        text = f"${value:.4f}"
    else:
        places = 1 - Decimal(value).adjusted()  # two significant digits
        text = f"${value:.{places}f}"
    return f"≥ {text}" if lower_bound else text


def duration(ms: Any) -> str:
    """Milliseconds for people, one rule in every command: 3.2ms, 480ms, 1.32s."""
    if ms is None:
        return "-"
    if ms >= 1000:
        return f"{ms / 1000:.2f}s"
    return f"{ms:.1f}ms" if ms < 10 else f"{ms:.0f}ms"


def to_json(data: Any) -> str:
    """JSON for every command: money as exact decimal numbers, times as ISO text."""
    from pflow_metrics.money import dumps

    return dumps(data, indent=2)


def table(rows: list[list[Any]], headers: list[str], fmt: str) -> str:
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(headers)
        writer.writerows(rows)
        return out.getvalue().rstrip("\n")
    from tabulate import tabulate

    rows = [[clean(cell, limit=None) if isinstance(cell, str) else cell for cell in row] for row in rows]
    return tabulate(rows, headers=headers, tablefmt="github" if fmt == "markdown" else "simple",
                    disable_numparse=True)


def bar_chart(points: list[tuple[str, float]], width: int = 40) -> str:
    """One line per point: label, a bar of eighth-blocks scaled to the largest value, the value."""
    if not points:
        return ""
    points = [(label, value or 0) for label, value in points]  # an unpriced day draws no bar
    top = max(value for _, value in points) or 1
    lines = []
    for label, value in points:
        eighths = round(value / top * width * 8)
        bar = "█" * (eighths // 8) + (BLOCKS[eighths % 8] if eighths % 8 else "")
        lines.append(f"{label}  {bar.ljust(width)}  {money(value)}")
    return "\n".join(lines)


def clean(text: Any, limit: int | None = 80) -> str:
    """Text safe to print: control characters shown escaped, and cut to `limit` characters."""
    value = "" if text is None else str(text)
    if not value.isprintable():
        value = "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in value)
    return value if limit is None or len(value) <= limit else value[: limit - 1] + "…"
