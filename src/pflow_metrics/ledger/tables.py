"""The SQLAlchemy tables and the statements writers run on them, built once: SQLAlchemy
compiles a statement with bound parameters once and caches it. Only writers import this module
(store.py's write methods); reading runs the SQL text of ledger/sql.py."""

from __future__ import annotations

import functools

from sqlalchemy import bindparam, delete, select

from pflow_metrics.errors import LedgerError
from pflow_metrics.ledger.models import LLMCall, NodeExecution, Run

RUNS = Run.__table__
NODES = NodeExecution.__table__
CALLS = LLMCall.__table__
_IDS = bindparam("ids", expanding=True)
DELETE_NODES = delete(NODES).where(NODES.c.run_id.in_(_IDS))
DELETE_CALLS = delete(CALLS).where(CALLS.c.run_id.in_(_IDS))
SELECT_STARTS = select(RUNS.c.started_at).where(RUNS.c.id.in_(_IDS))
INSERT_NODES = NODES.insert()
INSERT_CALLS = CALLS.insert()


@functools.cache
def upsert_run(dialect: str):
    """INSERT ... ON CONFLICT (id) DO UPDATE for run rows, built once per engine kind."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:
        raise LedgerError(f"unsupported ledger engine {dialect}")
    statement = insert(RUNS)
    return statement.on_conflict_do_update(
        index_elements=[RUNS.c.id],
        set_={column.name: statement.excluded[column.name] for column in RUNS.c if column.name != "id"},
    )
