"""Cross-run questions, answered with SQL the CLI never writes: cost by key, reports, budgets,
run lists, export and prune. Every filter is a bound parameter.

A run belongs to a window by its start time; its calls go with it.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, distinct, exists, func, or_, select

from pflow_metrics.ledger.store import CALLS, NODES, RUNS, Ledger
from pflow_metrics.record import RunRecord, utcnow

COST_KEYS = ("model", "provider", "workflow", "node", "phase", "day", "week", "month")
TOKEN_COLUMNS = ("input_tokens", "output_tokens", "cache_creation_tokens", "cache_read_tokens", "thinking_tokens")


@dataclass
class Filters:
    since: datetime | None = None
    until: datetime | None = None
    workflows: list[str] = field(default_factory=list)  # glob patterns
    model: str | None = None
    status: str | None = None
    tags: dict[str, str] = field(default_factory=dict)


def glob_to_like(pattern: str) -> str:
    escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%").replace("?", "_")


def run_conditions(filters: Filters) -> list:
    conditions = []
    if filters.since is not None:
        conditions.append(RUNS.c.started_at >= filters.since)
    if filters.until is not None:
        conditions.append(RUNS.c.started_at < filters.until)
    if filters.workflows:
        conditions.append(or_(*(RUNS.c.workflow.like(glob_to_like(p), escape="\\") for p in filters.workflows)))
    if filters.status:
        conditions.append(RUNS.c.status == filters.status)
    for key, value in filters.tags.items():
        conditions.append(RUNS.c.tags[key].as_string() == value)
    if filters.model:
        conditions.append(exists().where(CALLS.c.run_id == RUNS.c.id, CALLS.c.model == filters.model))
    return conditions


def _bucket(dialect: str, key: str):
    """Day, ISO week or month of the run's start, in UTC, as text."""
    column = RUNS.c.started_at
    if dialect == "sqlite":
        formats = {"day": "%Y-%m-%d", "week": "%Y-W%W", "month": "%Y-%m"}
        return func.strftime(formats[key], column)
    formats = {"day": "YYYY-MM-DD", "week": 'IYYY-"W"IW', "month": "YYYY-MM"}
    return func.to_char(func.timezone("UTC", column), formats[key])


def _key_column(dialect: str, key: str):
    return {
        "model": CALLS.c.model, "provider": CALLS.c.provider, "workflow": RUNS.c.workflow,
        "node": CALLS.c.node_id, "phase": CALLS.c.phase,
    }.get(key) if key not in ("day", "week", "month") else _bucket(dialect, key)


def _call_aggregates() -> list:
    return [
        func.count(CALLS.c.id).label("calls"),
        func.count(distinct(CALLS.c.run_id)).label("runs"),
        *(func.coalesce(func.sum(getattr(CALLS.c, name)), 0).label(name) for name in TOKEN_COLUMNS),
        func.coalesce(func.sum(CALLS.c.cost_usd), 0.0).label("cost_usd"),
        func.coalesce(func.sum(case((CALLS.c.cost_usd.is_(None), 1), else_=0)), 0).label("unpriced_calls"),
    ]


def _call_conditions(filters: Filters) -> list:
    conditions = run_conditions(Filters(filters.since, filters.until, filters.workflows, None, filters.status,
                                        filters.tags))
    if filters.model:
        conditions.append(CALLS.c.model == filters.model)
    return conditions


def _as_row(row) -> dict[str, Any]:
    data = dict(row._mapping)
    for name in ("calls", "runs", "unpriced_calls", *TOKEN_COLUMNS):
        data[name] = int(data[name] or 0)
    data["cost_usd"] = float(data["cost_usd"] or 0.0)
    return data


