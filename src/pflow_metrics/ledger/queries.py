"""Cross-run questions, answered with SQL the CLI never writes: cost by key, reports, budgets,
run lists, export and prune. Every filter is a bound parameter. The SQL is text shared by both
engines (ledger/sql.py), so that this module imports no SQLAlchemy.

A run belongs to a window by its start time; its calls go with it. `cost_by` and `report` read
roll-ups (ledger/rollups.py), so their time grows with the window, not with the ledger.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from pflow_metrics.ledger.filters import Filters, call_conditions, run_conditions
from pflow_metrics.ledger.rollups import CALL_KEYS, TOKEN_COLUMNS, TOTALS, group, window_rows
from pflow_metrics.ledger.sketch import Sketch
from pflow_metrics.ledger.sql import Sql, all_of, utc_day_sql
from pflow_metrics.ledger.store import Ledger
from pflow_metrics.money import ZERO, from_nanos, known_cost, ratio, usd
from pflow_metrics.record import RunRecord, utcnow
from pflow_metrics.timewindow import EARLIEST

COST_KEYS = ("model", "provider", "workflow", "node", "phase", "day", "week", "month")
TOP = 5


def _key_value(row: dict[str, Any], key: str) -> Any:
    """The value of a cost --by key for a roll-up row (call_runs rows carry theirs in `value`)."""
    if key in CALL_KEYS:
        return row["value"] if "dimension" in row else row[CALL_KEYS[key]]
    if key == "workflow":
        return row["workflow"]
    if key == "month":
        return row["period"][:7]
    if key == "week":
        year, week, _ = date.fromisoformat(row["period"]).isocalendar()
        return f"{year}-W{week:02d}"
    return row["period"]  # day


def _group_by(rows: Iterable[dict[str, Any]], keys: list[str], sums: Iterable[str]) -> dict[tuple, dict[str, Any]]:
    """The `sums` of the rows of each group of cost --by `keys`, keyed by the tuple of the
    group's key values. Those are grouped under "by:<key>" names that cannot clash with the
    rows' own columns ("day" is a row's "period"), which no caller sees."""
    by = [f"by:{key}" for key in keys]
    keyed = ({**row, **{name: _key_value(row, key) for name, key in zip(by, keys)}} for row in rows)
    return {tuple(total.pop(name) for name in by): total for total in group(keyed, by, sums)}


def _numbers(row: dict[str, Any]) -> dict[str, Any]:
    """Counts as ints and the cost as exact dollars: None when no call was priced (unknown is
    not zero), a lower bound (`cost_is_lower_bound`) when some were not."""
    numbers = {name: int(row[name]) for name in TOTALS if name != "cost_nanousd"}
    numbers["cost_usd"], numbers["cost_is_lower_bound"] = known_cost(
        from_nanos(row["cost_nanousd"]), numbers["calls"], numbers["unpriced_calls"])
    return numbers


def _cost(cost: Decimal | None) -> Decimal:
    """A cost for sorting and sharing: unknown counts as nothing."""
    return cost if cost is not None else ZERO


def _totals(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The TOTALS of all these rows (zeros for none)."""
    return _numbers(group(rows, (), TOTALS)[0] if rows else dict.fromkeys(TOTALS, 0))


def cost_by(ledger: Ledger, filters: Filters, keys: list[str]) -> dict[str, Any]:
    """{"rows": [{key..., calls, runs, tokens..., cost_usd, unpriced_calls, share}], "total": {...}}"""
    counted = {key for key in keys if key in CALL_KEYS} | ({"model"} if filters.model else set())
    rows = window_rows(ledger, filters, ("calls", "call_runs"), by_day=bool({"day", "week"} & set(keys)))
    totals = _group_by(rows.calls, keys, TOTALS)
    if len(counted) <= 1:
        # Runs with a call of each group, from the counts kept for one call key at a time.
        dimension = next(iter(counted), "")
        counts = [row for row in rows.call_runs if row["dimension"] == dimension]
        runs = {index: row["runs"] for index, row in _group_by(counts, keys, ("runs",)).items()}
        # A run with calls to two models is one run in the total: count it under "" (or --model).
        whole = "model" if filters.model else ""
        runs_total = sum(row["runs"] for row in rows.call_runs if row["dimension"] == whole)
    else:
        runs, runs_total = _runs_by_call_keys(ledger, filters, keys)
    result = [{**dict(zip(keys, index)), **_numbers(row), "runs": runs.get(index, 0)} for index, row in totals.items()]
    result.sort(key=lambda row: (-_cost(row["cost_usd"]), *(str(row[key]) for key in keys)))
    total = {**_totals(rows.calls), "runs": runs_total}
    for row in result:
        # Each row's part of the priced total; None for a row nobody could price.
        row["share"] = (ratio(row["cost_usd"], total["cost_usd"]) if total["cost_usd"] else ZERO) \
            if row["cost_usd"] is not None else None
    return {"rows": result, "total": total}


