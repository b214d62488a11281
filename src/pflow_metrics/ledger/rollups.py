"""Roll-ups: runs, calls and node executions summed per UTC day and per month, so that a
report over a year reads a few thousand rows instead of millions of calls.

Writers never compute them: every write marks the UTC days it touches dirty (ledger/store.py).
A reader rebuilds the dirty days its window needs (`refresh`), then takes whole clean months
and days from the roll-ups and everything else (the partial days at the window's edges, days it
could not rebuild on a read-only ledger, filters the roll-ups do not carry) from raw rows.
Both sources give rows of the same shapes (`Rows`), which `group` sums.

Durations are log-bucket sketches (DDSketch): a percentile read from one is within 1% of the
exact value, and sketches add up across days and months.
"""

from __future__ import annotations

import calendar
import math
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, case, delete, distinct, func, literal, null, or_, select, text

from pflow_metrics.errors import LedgerUnavailable
from pflow_metrics.ledger.filters import Filters, call_conditions, run_conditions, workflow_condition
from pflow_metrics.ledger.models import RollupCallRuns, RollupCalls, RollupNodes, RollupRuns
from pflow_metrics.ledger.store import CALLS, DIRTY_DAYS, NODES, RUNS, Ledger, utc_day
from pflow_metrics.record import TOKEN_KINDS

TOKEN_COLUMNS = tuple(f"{kind}_tokens" for kind in TOKEN_KINDS)
TOTALS = ("calls", *TOKEN_COLUMNS, "cost_usd", "unpriced_calls")
# cost --by keys that are properties of a call, and their columns.
CALL_KEYS = {"model": "model", "provider": "provider", "node": "node_id", "phase": "phase"}
KEY = ("period", "workflow", "status")
TABLES = {
    "runs": RollupRuns.__table__,
    "calls": RollupCalls.__table__,
    "call_runs": RollupCallRuns.__table__,
    "nodes": RollupNodes.__table__,
}
ONE_DAY = timedelta(days=1)
# Serializes refreshes on PostgreSQL (SQLite's BEGIN IMMEDIATE already does).
REFRESH_LOCK = 7283402

# -- duration sketches ------------------------------------------------------------------------

ACCURACY = 0.01
GAMMA = (1 + ACCURACY) / (1 - ACCURACY)
LOG_GAMMA = math.log(GAMMA)
SMALLEST_MS = 0.001


def sketch_add(sketch: dict[str, int], value_ms: float) -> None:
    bucket = str(math.ceil(math.log(max(value_ms, SMALLEST_MS)) / LOG_GAMMA))
    sketch[bucket] = sketch.get(bucket, 0) + 1


def sketch_merge(into: dict[str, int], other: dict[str, int]) -> None:
    for bucket, count in other.items():
        into[bucket] = into.get(bucket, 0) + count


def sketch_quantile(sketch: dict[str, int], fraction: float) -> float | None:
    """The value at `fraction` (nearest rank), within ACCURACY of the exact one."""
    total = sum(sketch.values())
    if not total:
        return None
    rank = round(fraction * (total - 1))
    buckets = sorted(sketch, key=int)
    seen = 0
    for bucket in buckets:
        seen += sketch[bucket]
        if seen > rank:
            break
    return 2 * GAMMA ** int(bucket) / (GAMMA + 1)


# -- rows -------------------------------------------------------------------------------------


@dataclass
class Rows:
    """Rows keyed by (period, workflow, status, ...), from roll-ups or computed from raw rows.

    runs:      runs, the TOTALS of their calls, durations (sketch)
    calls:     model, provider, node_id, phase, TOTALS
    call_runs: dimension ("" or a CALL_KEYS key), value, runs (distinct runs with such calls)
    nodes:     node_id, executions, durations (sketch)
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
            total.update({name: {} for name in sketches})
        for name in sums:
            total[name] += row[name]
        for name in sketches:
            sketch_merge(total[name], row[name])
    return list(groups.values())


def day_expression(dialect: str):
    """The UTC day of a run's start as 'YYYY-MM-DD' text."""
    if dialect == "sqlite":  # stored as naive UTC text
        return func.substr(RUNS.c.started_at, 1, 10)
    return func.to_char(func.timezone("UTC", RUNS.c.started_at), "YYYY-MM-DD")


