"""What a query asks for: the window and filters, as SQL conditions with bound parameters."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import exists, or_

from pflow_metrics.ledger.store import CALLS, RUNS


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


def workflow_condition(column, patterns: list[str]):
    return or_(*(column.like(glob_to_like(pattern), escape="\\") for pattern in patterns))


def run_conditions(filters: Filters) -> list:
    """Conditions on runs: a run is in the window by its start; --model keeps runs that called it."""
    conditions = []
    if filters.since is not None:
        conditions.append(RUNS.c.started_at >= filters.since)
    if filters.until is not None:
        conditions.append(RUNS.c.started_at < filters.until)
    if filters.workflows:
        conditions.append(workflow_condition(RUNS.c.workflow, filters.workflows))
    if filters.status:
        conditions.append(RUNS.c.status == filters.status)
    for key, value in filters.tags.items():
        conditions.append(RUNS.c.tags[key].as_string() == value)
    if filters.model:
        conditions.append(exists().where(CALLS.c.run_id == RUNS.c.id, CALLS.c.model == filters.model))
    return conditions


def call_conditions(filters: Filters) -> list:
    """Conditions on calls joined to their runs: --model keeps only that model's calls."""
    conditions = run_conditions(Filters(filters.since, filters.until, filters.workflows, None, filters.status,
                                        filters.tags))
    if filters.model:
        conditions.append(CALLS.c.model == filters.model)
    return conditions