def _runs_by_call_keys(ledger: Ledger, filters: Filters, keys: list[str]) -> tuple[dict[tuple, int], int]:
    """Distinct runs per group when the keys name two or more call properties: the roll-ups
    count runs for one call key at a time, so these come from the calls themselves."""
    with ledger.sql() as conn:
        def column(key: str) -> tuple[str, str]:  # named as in roll-up rows, so that _key_value reads them alike
            if key in CALL_KEYS:
                return f"llm_calls.{CALL_KEYS[key]}", CALL_KEYS[key]
            return ("runs.workflow", "workflow") if key == "workflow" else (utc_day_sql(conn.dialect), "period")

        grouping = dict(map(column, keys))  # day, week and month share "period"
        where = Sql(" FROM llm_calls JOIN runs ON llm_calls.run_id = runs.id WHERE ") \
            + all_of(call_conditions(filters, conn.dialect))
        selected = ", ".join(f"{expression} AS {name}" for expression, name in grouping.items())
        rows = conn.dicts(Sql(f"SELECT {selected}, count(DISTINCT llm_calls.run_id) AS runs") + where
                          + f" GROUP BY {', '.join(grouping)}")
        total = conn.scalar(Sql("SELECT count(DISTINCT llm_calls.run_id)") + where)
    return {index: row["runs"] for index, row in _group_by(rows, keys, ("runs",)).items()}, total


def _runs_where(filters: Filters, dialect: str) -> Sql:
    return Sql(" FROM runs WHERE ") + all_of(run_conditions(filters, dialect))


def list_runs(ledger: Ledger, filters: Filters, limit: int = 20) -> list[dict[str, Any]]:
    with ledger.sql() as conn:
        rows = conn.dicts(Sql("SELECT id, workflow, status, started_at, duration_ms, cost_nanousd, unpriced_calls, "
                              "input_tokens, output_tokens, error, "
                              "(SELECT count(*) FROM llm_calls WHERE llm_calls.run_id = runs.id) AS calls")
                          + _runs_where(filters, conn.dialect) + Sql(" ORDER BY started_at DESC LIMIT ?", (limit,)))
    for row in rows:
        row["cost_usd"], row["cost_is_lower_bound"] = known_cost(
            from_nanos(row.pop("cost_nanousd") or 0), row.pop("calls"), row["unpriced_calls"])
    return rows


def count_runs(ledger: Ledger, filters: Filters) -> int:
    """How many runs match."""
    with ledger.sql() as conn:
        return conn.scalar(Sql("SELECT count(*)") + _runs_where(filters, conn.dialect))


# -- the report -------------------------------------------------------------------------------
#
# Typed rows whose fields, in order, are the keys of `report --format json` (Report.to_dict).
# A row that carries what its calls add up to lists its own key fields in a small base class and
# inherits Totals after it, as in DayCost(Totals, _Day): a dataclass takes the fields of its
# bases from the last base to the first, so the key fields come first, as in the JSON form.


class _Fields:
    """The base of report rows (see the note above)."""


@dataclass(frozen=True)
class Totals(_Fields):
    """What a set of LLM calls adds up to (the token fields are TOKEN_COLUMNS). `cost_usd` is
    None when no call was priced (unknown is not zero), a lower bound (`cost_is_lower_bound`)
    when some were not."""

    calls: int
    input_tokens: int
    output_tokens: int
    cache_creation_tokens: int
    cache_read_tokens: int
    thinking_tokens: int
    unpriced_calls: int
    cost_usd: Decimal | None
    cost_is_lower_bound: bool