def raw_rows(conn, filters: Filters, ranges: list[tuple[datetime, datetime]],
             tables: Iterable[str] = tuple(TABLES)) -> Rows:
    """Rows per UTC day computed from the runs, calls and node executions of these [start, end)
    time ranges, for the named `Rows` tables only. Both ends are bounded on purpose: without an
    upper bound SQLite's planner scans every call instead of walking runs by start time."""
    tables = set(tables)
    rows = Rows()
    if not ranges:
        return rows
    in_ranges = or_(*(and_(RUNS.c.started_at >= start, RUNS.c.started_at < end) for start, end in ranges))
    untimed = replace(filters, since=None, until=None)
    runs_where = [in_ranges, *run_conditions(untimed)]
    calls_where = [in_ranges, *call_conditions(untimed)]
    day = day_expression(conn.dialect.name).label("period")
    joined = CALLS.join(RUNS, CALLS.c.run_id == RUNS.c.id)

    calls = []
    if tables & {"calls", "runs"}:  # runs rows carry their calls' totals
        calls = [dict(row._mapping) for row in conn.execute(
            select(day, RUNS.c.workflow, RUNS.c.status, CALLS.c.model, CALLS.c.provider, CALLS.c.node_id,
                   CALLS.c.phase, func.count().label("calls"),
                   *(func.coalesce(func.sum(CALLS.c[name]), 0).label(name) for name in TOKEN_COLUMNS),
                   func.coalesce(func.sum(CALLS.c.cost_usd), 0.0).label("cost_usd"),
                   func.sum(case((CALLS.c.cost_usd.is_(None), 1), else_=0)).label("unpriced_calls"))
            .select_from(joined).where(*calls_where)
            .group_by(day, RUNS.c.workflow, RUNS.c.status, CALLS.c.model, CALLS.c.provider, CALLS.c.node_id,
                      CALLS.c.phase))]
    if "calls" in tables:
        rows.calls = calls

    if "call_runs" in tables:
        for dimension, column in (("", None), *CALL_KEYS.items()):
            value = (CALLS.c[column] if column else null()).label("value")
            grouping = [day, RUNS.c.workflow, RUNS.c.status, *([CALLS.c[column]] if column else [])]
            rows.call_runs += [{**row._mapping, "dimension": dimension} for row in conn.execute(
                select(day, RUNS.c.workflow, RUNS.c.status, value, func.count(distinct(CALLS.c.run_id)).label("runs"))
                .select_from(joined).where(*calls_where).group_by(*grouping))]

    if "runs" in tables:
        runs: dict[tuple, dict[str, Any]] = {}
        for period, workflow, status, duration in conn.execute(
                select(day, RUNS.c.workflow, RUNS.c.status, RUNS.c.duration_ms).where(*runs_where)):
            row = runs.setdefault((period, workflow, status), {
                "period": period, "workflow": workflow, "status": status,
                "runs": 0, **dict.fromkeys(TOTALS, 0), "durations": {}})
            row["runs"] += 1
            if duration is not None:
                sketch_add(row["durations"], duration)
        for total in group(calls, KEY, TOTALS):
            runs[tuple(total[key] for key in KEY)].update({name: total[name] for name in TOTALS})
        rows.runs = list(runs.values())

    if "nodes" in tables:
        nodes: dict[tuple, dict[str, Any]] = {}
        for period, workflow, status, node_id, duration in conn.execute(
                select(day, RUNS.c.workflow, RUNS.c.status, NODES.c.node_id, NODES.c.duration_ms)
                .select_from(NODES.join(RUNS, NODES.c.run_id == RUNS.c.id)).where(*runs_where)):
            row = nodes.setdefault((period, workflow, status, node_id), {
                "period": period, "workflow": workflow, "status": status, "node_id": node_id,
                "executions": 0, "durations": {}})
            row["executions"] += 1
            sketch_add(row["durations"], duration)
        rows.nodes = list(nodes.values())
    return rows