def cost_by(ledger: Ledger, filters: Filters, keys: list[str]) -> dict[str, Any]:
    """{"rows": [{key..., calls, runs, tokens..., cost_usd, unpriced_calls, share}], "total": {...}}"""
    dialect = ledger.engine.dialect.name
    columns = [_key_column(dialect, key).label(key) for key in keys]
    base = select(*columns, *_call_aggregates()).select_from(CALLS.join(RUNS, CALLS.c.run_id == RUNS.c.id))
    base = base.where(*_call_conditions(filters))
    total_query = select(*_call_aggregates()).select_from(CALLS.join(RUNS, CALLS.c.run_id == RUNS.c.id)).where(
        *_call_conditions(filters))
    with ledger.engine.connect() as conn:
        rows = [_as_row(row) for row in conn.execute(base.group_by(*columns).order_by(func.sum(CALLS.c.cost_usd).desc()))]
        total = _as_row(conn.execute(total_query).one())
    for row in rows:
        row["share"] = row["cost_usd"] / total["cost_usd"] if total["cost_usd"] else 0.0
    return {"rows": rows, "total": total}


def list_runs(ledger: Ledger, filters: Filters, limit: int = 20) -> list[dict[str, Any]]:
    query = (select(RUNS.c.id, RUNS.c.workflow, RUNS.c.status, RUNS.c.started_at, RUNS.c.duration_ms,
                    RUNS.c.cost_usd, RUNS.c.unpriced_calls, RUNS.c.input_tokens, RUNS.c.output_tokens, RUNS.c.error)
             .where(*run_conditions(filters)).order_by(RUNS.c.started_at.desc()).limit(limit))
    with ledger.engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(query)]


def percentile(values: list[float], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))]


def report(ledger: Ledger, filters: Filters) -> dict[str, Any]:
    """Everything `pflow-metrics report` shows, for the window and the one before it."""
    conditions = run_conditions(filters)
    joined = CALLS.join(RUNS, CALLS.c.run_id == RUNS.c.id)
    with ledger.engine.connect() as conn:
        statuses = dict(conn.execute(select(RUNS.c.status, func.count()).where(*conditions).group_by(RUNS.c.status)).all())
        durations = [d for (d,) in conn.execute(select(RUNS.c.duration_ms).where(*conditions)) if d is not None]
        totals = _as_row(conn.execute(select(*_call_aggregates()).select_from(joined).where(*_call_conditions(filters))).one())
        workflows = [dict(r._mapping) for r in conn.execute(
            select(RUNS.c.workflow, func.count(distinct(RUNS.c.id)).label("runs"),
                   func.coalesce(func.sum(CALLS.c.cost_usd), 0.0).label("cost_usd"))
            .select_from(RUNS.outerjoin(CALLS, CALLS.c.run_id == RUNS.c.id)).where(*conditions)
            .group_by(RUNS.c.workflow).order_by(func.sum(CALLS.c.cost_usd).desc().nulls_last()).limit(5))]
        node_costs = [dict(r._mapping) for r in conn.execute(
            select(RUNS.c.workflow, CALLS.c.node_id, func.coalesce(func.sum(CALLS.c.cost_usd), 0.0).label("cost_usd"))
            .select_from(joined).where(*_call_conditions(filters))
            .group_by(RUNS.c.workflow, CALLS.c.node_id).order_by(func.sum(CALLS.c.cost_usd).desc().nulls_last()).limit(5))]
        node_times: dict[tuple[str, str], list[float]] = {}
        for workflow, node_id, duration in conn.execute(
            select(RUNS.c.workflow, NODES.c.node_id, NODES.c.duration_ms)
            .select_from(NODES.join(RUNS, NODES.c.run_id == RUNS.c.id)).where(*conditions)
        ):
            node_times.setdefault((workflow, node_id), []).append(duration)
        per_day = [dict(r._mapping) for r in conn.execute(
            select(_bucket(ledger.engine.dialect.name, "day").label("day"),
                   func.coalesce(func.sum(CALLS.c.cost_usd), 0.0).label("cost_usd"))
            .select_from(joined).where(*_call_conditions(filters)).group_by("day").order_by("day"))]
        unpriced = sorted(m for (m,) in conn.execute(
            select(CALLS.c.model).distinct().select_from(joined)
            .where(*_call_conditions(filters), CALLS.c.cost_usd.is_(None))))
        previous = None
        if filters.since is not None:
            end = filters.until or utcnow()
            before = Filters(filters.since - (end - filters.since), filters.since, filters.workflows, filters.model,
                             filters.status, filters.tags)
            previous = _as_row(conn.execute(select(*_call_aggregates()).select_from(joined)
                                            .where(*_call_conditions(before))).one())
            previous["runs_total"] = conn.execute(select(func.count()).select_from(RUNS)
                                                  .where(*run_conditions(before))).scalar()
    runs = sum(statuses.values())
    slowest = sorted(({"workflow": w, "node_id": n, "p95_ms": percentile(d, 0.95), "executions": len(d)}
                      for (w, n), d in node_times.items()), key=lambda row: -row["p95_ms"])[:5]
    return {
        "runs": runs,
        "statuses": statuses,
        "success_rate": statuses.get("success", 0) / runs if runs else None,
        "cost_usd": totals["cost_usd"],
        "cost_per_run": totals["cost_usd"] / runs if runs else None,
        "tokens": {name: totals[name] for name in TOKEN_COLUMNS},
        "llm_calls": totals["calls"],
        "duration_p50_ms": statistics.median(durations) if durations else None,
        "duration_p95_ms": percentile(durations, 0.95),
        "top_workflows": workflows,
        "expensive_nodes": node_costs,
        "slowest_nodes": slowest,
        "cost_per_day": per_day,
        "unpriced_models": unpriced,
        "previous": previous,
    }