@dataclass(frozen=True)
class _Workflow(_Fields):
    workflow: str
    runs: int


@dataclass(frozen=True)
class WorkflowCost(Totals, _Workflow):
    """A workflow's runs in the window and what their calls cost."""


@dataclass(frozen=True)
class _Node(_Fields):
    workflow: str
    node_id: str


@dataclass(frozen=True)
class NodeCost(Totals, _Node):
    """What the LLM calls of a workflow's node cost."""


@dataclass(frozen=True)
class SlowNode(_Fields):
    """A workflow's node by its 95th percentile duration (within sketch.ACCURACY)."""

    workflow: str
    node_id: str
    p95_ms: float
    executions: int


@dataclass(frozen=True)
class _Day(_Fields):
    day: str  # YYYY-MM-DD, UTC


@dataclass(frozen=True)
class DayCost(Totals, _Day):
    """What the calls of the runs started on a UTC day cost."""


@dataclass(frozen=True)
class PreviousWindow(Totals):
    """The window as long as the report's, just before it: its calls' totals and its runs."""

    runs_total: int


@dataclass(frozen=True)
class Report(_Fields):
    """Everything `pflow-metrics report` shows, for the window and the one before it (None
    when the window has no start). The top lists hold at most TOP rows, costliest or slowest
    first; durations are within sketch.ACCURACY."""

    runs: int
    statuses: dict[str, int]  # runs by status
    success_rate: float | None  # None without runs
    cost_usd: Decimal | None
    cost_is_lower_bound: bool
    cost_per_run: Decimal | None
    tokens: dict[str, int]  # by TOKEN_COLUMNS name
    calls: int
    duration_p50_ms: float | None
    duration_p95_ms: float | None
    top_workflows: list[WorkflowCost]
    expensive_nodes: list[NodeCost]
    slowest_nodes: list[SlowNode]
    cost_per_day: list[DayCost]  # oldest first
    unpriced_models: list[str]  # sorted
    previous: PreviousWindow | None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (`report --format json`): every row a dict with its fields in order."""
        return asdict(self)


def report(ledger: Ledger, filters: Filters) -> Report:
    """Everything `pflow-metrics report` shows, for the window and the one before it."""
    rows = window_rows(ledger, filters, ("runs", "calls", "nodes"))
    runs_rows = rows.runs
    statuses = {row["status"]: row["runs"] for row in group(runs_rows, ("status",), ("runs",))}
    runs = sum(statuses.values())
    totals = Totals(**_totals(runs_rows))
    durations = group(runs_rows, (), (), ("durations",))[0]["durations"] if runs_rows else Sketch()
    workflows = sorted((WorkflowCost(workflow=row["workflow"], runs=row["runs"], **_numbers(row))
                        for row in group(runs_rows, ("workflow",), ("runs", *TOTALS))),
                       key=lambda row: -_cost(row.cost_usd))
    node_costs = sorted((NodeCost(workflow=row["workflow"], node_id=row["node_id"], **_numbers(row))
                         for row in group(rows.calls, ("workflow", "node_id"), TOTALS)),
                        key=lambda row: -_cost(row.cost_usd))
    slowest = sorted((SlowNode(workflow=row["workflow"], node_id=row["node_id"],
                               p95_ms=row["durations"].quantile(0.95), executions=row["executions"])
                      for row in group(rows.nodes, ("workflow", "node_id"), ("executions",), ("durations",))),
                     key=lambda row: -row.p95_ms)
    daily = window_rows(ledger, filters, ("runs",), by_day=True).runs
    per_day = [DayCost(day=row["period"], **_numbers(row))
               for row in sorted(group(daily, ("period",), TOTALS), key=lambda row: row["period"])]
    previous = None
    end = filters.until or utcnow()
    if filters.since is not None and filters.since < end:
        # The window as long as this one just before it, from the earliest a run may start.
        before = Filters(max(EARLIEST, filters.since - (end - filters.since)), filters.since, filters.workflows,
                         filters.model, filters.status, filters.tags)
        earlier = window_rows(ledger, before, ("runs",)).runs
        previous = PreviousWindow(**_totals(earlier), runs_total=sum(row["runs"] for row in earlier))
    return Report(
        runs=runs,
        statuses=statuses,
        success_rate=statuses.get("success", 0) / runs if runs else None,
        cost_usd=totals.cost_usd,
        cost_is_lower_bound=totals.cost_is_lower_bound,
        cost_per_run=usd(totals.cost_usd / runs) if runs and totals.cost_usd is not None else None,
        tokens={name: getattr(totals, name) for name in TOKEN_COLUMNS},
        calls=totals.calls,
        duration_p50_ms=durations.quantile(0.5),
        duration_p95_ms=durations.quantile(0.95),
        top_workflows=workflows[:TOP],
        expensive_nodes=node_costs[:TOP],
        slowest_nodes=slowest[:TOP],
        cost_per_day=per_day,
        unpriced_models=sorted({row["model"] for row in rows.calls if row["unpriced_calls"]}),
        previous=previous,
    )


@dataclass(frozen=True)
class _DayModel(_Fields):
    day: str  # YYYY-MM-DD, UTC
    model: str


@dataclass(frozen=True)
class DayModelCost(Totals, _DayModel):
    """What one model's calls in the runs started on a UTC day cost."""


