"""Roll-ups: runs, calls and node executions summed per UTC day and per month, so that a
report over a year reads a few thousand rows instead of millions of calls.

Writers never compute them: every write marks the UTC days it touches dirty (ledger/store.py).
A reader rebuilds the dirty days its window needs (`refresh`), then takes whole clean months
and days from the roll-ups and everything else (the partial days at the window's edges, days it
could not rebuild on a read-only ledger, filters the roll-ups do not carry) from raw rows.
Both sources give rows of the same shapes (`Rows`), which `group` sums.

Durations are log-bucket sketches (ledger/sketch.py): a percentile read from one is within 1%
of the exact value, and sketches add up across days and months. Rows carry them as `Sketch`es;
roll-up tables store their JSON form.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from pflow_metrics.errors import LedgerUnavailable
from pflow_metrics.ledger.engine import REFRESH_LOCK
from pflow_metrics.ledger.filters import Filters, call_conditions, ranges_condition, run_conditions, workflow_condition
from pflow_metrics.ledger.sketch import ACCURACY, Sketch  # noqa: F401  (ACCURACY: how exact report percentiles are)
from pflow_metrics.ledger.sql import POSTGRESQL, Sql, all_of, any_of, utc_day_sql, values_in
from pflow_metrics.ledger.store import Ledger, utc_day
from pflow_metrics.record import TOKEN_KINDS

TOKEN_COLUMNS = tuple(f"{kind}_tokens" for kind in TOKEN_KINDS)
TOTALS = ("calls", *TOKEN_COLUMNS, "cost_nanousd", "unpriced_calls")
# cost --by keys that are properties of a call, and their columns.
CALL_KEYS = {"model": "model", "provider": "provider", "node": "node_id", "phase": "phase"}
KEY = ("period", "workflow", "status")
# The roll-up tables (ledger/models.py) and their columns but `id`; a test checks them.
TABLES = {"runs": "rollup_runs", "calls": "rollup_calls", "call_runs": "rollup_call_runs", "nodes": "rollup_nodes"}
COLUMNS = {
    "runs": (*KEY, "runs", *TOTALS, "durations"),
    "calls": (*KEY, "model", "provider", "node_id", "phase", *TOTALS),
    "call_runs": (*KEY, "dimension", "value", "runs"),
    "nodes": (*KEY, "node_id", "executions", "durations"),
}
SUMMED = ("runs", "executions", *TOTALS)  # columns a month's row sums from its days' rows
ONE_DAY = timedelta(days=1)
# More days than this waiting to be rebuilt in one window (a ledger that cannot be written):
# read the window from raw rows rather than stitch that many ranges into one statement.
MAX_DIRTY_RANGES = 64
REBUILD_CHUNK = 64

# -- rows -------------------------------------------------------------------------------------


@dataclass
class Rows:
    """Rows keyed by (period, workflow, status, ...), from roll-ups or computed from raw rows.

    runs:      runs, the TOTALS of their calls, durations (a Sketch)
    calls:     model, provider, node_id, phase, TOTALS
    call_runs: dimension ("" or a CALL_KEYS key), value, runs (distinct runs with such calls)
    nodes:     node_id, executions, durations (a Sketch)
    """

    runs: list[dict[str, Any]] = field(default_factory=list)
    calls: list[dict[str, Any]] = field(default_factory=list)
    call_runs: list[dict[str, Any]] = field(default_factory=list)
    nodes: list[dict[str, Any]] = field(default_factory=list)

    def extend(self, other: Rows) -> None:
        for name in TABLES:
            getattr(self, name).extend(getattr(other, name))


def group(rows: Iterable[dict[str, Any]], keys: Iterable[str], sums: Iterable[str] = (),
          sketches: Iterable[str] = ()) -> list[dict[str, Any]]:
    """Sum `sums` and merge `sketches` of rows that share `keys`."""
    keys, sums, sketches = tuple(keys), tuple(sums), tuple(sketches)
    groups: dict[tuple, dict[str, Any]] = {}
    for row in rows:
        index = tuple(row[key] for key in keys)
        total = groups.get(index)
        if total is None:
            total = groups[index] = {key: row[key] for key in keys}
            total.update(dict.fromkeys(sums, 0))
            total.update({name: Sketch() for name in sketches})
        for name in sums:
            total[name] += row[name]
        for name in sketches:
            total[name].merge(row[name])
    return list(groups.values())


def raw_rows(conn, filters: Filters, ranges: list[tuple[datetime, datetime]],
             tables: Iterable[str] = tuple(TABLES)) -> Rows:
    """Rows per UTC day computed from the runs, calls and node executions of these [start, end)
    time ranges, for the named `Rows` tables only. Both ends are bounded on purpose: without an
    upper bound SQLite's planner scans every call instead of walking runs by start time."""
    tables = set(tables)
    rows = Rows()
    if not ranges:
        return rows
    untimed = replace(filters, since=None, until=None)
    runs_where = all_of([ranges_condition(ranges), *run_conditions(untimed, conn.dialect)])
    calls_where = all_of([ranges_condition(ranges), *call_conditions(untimed, conn.dialect)])
    period = utc_day_sql(conn.dialect)
    joined = "llm_calls JOIN runs ON llm_calls.run_id = runs.id"

    calls = []
    if tables & {"calls", "runs"}:  # runs rows carry their calls' totals
        keys = f"{period}, runs.workflow, runs.status, llm_calls.model, llm_calls.provider, llm_calls.node_id, " \
               "llm_calls.phase"
        sums = ", ".join(f"coalesce(sum(llm_calls.{name}), 0) AS {name}" for name in (*TOKEN_COLUMNS, "cost_nanousd"))
        calls = conn.dicts(
            Sql(f"SELECT {period} AS period, runs.workflow, runs.status, llm_calls.model, llm_calls.provider, "
                f"llm_calls.node_id, llm_calls.phase, count(*) AS calls, {sums}, "
                f"sum(CASE WHEN llm_calls.cost_nanousd IS NULL THEN 1 ELSE 0 END) AS unpriced_calls "
                f"FROM {joined} WHERE ") + calls_where + f" GROUP BY {keys}")
    if "calls" in tables:
        rows.calls = calls

    if "call_runs" in tables:
        for dimension, column in (("", None), *CALL_KEYS.items()):
            value = f"llm_calls.{column}" if column else "NULL"
            grouping = f"{period}, runs.workflow, runs.status" + (f", llm_calls.{column}" if column else "")
            rows.call_runs += [{**row, "dimension": dimension} for row in conn.dicts(
                Sql(f"SELECT {period} AS period, runs.workflow, runs.status, {value} AS value, "
                    f"count(DISTINCT llm_calls.run_id) AS runs FROM {joined} WHERE ") + calls_where
                + f" GROUP BY {grouping}")]

    if "runs" in tables:
        runs: dict[tuple, dict[str, Any]] = {}
        for period_, workflow, status, duration in conn.rows(
                Sql(f"SELECT {period}, runs.workflow, runs.status, runs.duration_ms FROM runs WHERE ") + runs_where):
            row = runs.setdefault((period_, workflow, status), {
                "period": period_, "workflow": workflow, "status": status,
                "runs": 0, **dict.fromkeys(TOTALS, 0), "durations": Sketch()})
            row["runs"] += 1
            if duration is not None:
                row["durations"].add(duration)
        for total in group(calls, KEY, TOTALS):
            runs[tuple(total[key] for key in KEY)].update({name: total[name] for name in TOTALS})
        rows.runs = list(runs.values())

    if "nodes" in tables:
        nodes: dict[tuple, dict[str, Any]] = {}
        for period_, workflow, status, node_id, duration in conn.rows(
                Sql(f"SELECT {period}, runs.workflow, runs.status, node_executions.node_id, node_executions.duration_ms "
                    "FROM node_executions JOIN runs ON node_executions.run_id = runs.id WHERE ") + runs_where):
            row = nodes.setdefault((period_, workflow, status, node_id), {
                "period": period_, "workflow": workflow, "status": status, "node_id": node_id,
                "executions": 0, "durations": Sketch()})
            row["executions"] += 1
            row["durations"].add(duration)
        rows.nodes = list(nodes.values())
    return rows


