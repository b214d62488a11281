"""Rendering query results: tables (tabulate), markdown, CSV, JSON, and unicode bar charts."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from typing import Any

BLOCKS = " ▏▎▍▌▋▊▉█"


def one_line(text: Any) -> str:
    return " ".join(str(text).split())


def warning_line(text: Any) -> str:
    """A warning as the one stderr line every command prints (messages may carry our prefix)."""
    return f"pflow-metrics: warning: {one_line(text).removeprefix('pflow-metrics: ')}"


def money(value: float | None) -> str:
    return "-" if value is None else f"${value:,.4f}" if value < 1 else f"${value:,.2f}"


def to_json(data: Any) -> str:
    return json.dumps(data, indent=2, default=_json_default)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot serialize {type(value).__name__}")


def table(rows: list[list[Any]], headers: list[str], fmt: str) -> str:
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(headers)
        writer.writerows(rows)
        return out.getvalue().rstrip("\n")
    from tabulate import tabulate

    return tabulate(rows, headers=headers, tablefmt="github" if fmt == "markdown" else "simple",
                    disable_numparse=True)


def bar_chart(points: list[tuple[str, float]], width: int = 40) -> str:
    """One line per point: label, a bar of eighth-blocks scaled to the largest value, the value."""
    if not points:
        return ""
    top = max(value for _, value in points) or 1.0
    lines = []
    for label, value in points:
        eighths = round(value / top * width * 8)
        bar = "█" * (eighths // 8) + (BLOCKS[eighths % 8] if eighths % 8 else "")
        lines.append(f"{label}  {bar.ljust(width)}  {money(value)}")
    return "\n".join(lines)


def clean(text: Any, limit: int = 80) -> str:
    """Names from the ledger, safe to print: control characters shown escaped, long ones cut."""
    value = "" if text is None else str(text)
    value = "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in value)
    return value if len(value) <= limit else value[: limit - 1] + "…"