# -- refreshing -------------------------------------------------------------------------------


def refresh(ledger: Ledger, days: Iterable[str] | None = None) -> set[str]:
    """Rebuild the roll-ups of the dirty days among `days` (every dirty day when None) and of
    their months. Returns the days that are still dirty (all of them if the ledger cannot be
    written now: readers then use raw rows for them)."""
    wanted = None if days is None else set(days)
    dirty = dirty_days(ledger)
    if not (dirty if wanted is None else dirty & wanted):  # the usual case: no write lock taken
        return dirty
    try:
        with ledger.writing() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": REFRESH_LOCK})
            dirty = dict(conn.execute(select(DIRTY_DAYS.c.day, DIRTY_DAYS.c.version)).all())
            todo = {day: version for day, version in dirty.items() if wanted is None or day in wanted}
            if todo:
                _rebuild(conn, todo, set(dirty) - set(todo))
    except LedgerUnavailable:  # read-only, locked or down: answer from raw rows
        return dirty_days(ledger)
    return set(dirty) - set(todo)


def dirty_days(ledger: Ledger) -> set[str]:
    """The UTC days whose roll-ups wait to be rebuilt."""
    with ledger.reading() as conn:
        return set(conn.execute(select(DIRTY_DAYS.c.day)).scalars())


def _rebuild(conn, todo: dict[str, int], still_dirty: set[str]) -> None:
    days = sorted(todo)
    months = sorted({day[:7] for day in days})
    for table in TABLES.values():
        conn.execute(delete(table).where(table.c.period.in_([*days, *months])))
    _insert(conn, raw_rows(conn, Filters(), _day_ranges(days)))
    for month in months:
        month_days = _days_of_month(month)
        if still_dirty.isdisjoint(month_days):
            _rebuild_month(conn, month, month_days)
    # Only if no write has changed the day since we read its version.
    conn.execute(delete(DIRTY_DAYS).where(DIRTY_DAYS.c.day == bindparam("d"), DIRTY_DAYS.c.version == bindparam("v")),
                 [{"d": day, "v": version} for day, version in todo.items()])


def _rebuild_month(conn, month: str, month_days: list[str]) -> None:
    """The month's rows are its days' rows summed: in SQL where the sums are plain, in Python
    where duration sketches merge."""
    for name in ("calls", "call_runs"):
        table = TABLES[name]
        keys = [column for column in table.c if column.name not in ("id", "period", "runs", *TOTALS)]
        sums = [func.sum(column).label(column.name) for column in table.c if column.name in ("runs", *TOTALS)]
        conn.execute(table.insert().from_select(
            ["period", *(column.name for column in keys), *(column.name for column in sums)],
            select(literal(month), *keys, *sums).where(table.c.period.in_(month_days)).group_by(*keys)))
    rows = read_rollups(conn, Filters(), month_days, ("runs", "nodes"))
    key = ("workflow", "status")
    _insert(conn, Rows(runs=group(rows.runs, key, ("runs", *TOTALS), ("durations",)),
                       nodes=group(rows.nodes, (*key, "node_id"), ("executions",), ("durations",))), period=month)


def _insert(conn, rows: Rows, period: str | None = None) -> None:
    for name, table in TABLES.items():
        batch = getattr(rows, name)
        if batch:
            conn.execute(table.insert(), [{**row, "period": period or row["period"]} for row in batch])


# -- reading ----------------------------------------------------------------------------------