# -- refreshing -------------------------------------------------------------------------------


def refresh(ledger: Ledger, first_day: str | None = None, end_day: str | None = None) -> set[str]:
    """Rebuild the roll-ups of the dirty days in [first_day, end_day) (every dirty day when not
    given) and of their months. Returns the days that are still dirty (all of them if the
    ledger cannot be written now: readers then use raw rows for them)."""
    def wanted(day: str) -> bool:
        return (first_day is None or day >= first_day) and (end_day is None or day < end_day)

    dirty = dirty_days(ledger)
    if not any(map(wanted, dirty)):  # the usual case: no write lock taken
        return dirty
    try:
        with ledger.sql(write=True) as conn:
            if conn.dialect == POSTGRESQL:
                # Serializes refreshes on PostgreSQL (SQLite's BEGIN IMMEDIATE already does).
                conn.run(Sql("SELECT pg_advisory_xact_lock(?)", (REFRESH_LOCK,)))
            versions = dict(conn.rows("SELECT day, version FROM rollup_dirty_days"))
            todo = {day: version for day, version in versions.items() if wanted(day)}
            if todo:
                _rebuild(conn, todo, set(versions) - set(todo))
    except LedgerUnavailable:  # read-only, locked or down: answer from raw rows
        return dirty_days(ledger)
    return set(versions) - set(todo)


