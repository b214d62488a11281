"""One output layer: every command's rows become a table, markdown, CSV or JSON here.

A command names its columns from FIELDS, the one list of what a field is called (its JSON key
and CSV header, the run record's name), what kind of value it holds, and its table heading, so
the same figure reads the same in every command:

- money: `money()` in tables (one precision rule), the exact plain number in CSV and JSON;
- durations: milliseconds, `duration()` in tables (3.2ms, 480ms, 1.32s);
- times: local time with its offset in tables, ISO 8601 UTC in CSV and JSON;
- shares: 88% in tables, 0.88 in CSV and JSON; counts: 1,300 in tables, 1300 elsewhere.
Numeric columns are right-aligned in tables and markdown. CSV is one rectangular table per
command, loadable as is by `csv`, spreadsheets and pandas.

Text from the ledger or from a run is anyone's: a provider named "\x1b]0;pwned\x07" must not
drive the terminal. Every table and markdown cell and every one-line message goes through
`clean` here, so no command has to remember to. CSV and JSON carry values exactly (JSON
escapes control characters itself)."""

from __future__ import annotations

import io
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

BLOCKS = " ▏▎▍▌▋▊▉█"
NO_RUNS = "no runs recorded in this window"
NUMERIC = ("money", "delta", "rate", "duration", "count", "share")


@dataclass(frozen=True)
class Column:
    """A field as a column. kind: text, id, time, money, delta (signed money), rate (USD per
    million tokens), duration (ms), count, share (a fraction), flag (true/false)."""

    name: str
    kind: str = "text"
    title: str = ""  # the table heading; by default the name in words, without a unit suffix
    lower_bound: str | None = None  # money: the row's field saying the amount leaves unpriced calls out
    table: bool = True  # False: in JSON and CSV only
    limit: int | None = 80  # text: the characters a table shows

    @property
    def heading(self) -> str:
        if self.title:
            return self.title
        name = self.name
        for suffix in ("_usd", "_ms"):
            name = name.removesuffix(suffix)
        return name.replace("_", " ")


def _fields(*columns: Column) -> dict[str, Column]:
    return {column.name: column for column in columns}


_COST = "cost_is_lower_bound"
FIELDS = _fields(
    Column("run_id", "id", "run"),
    *(Column(name) for name in ("workflow", "status", "phase", "model", "provider", "action", "source",
                                "error", "node", "day", "week", "month", "note")),
    *(Column(name, limit=None) for name in ("origin", "ledger", "folder")),  # paths: never cut
    Column("node_id", title="node"),
    Column("node_type", title="type"),
    Column("schema_revision", title="schema"),
    Column("head_revision", title="newest schema"),
    *(Column(name, "time") for name in ("since", "until", "started_at", "ended_at")),
    Column("start_offset_ms", "duration", "at"),
    Column("duration_ms", "duration"),
    Column("duration_p50_ms", "duration", "duration p50"),
    Column("duration_p95_ms", "duration", "duration p95"),
    Column("p95_ms", "duration", "p95"),
    *(Column(name, "count") for name in (
        "runs", "calls", "executions", "attempts", "items", "unpriced_calls", "calls_changed", "runs_changed",
        "input_tokens", "output_tokens", "cache_creation_tokens", "cache_read_tokens", "thinking_tokens",
        "success", "failed", "crashed", "budget_exceeded", "running", "crashed_runs", "stale_rollup_days",
        "spooled_records", "waiting", "set_aside")),
    Column("cost_usd", "money", lower_bound=_COST),
    Column("cost_per_run", "money", lower_bound=_COST),
    Column("previous_cost_usd", "money", "previous window cost"),
    *(Column(name, "money") for name in ("spend_usd", "limit_usd", "old_cost_usd", "new_cost_usd")),
    Column("delta_usd", "delta", "delta"),
    *(Column(f"{kind}_rate", "rate", f"{kind.replace('_', ' ')} $/M")
      for kind in ("input", "output", "cache_read", "cache_creation")),
    Column("share", "share"),
    Column("success_rate", "share"),
    Column("ratio", "share", "of limit"),
    Column("warn_at", "share"),
    Column(_COST, "flag", table=False),
)