@dataclass(frozen=True)
class DayRuns(_Fields):
    """The runs started on a UTC day, by status."""

    day: str
    runs: int
    statuses: dict[str, int]


@dataclass(frozen=True)
class WorkflowDurations(_Fields):
    """A workflow's run durations in the window (within sketch.ACCURACY)."""

    workflow: str
    runs: int
    p50_ms: float | None
    p95_ms: float | None


@dataclass(frozen=True)
class ReportBreakdown(_Fields):
    """What the HTML report draws beyond the Report: each day's cost by model and runs by
    status (oldest first), and every workflow's durations (slowest p95 first)."""

    cost_per_day_by_model: list[DayModelCost]
    runs_per_day: list[DayRuns]
    workflow_durations: list[WorkflowDurations]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def report_breakdown(ledger: Ledger, filters: Filters) -> ReportBreakdown:
    """The same window as `report`, broken down per day and model, day and status, and workflow."""
    daily = window_rows(ledger, filters, ("runs", "calls"), by_day=True)
    by_model = [DayModelCost(day=row["period"], model=row["model"], **_numbers(row))
                for row in sorted(group(daily.calls, ("period", "model"), TOTALS),
                                  key=lambda row: (row["period"], row["model"]))]
    per_day: dict[str, dict[str, int]] = {}
    for row in group(daily.runs, ("period", "status"), ("runs",)):
        per_day.setdefault(row["period"], {})[row["status"]] = row["runs"]
    durations = [WorkflowDurations(workflow=row["workflow"], runs=row["runs"], p50_ms=row["durations"].quantile(0.5),
                                   p95_ms=row["durations"].quantile(0.95))
                 for row in group(window_rows(ledger, filters, ("runs",)).runs, ("workflow",), ("runs",),
                                  ("durations",))]
    return ReportBreakdown(
        cost_per_day_by_model=by_model,
        runs_per_day=[DayRuns(day=day, runs=sum(statuses.values()), statuses=dict(sorted(statuses.items())))
                      for day, statuses in sorted(per_day.items())],
        workflow_durations=sorted(durations, key=lambda row: (-(row.p95_ms or 0), row.workflow)),
    )


def _of_run(value: str, filters: Filters) -> Sql:
    """A figure of each run's calls (of --model's only, with it): correlated per run, not a
    GROUP BY, which SQLite would answer by walking every run in id order."""
    return Sql(f"(SELECT {value} FROM llm_calls WHERE llm_calls.run_id = runs.id"
               + (" AND llm_calls.model = ?)" if filters.model else ")"), (filters.model,) if filters.model else ())


PRICED = "coalesce(sum(llm_calls.cost_nanousd), 0)"
UNPRICED = "count(llm_calls.id) - count(llm_calls.cost_nanousd)"


def spend(ledger: Ledger, filters: Filters) -> dict[str, Any]:
    """Priced spend (exact) and unpriced call count in the window, and each run's own."""
    with ledger.sql() as conn:
        runs = conn.dicts(Sql("SELECT id, workflow, started_at, ") + _of_run(PRICED, filters) + " AS cost_nanousd, "
                          + _of_run(UNPRICED, filters) + " AS unpriced_calls" + _runs_where(filters, conn.dialect))
    for run in runs:
        run["cost_usd"] = from_nanos(run.pop("cost_nanousd"))
        run["unpriced_calls"] = int(run["unpriced_calls"])
    return {"cost_usd": sum((run["cost_usd"] for run in runs), ZERO),
            "unpriced_calls": sum(run["unpriced_calls"] for run in runs), "runs": runs}