def dirty_days(ledger: Ledger) -> set[str]:
    """The UTC days whose roll-ups wait to be rebuilt."""
    with ledger.sql() as conn:
        return {day for (day,) in conn.rows("SELECT day FROM rollup_dirty_days")}


def _rebuild(conn, todo: dict[str, int], still_dirty: set[str]) -> None:
    days = sorted(todo)
    # A few days per statement: SQLite limits bound variables and expression depth.
    for start in range(0, len(days), REBUILD_CHUNK):
        chunk = days[start:start + REBUILD_CHUNK]
        for table in TABLES.values():
            conn.run(Sql(f"DELETE FROM {table} WHERE ") + values_in("period", chunk))
        _insert(conn, raw_rows(conn, Filters(), _day_ranges(chunk)))
    for month in sorted({day[:7] for day in days}):
        for table in TABLES.values():
            conn.run(Sql(f"DELETE FROM {table} WHERE period = ?", (month,)))
        if still_dirty.isdisjoint(_days_of_month(month)):
            _rebuild_month(conn, month)
    # Only if no write has changed the day since we read its version.
    conn.run_many("DELETE FROM rollup_dirty_days WHERE day = ? AND version = ?", todo.items())


def _rebuild_month(conn, month: str) -> None:
    """The month's rows are its days' rows summed: in SQL where the sums are plain, in Python
    where duration sketches merge."""
    start = datetime.fromisoformat(f"{month}-01").replace(tzinfo=UTC)
    days = WindowPlan(days=[_day_texts((start, _next_month(start)))])
    for name in ("calls", "call_runs"):
        keys = [column for column in COLUMNS[name] if column != "period" and column not in SUMMED]
        sums = [column for column in COLUMNS[name] if column in SUMMED]
        conn.run(Sql(f"INSERT INTO {TABLES[name]} (period, {', '.join(keys + sums)}) "
                     f"SELECT ?, {', '.join(keys)}, {', '.join(f'sum({column})' for column in sums)} "
                     f"FROM {TABLES[name]} WHERE ", (month,)) + _periods(days) + f" GROUP BY {', '.join(keys)}")
    rows = read_rollups(conn, Filters(), days, ("runs", "nodes"))
    key = ("workflow", "status")
    _insert(conn, Rows(runs=group(rows.runs, key, ("runs", *TOTALS), ("durations",)),
                       nodes=group(rows.nodes, (*key, "node_id"), ("executions",), ("durations",))), period=month)


def _insert(conn, rows: Rows, period: str | None = None) -> None:
    for name, table in TABLES.items():
        columns = COLUMNS[name]
        conn.run_many(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                      [_stored(row, period or row["period"], columns) for row in getattr(rows, name)])