def read_rollups(conn, filters: Filters, periods: list[str], tables: Iterable[str] = tuple(TABLES),
                 sketches: bool = True) -> Rows:
    """Roll-up rows of these periods that match the workflow, status and model filters
    (without their duration sketches unless `sketches`)."""
    rows = Rows()
    if not periods:
        return rows
    for name in tables:
        table = TABLES[name]
        where = [table.c.period.in_(periods)]
        if filters.workflows:
            where.append(workflow_condition(table.c.workflow, filters.workflows))
        if filters.status:
            where.append(table.c.status == filters.status)
        if filters.model and name == "calls":
            where.append(table.c.model == filters.model)
        if filters.model and name == "call_runs":
            where.append(and_(table.c.dimension == "model", table.c.value == filters.model))
        columns = [column for column in table.c if column.name != "id" and (sketches or column.name != "durations")]
        names = [column.name for column in columns]
        getattr(rows, name).extend(dict(zip(names, row)) for row in conn.execute(select(*columns).where(*where)))
    return rows


def window_rows(ledger: Ledger, filters: Filters, tables: Iterable[str] = tuple(TABLES),
                by_day: bool = False) -> Rows:
    """All rows of the window: roll-ups for whole clean days and months, raw rows for the rest.

    `by_day` keeps day resolution (for --by day and week, and the cost-per-day chart); its
    roll-up rows come without duration sketches, which only months need.
    Filters the roll-ups do not carry (tags, and --model for run figures) read raw rows only.
    """
    tables = tuple(tables)
    with ledger.reading() as conn:
        # Two statements: SQLite reads one end of the index for a lone min() or max(), but
        # scans all of it for both at once.
        bounds = [conn.execute(select(edge(RUNS.c.started_at))).scalar() for edge in (func.min, func.max)]
    if bounds[0] is None:
        return Rows()
    start = filters.since
    end = filters.until
    # Whole UTC days of the window come from roll-ups; an open end reaches past the last run.
    first, last = _floor_day(bounds[0]), _floor_day(bounds[1]) + ONE_DAY
    whole_from = _ceil_day(start) if start else first
    whole_to = _floor_day(end) if end else last
    model_for_runs = filters.model and {"runs", "nodes"} & set(tables)
    if filters.tags or model_for_runs or whole_from >= whole_to:
        with ledger.reading() as conn:
            return raw_rows(conn, filters, [(start or first, end or last)], tables)
    # Days without runs have no roll-up rows: only those from the first to the last run matter.
    lo, hi = max(whole_from, first), min(whole_to, last)
    days = [utc_day(lo + ONE_DAY * i) for i in range(max(0, (hi - lo).days))]
    still_dirty = refresh(ledger, days)
    dirty = still_dirty.intersection(days)
    ranges = [*([(start, whole_from)] if start and start < whole_from else []),
              *_day_ranges(sorted(dirty)),
              *([(whole_to, end)] if end and whole_to < end else [])]
    clean = [day for day in days if day not in dirty]
    # A month is whole when the window covers it or no run lies outside the window in it.
    month_from = whole_from if start else first.replace(day=1)
    month_to = whole_to if end else _next_month(last - ONE_DAY)
    periods = clean if by_day else _with_months(clean, month_from, month_to, still_dirty)
    with ledger.reading() as conn:
        rows = read_rollups(conn, filters, periods, tables, sketches=not by_day)
        rows.extend(raw_rows(conn, filters, ranges, tables))
    return rows


def _with_months(days: list[str], month_from: datetime, month_to: datetime, dirty: set[str]) -> list[str]:
    """Replace the days of each month that lies in [month_from, month_to) by the month, when no
    day of it is dirty (its month rows are rebuilt only then)."""
    periods = []
    by_month: dict[str, list[str]] = {}
    for day in days:
        by_month.setdefault(day[:7], []).append(day)
    for month, month_days in by_month.items():
        every_day = _days_of_month(month)
        inside = month_from <= _day_start(every_day[0]) and _day_start(every_day[-1]) + ONE_DAY <= month_to
        if inside and dirty.isdisjoint(every_day):
            periods.append(month)
        else:
            periods.extend(month_days)
    return periods


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
    return datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=UTC)


def _floor_day(moment: datetime) -> datetime:
    return _day_start(utc_day(moment))


def _ceil_day(moment: datetime) -> datetime:
    floor = _floor_day(moment)
    return floor if floor == moment else floor + ONE_DAY


def _next_month(moment: datetime) -> datetime:
    return (moment.replace(day=28) + timedelta(days=4)).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
