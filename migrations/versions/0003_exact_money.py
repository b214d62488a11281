"""Exact money and 64-bit counts: costs become whole nano-dollars, token and other counts BIGINT.

Float costs are converted to the nearest nano-dollar; a run's totals become the sums of its
calls' (so a run whose stored total disagreed with its calls now agrees), its cost the priced
calls' sum (a lower bound when `unpriced_calls` > 0). Roll-ups are rebuilt from
the raw rows by the next report. On SQLite, INTEGER is already 64-bit, so only the cost columns
change there and no table is copied.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

COUNT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TOKENS = ["input_tokens", "output_tokens", "cache_creation_tokens", "cache_read_tokens", "thinking_tokens"]
COUNTS = {"runs": [*TOKENS, "unpriced_calls", "pid"], "node_executions": ["attempts", "items"],
          "llm_calls": TOKENS, "rollup_dirty_days": ["version"]}
ROLLUPS = ("rollup_runs", "rollup_calls", "rollup_call_runs", "rollup_nodes")


def _set_count_types(type_) -> None:
    if op.get_bind().dialect.name == "sqlite":
        return
    for table, columns in COUNTS.items():
        for column in columns:
            op.alter_column(table, column, type_=type_)


def _rebuild_rollups_later() -> None:
    for table in ROLLUPS:
        op.execute(f"DELETE FROM {table}")
    day = ("substr(started_at, 1, 10)" if op.get_bind().dialect.name == "sqlite"
           else "to_char(started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')")
    op.execute("DELETE FROM rollup_dirty_days")
    op.execute(f"INSERT INTO rollup_dirty_days (day, version) SELECT DISTINCT {day}, 1 FROM runs")


def upgrade() -> None:
    _set_count_types(sa.BigInteger())
    op.add_column("llm_calls", sa.Column("cost_nanousd", COUNT, nullable=True))
    op.execute("UPDATE llm_calls SET cost_nanousd = CAST(round(cost_usd * 1000000000) AS BIGINT)")
    op.drop_column("llm_calls", "cost_usd")
    op.add_column("runs", sa.Column("cost_nanousd", COUNT, nullable=True))
    op.execute("UPDATE runs SET cost_nanousd = (SELECT coalesce(sum(cost_nanousd), 0) FROM llm_calls "
               "WHERE llm_calls.run_id = runs.id)")
    op.drop_column("runs", "cost_usd")
    derived = [f"{name} = (SELECT coalesce(sum({name}), 0) FROM llm_calls WHERE llm_calls.run_id = runs.id)"
               for name in TOKENS]
    op.execute(f"UPDATE runs SET {', '.join(derived)}, unpriced_calls = (SELECT count(*) FROM llm_calls "
               "WHERE llm_calls.run_id = runs.id AND llm_calls.cost_nanousd IS NULL)")
    for table in ROLLUPS[:2]:
        op.add_column(table, sa.Column("cost_nanousd", sa.BigInteger(), nullable=False, server_default="0"))
        op.drop_column(table, "cost_usd")
    _rebuild_rollups_later()


def downgrade() -> None:
    for table in ROLLUPS[:2]:
        op.add_column(table, sa.Column("cost_usd", sa.Float(), nullable=False, server_default="0"))
        op.drop_column(table, "cost_nanousd")
    for table in ("runs", "llm_calls"):
        op.add_column(table, sa.Column("cost_usd", sa.Float(), nullable=True))
        op.execute(f"UPDATE {table} SET cost_usd = cost_nanousd / 1000000000.0")
        op.drop_column(table, "cost_nanousd")
    # 0002 kept a run's cost NULL when any of its calls was unpriced.
    op.execute("UPDATE runs SET cost_usd = NULL WHERE unpriced_calls > 0")
    _set_count_types(sa.Integer())
    _rebuild_rollups_later()