def _stored(row: dict[str, Any], period: str, columns: tuple[str, ...]) -> tuple:
    """A row as its roll-up table holds it: a duration sketch in its JSON form."""
    stored = {**row, "period": period}
    if "durations" in row:
        stored["durations"] = row["durations"].to_json()
    return tuple(stored[column] for column in columns)


# -- reading ----------------------------------------------------------------------------------


def read_rollups(conn, filters: Filters, plan: WindowPlan, tables: Iterable[str] = tuple(TABLES),
                 sketches: bool = True) -> Rows:
    """Roll-up rows of the plan's months and days that match the workflow, status and model
    filters (without their duration sketches unless `sketches`)."""
    rows = Rows()
    if not (plan.months or plan.days):
        return rows
    for name in tables:
        where = [_periods(plan)]
        if filters.workflows:
            where.append(workflow_condition("workflow", filters.workflows))
        if filters.status:
            where.append(Sql("status = ?", (filters.status,)))
        if filters.model and name == "calls":
            where.append(Sql("model = ?", (filters.model,)))
        if filters.model and name == "call_runs":
            where.append(Sql("dimension = ? AND value = ?", ("model", filters.model)))
        columns = [column for column in COLUMNS[name] if sketches or column != "durations"]
        found = conn.dicts(Sql(f"SELECT {', '.join(columns)} FROM {TABLES[name]} WHERE ") + all_of(where))
        if "durations" in columns:
            for row in found:
                row["durations"] = Sketch.from_json(row["durations"])
        getattr(rows, name).extend(found)
    return rows


def _periods(plan: WindowPlan) -> Sql:
    """The plan's roll-up periods as ranges of text: months are 7 characters, days 10."""
    return any_of([Sql("period >= ? AND period < ? AND length(period) = ?", (start, end, width))
                   for width, spans in ((7, plan.months), (10, plan.days)) for start, end in spans])


@dataclass(frozen=True)
class WindowPlan:
    """Where each part of a window is read from. Ranges are half-open; roll-up periods are
    compared as text ('YYYY-MM' months, 'YYYY-MM-DD' days), so a plan is a few ranges whatever
    the window's length: a window from 1970 to now is not 20,000 listed days."""

    months: list[tuple[str, str]] = field(default_factory=list)  # month roll-up rows
    days: list[tuple[str, str]] = field(default_factory=list)  # day roll-up rows
    raw: list[tuple[datetime, datetime]] = field(default_factory=list)  # raw rows


def plan_window(first_run: datetime, last_run: datetime, since: datetime | None, until: datetime | None,
                dirty: set[str], by_day: bool = False) -> WindowPlan:
    """Plan a window [since, until) over runs that started from `first_run` to `last_run`:
    whole UTC days from roll-ups (by month where a whole month is clean and inside the window,
    unless `by_day`), the partial days at the edges and the `dirty` days from raw rows."""
    first, last = _floor_day(first_run), _floor_day(last_run) + ONE_DAY
    whole_from = _ceil_day(since) if since else first
    whole_to = _floor_day(until) if until else last
    lo, hi = max(whole_from, first), min(whole_to, last)  # days without runs have no rows
    dirty_days = sorted(day for day in dirty if lo <= _day_start(day) < hi)
    if whole_from >= whole_to or len(dirty_days) > MAX_DIRTY_RANGES:
        # Nothing whole, or a ledger too stale to stitch: one raw range is simpler and right.
        return WindowPlan(raw=[(since or first, until or last)])
    raw = [*([(since, whole_from)] if since and since < whole_from else []),
           *_day_ranges(dirty_days),
           *([(whole_to, until)] if until and whole_to < until else [])]
    if lo >= hi:
        return WindowPlan(raw=raw)
    clean = _subtract([(lo, hi)], [(_day_start(day), _day_start(day) + ONE_DAY) for day in dirty_days])
    if by_day:
        return WindowPlan(days=[_day_texts(span) for span in clean], raw=raw)
    # A month is whole when the window covers it or no run lies outside the window in it, and
    # is read by month only when none of its days waits to be rebuilt (only then are its rows).
    month_from = _month_start(whole_from, up=True) if since else _month_start(first, up=False)
    month_to = _month_start(whole_to, up=False) if until else _month_start(last, up=True)
    month_from = max(month_from, _month_start(lo, up=False))
    month_to = min(month_to, _month_start(hi, up=True))
    stale = sorted({_month_start(_day_start(day), up=False) for day in dirty})
    months = _subtract([(month_from, month_to)] if month_from < month_to else [],
                       [(month, _next_month(month)) for month in stale])
    return WindowPlan(months=[(utc_day(a)[:7], utc_day(b)[:7]) for a, b in months],
                      days=[_day_texts(span) for span in _subtract(clean, months)], raw=raw)


