"""Daily and monthly roll-ups that reports read instead of every call.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TOKENS = ["calls", "input_tokens", "output_tokens", "cache_creation_tokens", "cache_read_tokens", "thinking_tokens"]


def _table(name: str, *columns: sa.Column) -> None:
    op.create_table(name, sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
                    sa.Column("period", sa.String(10), nullable=False), sa.Column("workflow", sa.Text(), nullable=False),
                    sa.Column("status", sa.String(20), nullable=False), *columns,
                    sa.PrimaryKeyConstraint("id", name=f"pk_{name}"))
    op.create_index(f"ix_{name}_period", name, ["period"])


def _totals() -> list[sa.Column]:
    return [*(sa.Column(name, sa.BigInteger(), nullable=False) for name in TOKENS),
            sa.Column("cost_usd", sa.Float(), nullable=False),
            sa.Column("unpriced_calls", sa.BigInteger(), nullable=False)]


def upgrade() -> None:
    op.create_table(
        "rollup_dirty_days",
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("day", name="pk_rollup_dirty_days"),
    )
    _table("rollup_runs", sa.Column("runs", sa.BigInteger(), nullable=False), *_totals(),
           sa.Column("durations", sa.JSON(), nullable=False))
    _table("rollup_calls", sa.Column("model", sa.Text(), nullable=False), sa.Column("provider", sa.Text(), nullable=True),
           sa.Column("node_id", sa.Text(), nullable=False), sa.Column("phase", sa.String(10), nullable=False),
           *_totals())
    _table("rollup_call_runs", sa.Column("dimension", sa.String(10), nullable=False),
           sa.Column("value", sa.Text(), nullable=True), sa.Column("runs", sa.BigInteger(), nullable=False))
    _table("rollup_nodes", sa.Column("node_id", sa.Text(), nullable=False),
           sa.Column("executions", sa.BigInteger(), nullable=False), sa.Column("durations", sa.JSON(), nullable=False))
    # Runs already in the ledger: their days are built by the first report that needs them.
    day = ("substr(started_at, 1, 10)" if op.get_bind().dialect.name == "sqlite"
           else "to_char(started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')")
    op.execute(f"INSERT INTO rollup_dirty_days (day, version) SELECT DISTINCT {day}, 1 FROM runs")


def downgrade() -> None:
    for name in ("rollup_nodes", "rollup_call_runs", "rollup_calls", "rollup_runs", "rollup_dirty_days"):
        op.drop_table(name)
