"""What a query asks for: the window and filters, as SQL conditions with bound parameters
(ledger/sql.py), the one definition every query of the ledger uses.

Every condition gives the same runs on SQLite and PostgreSQL. Workflow globs (`*`, `?`) become
LIKE patterns, at most MAX_PATTERN characters each (SQLite refuses LIKE patterns past 50,000
bytes; an escaped pattern of 1,000 characters stays under 8,000). Tag keys are data, never a
JSON path (sql.tag_value). This module imports no SQLAlchemy.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime

from pflow_metrics.errors import UsageError
from pflow_metrics.ledger.sql import Sql, any_of, escape_like, like, tag_value

MAX_PATTERN = 1_000  # characters in one --workflow pattern
# The CI context's commit and branch match --tag like tags: `--tag git_sha=abc` finds a run
# whose CI context recorded commit abc (or that carries a tag of that name).
CI_TAGS = {"git_sha": "ci_git_sha", "git_branch": "ci_git_branch"}


@dataclass
class Filters:
    since: datetime | None = None
    until: datetime | None = None
    workflows: list[str] = field(default_factory=list)  # glob patterns
    model: str | None = None
    status: str | None = None
    tags: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for pattern in self.workflows:
            if len(pattern) > MAX_PATTERN:
                raise UsageError(f"--workflow: a pattern of {len(pattern):,} characters; "
                                 f"at most {MAX_PATTERN:,} are taken")


def glob_to_like(pattern: str) -> str:
    return escape_like(pattern).replace("*", "%").replace("?", "_")


def workflow_condition(column: str, patterns: list[str]) -> Sql:
    return any_of([like(column, glob_to_like(pattern)) for pattern in patterns])


def ranges_condition(ranges: list[tuple[datetime, datetime]]) -> Sql:
    """Runs that started in any of these [start, end) ranges."""
    return any_of([Sql("runs.started_at >= ? AND runs.started_at < ?", (start, end)) for start, end in ranges])


def run_conditions(filters: Filters, dialect: str) -> list[Sql]:
    """Conditions on runs: a run is in the window by its start; --model keeps runs that called it."""
    conditions = []
    if filters.since is not None:
        conditions.append(Sql("runs.started_at >= ?", (filters.since,)))
    if filters.until is not None:
        conditions.append(Sql("runs.started_at < ?", (filters.until,)))
    if filters.workflows:
        conditions.append(workflow_condition("runs.workflow", filters.workflows))
    if filters.status:
        conditions.append(Sql("runs.status = ?", (filters.status,)))
    for key, value in filters.tags.items():
        tag = tag_value(dialect, key) + Sql(" = ?", (value,))
        ci_column = CI_TAGS.get(key)
        conditions.append(any_of([tag, Sql(f"runs.{ci_column} = ?", (value,))]) if ci_column else tag)
    if filters.model:
        conditions.append(Sql("EXISTS (SELECT 1 FROM llm_calls WHERE llm_calls.run_id = runs.id "
                              "AND llm_calls.model = ?)", (filters.model,)))
    return conditions


def call_conditions(filters: Filters, dialect: str) -> list[Sql]:
    """Conditions on calls joined to their runs: --model keeps only that model's calls."""
    conditions = run_conditions(replace(filters, model=None), dialect)
    if filters.model:
        conditions.append(Sql("llm_calls.model = ?", (filters.model,)))
    return conditions