def window_rows(ledger: Ledger, filters: Filters, tables: Iterable[str] = tuple(TABLES),
                by_day: bool = False, durations: bool = True) -> Rows:
    """All rows of the window: roll-ups for whole clean days and months, raw rows for the rest.

    `by_day` keeps day resolution (for --by day and week, and the cost-per-day chart); its
    roll-up rows come without duration sketches, which only months need; so do all of them
    without `durations`.
    Filters the roll-ups do not carry (tags, and --model for run figures) read raw rows only.
    """
    tables = tuple(tables)
    with ledger.sql() as conn:
        # Two statements: SQLite reads one end of the index for a lone min() or max(), but
        # scans all of it for both at once.
        bounds = [conn.dicts(f"SELECT {edge}(started_at) AS started_at FROM runs")[0]["started_at"]
                  for edge in ("min", "max")]
    if bounds[0] is None:
        return Rows()
    first, last = _floor_day(bounds[0]), _floor_day(bounds[1]) + ONE_DAY
    start = max(_ceil_day(filters.since) if filters.since else first, first)
    end = min(_floor_day(filters.until) if filters.until else last, last)
    if filters.tags or (filters.model and {"runs", "nodes"} & set(tables)) or start >= end:
        plan = WindowPlan(raw=[(filters.since or first, filters.until or last)])
    else:
        still_dirty = refresh(ledger, utc_day(start), utc_day(end))
        plan = plan_window(*bounds, filters.since, filters.until, still_dirty, by_day)
    with ledger.sql() as conn:
        rows = read_rollups(conn, filters, plan, tables, sketches=durations and not by_day)
        rows.extend(raw_rows(conn, filters, plan.raw, tables))
    return rows


def _subtract(spans: list[tuple[datetime, datetime]], holes: list[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    """The parts of sorted, disjoint `spans` outside every one of the sorted `holes`."""
    result = []
    for start, end in spans:
        for hole_start, hole_end in holes:
            if hole_end <= start or hole_start >= end:
                continue
            if hole_start > start:
                result.append((start, hole_start))
            start = max(start, hole_end)
        if start < end:
            result.append((start, end))
    return result


def _day_texts(span: tuple[datetime, datetime]) -> tuple[str, str]:
    return utc_day(span[0]), utc_day(span[1])


def _month_start(moment: datetime, up: bool) -> datetime:
    """The start of `moment`'s month, or of the next month when `up` and `moment` is not one."""
    start = moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return _next_month(start) if up and start != moment else start


def _days_of_month(month: str) -> list[str]:
    year, number = int(month[:4]), int(month[5:7])
    return [f"{month}-{day:02d}" for day in range(1, calendar.monthrange(year, number)[1] + 1)]


def _day_ranges(days: list[str]) -> list[tuple[datetime, datetime]]:
    """Sorted days as few [start, end) ranges as possible."""
    ranges: list[tuple[datetime, datetime]] = []
    for day in days:
        start = _day_start(day)
        if ranges and ranges[-1][1] == start:
            ranges[-1] = (ranges[-1][0], start + ONE_DAY)
        else:
            ranges.append((start, start + ONE_DAY))
    return ranges


def _day_start(day: str) -> datetime:
    return datetime.fromisoformat(day).replace(tzinfo=UTC)


def _floor_day(moment: datetime) -> datetime:
    return _day_start(utc_day(moment))


def _ceil_day(moment: datetime) -> datetime:
    floor = _floor_day(moment)
    return floor if floor == moment else floor + ONE_DAY


def _next_month(moment: datetime) -> datetime:
    return (moment.replace(day=28) + timedelta(days=4)).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