def spend(ledger: Ledger, filters: Filters) -> dict[str, Any]:
    """Priced spend and unpriced call count in the window, and each run's own cost."""
    joined = CALLS.join(RUNS, CALLS.c.run_id == RUNS.c.id)
    with ledger.engine.connect() as conn:
        total = _as_row(conn.execute(select(*_call_aggregates()).select_from(joined).where(*_call_conditions(filters))).one())
        per_run = [dict(r._mapping) for r in conn.execute(
            select(RUNS.c.id, RUNS.c.workflow, RUNS.c.started_at,
                   func.coalesce(func.sum(CALLS.c.cost_usd), 0.0).label("cost_usd"),
                   func.coalesce(func.sum(case((and_(CALLS.c.id.is_not(None), CALLS.c.cost_usd.is_(None)), 1),
                                               else_=0)), 0).label("unpriced_calls"))
            .select_from(RUNS.outerjoin(CALLS, CALLS.c.run_id == RUNS.c.id)).where(*run_conditions(filters))
            .group_by(RUNS.c.id, RUNS.c.workflow, RUNS.c.started_at))]
    return {"cost_usd": total["cost_usd"], "unpriced_calls": total["unpriced_calls"], "runs": per_run}


def iter_records(ledger: Ledger, filters: Filters, chunk: int = 500) -> Iterator[RunRecord]:
    """Run records in the window, oldest first, read a chunk at a time."""
    with ledger.engine.connect() as conn:
        ids = [run_id for (run_id,) in conn.execute(
            select(RUNS.c.id).where(*run_conditions(filters)).order_by(RUNS.c.started_at))]
    for start in range(0, len(ids), chunk):
        yield from ledger.iter_runs(ids[start:start + chunk])


def prune(ledger: Ledger, older_than: timedelta, dry_run: bool = False) -> int:
    """Delete runs (with their nodes and calls) that started before now - older_than."""
    cutoff = utcnow() - older_than
    with ledger.engine.connect() as conn:
        count = conn.execute(select(func.count()).select_from(RUNS).where(RUNS.c.started_at < cutoff)).scalar()
    if count and not dry_run:
        ledger.delete_runs_started_before(cutoff)
    return count