def columns(*names: str, hidden: Sequence[str] = ()) -> list[Column]:
    """The FIELDS of these names, in this order; `hidden` ones only in JSON and CSV."""
    return [replace(FIELDS[name], table=False) if name in hidden else FIELDS[name] for name in names]


@dataclass
class Section:
    """One table of a command's output: `report --section nodes` picks it by name. `one`: a
    single record, shown as heading/value lines in a table and as an object in JSON."""

    name: str
    columns: list[Column]
    rows: list[Any]
    title: str = ""
    one: bool = False
    total: Any = None  # a total row, in tables and markdown only
    empty: str = ""  # what a table says instead of a table without rows


def render_rows(rows: Sequence[Any], cols: Sequence[Column], fmt: Any, *, total: Any = None,
                one: bool = False) -> str:
    """The rows (dicts or objects with these attributes) as `fmt`: table, markdown, csv or json."""
    fmt = getattr(fmt, "value", fmt)
    if fmt == "json":
        return to_json(json_row(rows[0], cols) if one else json_rows(rows, cols))
    if fmt == "csv":
        import csv

        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow([column.name for column in cols])
        writer.writerows([[_csv_cell(column, _get(row, column.name)) for column in cols] for row in rows])
        return out.getvalue().rstrip("\n")
    from tabulate import tabulate

    shown = [column for column in cols if column.table]
    markdown = fmt == "markdown"
    if one:
        lines = [[column.heading, _cell(column, rows[0])] for column in shown]
        if markdown:
            return tabulate(lines, headers=["", ""], tablefmt="pipe", disable_numparse=True)
        return tabulate(lines, tablefmt="plain", disable_numparse=True)
    cells = [[_cell(column, row) for column in shown] for row in rows]
    if total is not None:
        cells.append(["total", *(_cell(column, total) for column in shown[1:])])
    return tabulate(cells, headers=[column.heading for column in shown], tablefmt="pipe" if markdown else "simple",
                    disable_numparse=True,
                    colalign=["right" if column.kind in NUMERIC else "left" for column in shown])


def render_sections(sections: Sequence[Section], fmt: Any, chosen: Any = None) -> str:
    """A command of several tables: all of them in a table or markdown, the chosen one (by
    --section) or all in JSON, and in CSV the chosen one, else the first: CSV is one table."""
    fmt = getattr(fmt, "value", fmt)
    chosen = getattr(chosen, "value", chosen)
    if chosen is None and fmt == "csv":
        chosen = sections[0].name
    if chosen is not None:
        sections = [section for section in sections if section.name == chosen]
    if fmt in ("json", "csv"):
        if len(sections) == 1:
            section = sections[0]
            return render_rows(section.rows, section.columns, fmt, one=section.one)
        return to_json({section.name: json_row(section.rows[0], section.columns) if section.one
                        else json_rows(section.rows, section.columns) for section in sections})
    parts = []
    for section in sections:
        title = (f"### {section.title}" if fmt == "markdown" else section.title) if section.title else ""
        body = (render_rows(section.rows, section.columns, fmt, total=section.total, one=section.one)
                if section.rows else section.empty)
        parts.append("\n".join(part for part in (title, body) if part))
    return "\n\n".join(part for part in parts if part)


def json_rows(rows: Sequence[Any], cols: Sequence[Column]) -> list[dict[str, Any]]:
    return [json_row(row, cols) for row in rows]


def json_row(row: Any, cols: Sequence[Column]) -> dict[str, Any]:
    """The row's fields as JSON values: exact money (to_json), times as ISO UTC text."""
    return {column.name: _json_value(column, _get(row, column.name)) for column in cols}


def _get(row: Any, name: str | None) -> Any:
    if name is None:
        return None
    if isinstance(row, Mapping):
        return row.get(name)
    return getattr(row, name, None)


def _json_value(column: Column, value: Any) -> Any:
    return utc_text(value) if column.kind == "time" and value is not None else value