def window_spend(ledger: Ledger, filters: Filters) -> dict[str, Any]:
    """`spend` without each run's own: read from the roll-ups, so a year costs what a day does."""
    runs = window_rows(ledger, filters, ("runs",), durations=False).runs
    total = group(runs, (), ("runs", "cost_nanousd", "unpriced_calls"))[0] if runs else None
    return {"cost_usd": from_nanos(total["cost_nanousd"]) if total else ZERO,
            "unpriced_calls": int(total["unpriced_calls"]) if total else 0, "runs": int(total["runs"]) if total else 0}


def run_values(ledger: Ledger, filters: Filters) -> list[dict[str, Any]]:
    """One dict per matching run, oldest first: run_id, workflow, status, started_at,
    duration_ms, llm_calls, tokens (every kind summed), cost_usd (what its priced calls cost,
    exact), unpriced_calls and tags. With --model, the call figures are that model's calls."""
    tokens = " + ".join(f"llm_calls.{name}" for name in TOKEN_COLUMNS)
    with ledger.sql() as conn:
        rows = conn.dicts(
            Sql("SELECT id AS run_id, workflow, status, started_at, duration_ms, ")
            + _of_run("count(llm_calls.id)", filters) + " AS llm_calls, "
            + _of_run(f"coalesce(sum({tokens}), 0)", filters) + " AS tokens, "
            + _of_run(PRICED, filters) + " AS cost_nanousd, "
            + _of_run(UNPRICED, filters) + " AS unpriced_calls, tags"
            + _runs_where(filters, conn.dialect) + " ORDER BY started_at, id")
    for row in rows:
        row["cost_usd"] = from_nanos(row.pop("cost_nanousd"))
        row["tags"] = dict(row["tags"] or {})
        for name in ("llm_calls", "tokens", "unpriced_calls"):
            row[name] = int(row[name])
    return [{key: row[key] for key in RUN_VALUES} for row in rows]


RUN_VALUES = ("run_id", "workflow", "status", "started_at", "duration_ms", "llm_calls", "tokens", "cost_usd",
              "unpriced_calls", "tags")


def iter_records(ledger: Ledger, filters: Filters) -> Iterator[RunRecord]:
    """Run records in the window, oldest first, read a chunk at a time (Ledger.iter_runs)."""
    with ledger.sql() as conn:
        ids = [run_id for (run_id,) in conn.rows(Sql("SELECT id") + _runs_where(filters, conn.dialect)
                                                   + " ORDER BY started_at")]
    yield from ledger.iter_runs(ids)


PRUNE_BATCH = 1_000  # runs deleted per transaction when prune reports progress


def prune(ledger: Ledger, older_than: timedelta, dry_run: bool = False,
          progress: Callable[[int, int], None] | None = None) -> int:
    """Delete runs (with their nodes and calls) that started before now - older_than. With
    `progress`, they go oldest first, about PRUNE_BATCH at a time, and `progress(deleted,
    total)` is told after each batch (the CLI draws a bar with it)."""
    cutoff = utcnow() - older_than
    old = Filters(until=cutoff)
    count = count_runs(ledger, old)
    if not count or dry_run:
        return count
    if progress is None:
        ledger.delete_runs_started_before(cutoff)
        return count
    left = count
    while left:
        progress(count - left, count)
        with ledger.sql() as conn:  # the batch ends before the start of the run PRUNE_BATCH places on
            found = conn.dicts(Sql("SELECT started_at") + _runs_where(old, conn.dialect)
                               + Sql(" ORDER BY started_at LIMIT 1 OFFSET ?", (PRUNE_BATCH,)))
        ledger.delete_runs_started_before(found[0]["started_at"] if found else cutoff)
        before, left = left, count_runs(ledger, old)
        if left == before:  # more than a batch of runs share one start: the rest at once
            ledger.delete_runs_started_before(cutoff)
            left = count_runs(ledger, old)
    progress(count, count)
    return count
