"""What a query asks for: the window and filters, as SQL conditions with bound parameters.

Every condition gives the same runs on SQLite and PostgreSQL. Workflow globs (`*`, `?`) become
LIKE patterns, at most MAX_PATTERN characters each (SQLite refuses LIKE patterns past 50,000
bytes; an escaped pattern of 1,000 characters stays under 8,000). Tag keys are data, never a
JSON path: SQLite's paths cannot quote a key holding `"`, so there a key is looked up with
json_each instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import String, exists, literal, or_
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from pflow_metrics.errors import UsageError
from pflow_metrics.ledger.store import CALLS, RUNS

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


class json_text(FunctionElement):
    """The text at a top-level key of a JSON object column (NULL when it has no such key), the
    key bound as data: `->>` on PostgreSQL, a json_each lookup on SQLite."""

    type = String()
    name = "json_text"
    inherit_cache = True


@compiles(json_text)
def _json_text(element, compiler, **kw) -> str:
    column, key = (compiler.process(clause, **kw) for clause in element.clauses)
    return f"({column} ->> {key})"


@compiles(json_text, "sqlite")
def _json_text_sqlite(element, compiler, **kw) -> str:
    column, key = (compiler.process(clause, **kw) for clause in element.clauses)
    return f"(SELECT pair.value FROM json_each({column}) AS pair WHERE pair.key = {key})"


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
        tag = json_text(RUNS.c.tags, literal(key, String)) == value
        ci_column = CI_TAGS.get(key)
        conditions.append(or_(tag, RUNS.c[ci_column] == value) if ci_column else tag)
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