def _csv_cell(column: Column, value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if column.kind == "time":
        return utc_text(value)
    if isinstance(value, Decimal):
        from pflow_metrics.money import plain

        return plain(value)
    return value


def _cell(column: Column, row: Any) -> str:
    value = _get(row, column.name)
    kind = column.kind
    if kind == "money":
        return money(value, bool(_get(row, column.lower_bound)))
    if value is None:
        return "-"
    if kind in ("delta", "rate"):
        return ("+" if kind == "delta" and value >= 0 else "") + money(value)
    if kind == "duration":
        return duration(value)
    if kind == "count":
        return f"{value:,}"
    if kind == "share":
        return f"{value:.0%}"
    if kind == "time":
        return local_time(value)
    if kind == "flag":
        return "yes" if value else "no"
    return clean(value, 8 if kind == "id" else column.limit, cut="" if kind == "id" else "…")


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
    if value < 0:
        return "-" + money(-value, lower_bound)
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


def local_time(moment: datetime) -> str:
    """A moment for people, one rule in every command: local time with its offset, to the second
    (2026-11-25 13:36:59+01:00). A naive moment is UTC, as the ledger stores it."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        moment = moment.astimezone()
    except (OverflowError, ValueError):  # near year 1 or 9999 the local zone may not reach
        pass
    return moment.isoformat(sep=" ", timespec="seconds")


def utc_text(moment: datetime) -> str:
    """A moment for CSV and JSON: ISO 8601 in UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat()


def to_json(data: Any) -> str:
    """JSON for every command: money as exact decimal numbers, times as ISO text."""
    from pflow_metrics.money import dumps

    return dumps(data, indent=2)


def emit(text: str, output: Path | None) -> None:
    """Print the text, or write it to `output` (created private: it holds what the ledger holds)."""
    import os

    import typer

    if output is None:
        typer.echo(text)
        return
    from pflow_metrics.config import PRIVATE_FILE_MODE
    from pflow_metrics.errors import UsageError

    try:
        descriptor = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE_MODE)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text if text.endswith("\n") else text + "\n")
    except OSError as exc:
        raise UsageError(f"cannot write {output}: {exc.strerror or exc}") from None


@contextmanager
def progress_bar(label: str, unit: str) -> Iterator[Callable[[int, int], None] | None]:
    """A `progress(done, total)` callback for the library that draws a bar with counts, percent
    and rate on stderr, or None when stderr is not a terminal: pipes, files and CI logs get no bar."""
    if not sys.stderr.isatty():
        yield None
        return
    import time

    import typer

    bar, started = None, time.perf_counter()

    def update(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = typer.progressbar(length=total, label=label, file=sys.stderr, show_pos=True, show_percent=True, show_eta=False,
                                    item_show_func=lambda rate: rate)
            bar.__enter__()
        rate = done / max(time.perf_counter() - started, 1e-9)
        bar.length = max(bar.length, total)
        bar.current_item = f"{rate:,.0f} {unit}/s"  # shown by item_show_func when the bar is drawn
        bar.update(done - bar.pos)

    try:
        yield update
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)


def bar_chart(points: list[tuple[str, Any]], width: int = 40) -> str:
    """One line per point: label, a bar of eighth-blocks scaled to the largest value, the value."""
    if not points:
        return ""
    top = max(value or 0 for _, value in points) or 1
    lines = []
    for label, value in points:
        eighths = round((value or 0) / top * width * 8)  # an unpriced day draws no bar
        bar = "█" * (eighths // 8) + (BLOCKS[eighths % 8] if eighths % 8 else "")
        lines.append(f"{label}  {bar.ljust(width)}  {money(value)}")
    return "\n".join(lines)


def clean(text: Any, limit: int | None = 80, cut: str = "…") -> str:
    """Text safe to print: control characters shown escaped, and cut to `limit` characters."""
    value = "" if text is None else str(text)
    if not value.isprintable():
        value = "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in value)
    return value if limit is None or len(value) <= limit else value[: limit - len(cut)] + cut
