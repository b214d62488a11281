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

from sqlalchemy import and_, bindparam, case, delete, distinct, func, literal, null, or_, select, text

from pflow_metrics.errors import LedgerUnavailable
from pflow_metrics.ledger.engine import REFRESH_LOCK
from pflow_metrics.ledger.filters import Filters, call_conditions, run_conditions, workflow_condition
from pflow_metrics.ledger.models import RollupCallRuns, RollupCalls, RollupNodes, RollupRuns
from pflow_metrics.ledger.sketch import ACCURACY, Sketch  # noqa: F401  (ACCURACY: how exact report percentiles are)
from pflow_metrics.ledger.store import CALLS, DIRTY_DAYS, NODES, RUNS, Ledger, utc_day
from pflow_metrics.record import TOKEN_KINDS

TOKEN_COLUMNS = tuple(f"{kind}_tokens" for kind in TOKEN_KINDS)
TOTALS = ("calls", *TOKEN_COLUMNS, "cost_nanousd", "unpriced_calls")
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
                   func.coalesce(func.sum(CALLS.c.cost_nanousd), 0).label("cost_nanousd"),
                   func.sum(case((CALLS.c.cost_nanousd.is_(None), 1), else_=0)).label("unpriced_calls"))
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
                "runs": 0, **dict.fromkeys(TOTALS, 0), "durations": Sketch()})
            row["runs"] += 1
            if duration is not None:
                row["durations"].add(duration)
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
        with ledger.writing() as conn:
            if conn.dialect.name == "postgresql":
                # Serializes refreshes on PostgreSQL (SQLite's BEGIN IMMEDIATE already does).
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": REFRESH_LOCK})
            versions = dict(conn.execute(select(DIRTY_DAYS.c.day, DIRTY_DAYS.c.version)).all())
            todo = {day: version for day, version in versions.items() if wanted(day)}
            if todo:
                _rebuild(conn, todo, set(versions) - set(todo))
    except LedgerUnavailable:  # read-only, locked or down: answer from raw rows
        return dirty_days(ledger)
    return set(versions) - set(todo)


def dirty_days(ledger: Ledger) -> set[str]:
    """The UTC days whose roll-ups wait to be rebuilt."""
    with ledger.reading() as conn:
        return set(conn.execute(select(DIRTY_DAYS.c.day)).scalars())


def _rebuild(conn, todo: dict[str, int], still_dirty: set[str]) -> None:
    days = sorted(todo)
    # A few days per statement: SQLite limits bound variables and expression depth.
    for start in range(0, len(days), REBUILD_CHUNK):
        chunk = days[start:start + REBUILD_CHUNK]
        for table in TABLES.values():
            conn.execute(delete(table).where(table.c.period.in_(chunk)))
        _insert(conn, raw_rows(conn, Filters(), _day_ranges(chunk)))
    for month in sorted({day[:7] for day in days}):
        for table in TABLES.values():
            conn.execute(delete(table).where(table.c.period == month))
        if still_dirty.isdisjoint(_days_of_month(month)):
            _rebuild_month(conn, month)
    # Only if no write has changed the day since we read its version.
    conn.execute(delete(DIRTY_DAYS).where(DIRTY_DAYS.c.day == bindparam("d"), DIRTY_DAYS.c.version == bindparam("v")),
                 [{"d": day, "v": version} for day, version in todo.items()])


def _rebuild_month(conn, month: str) -> None:
    """The month's rows are its days' rows summed: in SQL where the sums are plain, in Python
    where duration sketches merge."""
    start = datetime.fromisoformat(f"{month}-01").replace(tzinfo=UTC)
    days = WindowPlan(days=[_day_texts((start, _next_month(start)))])
    for name in ("calls", "call_runs"):
        table = TABLES[name]
        keys = [column for column in table.c if column.name not in ("id", "period", "runs", *TOTALS)]
        sums = [func.sum(column).label(column.name) for column in table.c if column.name in ("runs", *TOTALS)]
        conn.execute(table.insert().from_select(
            ["period", *(column.name for column in keys), *(column.name for column in sums)],
            select(literal(month), *keys, *sums).where(_periods(table, days)).group_by(*keys)))
    rows = read_rollups(conn, Filters(), days, ("runs", "nodes"))
    key = ("workflow", "status")
    _insert(conn, Rows(runs=group(rows.runs, key, ("runs", *TOTALS), ("durations",)),
                       nodes=group(rows.nodes, (*key, "node_id"), ("executions",), ("durations",))), period=month)


def _insert(conn, rows: Rows, period: str | None = None) -> None:
    for name, table in TABLES.items():
        batch = getattr(rows, name)
        if batch:
            conn.execute(table.insert(), [_stored(row, period or row["period"]) for row in batch])


def _stored(row: dict[str, Any], period: str) -> dict[str, Any]:
    """A row as its roll-up table holds it: a duration sketch in its JSON form."""
    stored = {**row, "period": period}
    if "durations" in row:
        stored["durations"] = row["durations"].to_json()
    return stored


# -- reading ----------------------------------------------------------------------------------


def read_rollups(conn, filters: Filters, plan: WindowPlan, tables: Iterable[str] = tuple(TABLES),
                 sketches: bool = True) -> Rows:
    """Roll-up rows of the plan's months and days that match the workflow, status and model
    filters (without their duration sketches unless `sketches`)."""
    rows = Rows()
    if not (plan.months or plan.days):
        return rows
    for name in tables:
        table = TABLES[name]
        where = [_periods(table, plan)]
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
        found = [dict(zip(names, row)) for row in conn.execute(select(*columns).where(*where))]
        if "durations" in names:
            for row in found:
                row["durations"] = Sketch.from_json(row["durations"])
        getattr(rows, name).extend(found)
    return rows


def _periods(table, plan: WindowPlan):
    """The plan's roll-up periods as ranges of text: months are 7 characters, days 10."""
    period = table.c.period
    return or_(*(and_(period >= start, period < end, func.length(period) == width)
                 for width, spans in ((7, plan.months), (10, plan.days)) for start, end in spans))


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
    first, last = _floor_day(bounds[0]), _floor_day(bounds[1]) + ONE_DAY
    start = max(_ceil_day(filters.since) if filters.since else first, first)
    end = min(_floor_day(filters.until) if filters.until else last, last)
    if filters.tags or (filters.model and {"runs", "nodes"} & set(tables)) or start >= end:
        plan = WindowPlan(raw=[(filters.since or first, filters.until or last)])
    else:
        still_dirty = refresh(ledger, utc_day(start), utc_day(end))
        plan = plan_window(*bounds, filters.since, filters.until, still_dirty, by_day)
    with ledger.reading() as conn:
        rows = read_rollups(conn, filters, plan, tables, sketches=not by_day)
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
