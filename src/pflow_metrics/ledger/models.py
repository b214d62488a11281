"""The ledger's tables, in one place. Alembic revisions in `migrations/` build the same schema;
`tests/ledger/test_migrations.py` checks that the two agree."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Named constraints, so that Alembic's batch mode on SQLite can drop and recreate them.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator):
    """Aware UTC datetimes in Python on every engine.

    PostgreSQL stores timestamptz; SQLite stores naive UTC text, which still sorts by time.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the ledger; use an aware UTC time")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# Counts and money (whole nano-dollars, see money.py) are 64-bit: PostgreSQL's BIGINT, and
# SQLite's INTEGER, which is already 64-bit (a different declared type would only make the
# SQLite schema upgrade copy every table).
Count = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Run(Base):
    __tablename__ = "runs"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    workflow: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    duration_ms: Mapped[float | None] = mapped_column(Float)
    planner_duration_ms: Mapped[float | None] = mapped_column(Float)
    workflow_duration_ms: Mapped[float | None] = mapped_column(Float)
    input_tokens: Mapped[int] = mapped_column(Count, default=0)
    output_tokens: Mapped[int] = mapped_column(Count, default=0)
    cache_creation_tokens: Mapped[int] = mapped_column(Count, default=0)
    cache_read_tokens: Mapped[int] = mapped_column(Count, default=0)
    thinking_tokens: Mapped[int] = mapped_column(Count, default=0)
    cost_nanousd: Mapped[int | None] = mapped_column(Count)  # None when a call is unpriced
    unpriced_calls: Mapped[int] = mapped_column(Count, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    host: Mapped[str | None] = mapped_column(Text)
    pid: Mapped[int | None] = mapped_column(Count)
    ci_provider: Mapped[str | None] = mapped_column(Text)
    ci_job_id: Mapped[str | None] = mapped_column(Text)
    ci_git_sha: Mapped[str | None] = mapped_column(Text)
    ci_git_branch: Mapped[str | None] = mapped_column(Text)
    tags: Mapped[dict] = mapped_column(JSON, default=dict)
    tool_version: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        Index("ix_runs_started_at", "started_at"),
        Index("ix_runs_workflow_started_at", "workflow", "started_at"),
        Index("ix_runs_status", "status"),
    )


class NodeExecution(Base):
    __tablename__ = "node_executions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(String(36), ForeignKey("runs.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    node_id: Mapped[str] = mapped_column(Text)
    node_type: Mapped[str] = mapped_column(Text)
    phase: Mapped[str] = mapped_column(String(10))
    start_offset_ms: Mapped[float] = mapped_column(Float)
    duration_ms: Mapped[float] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(20))
    attempts: Mapped[int] = mapped_column(Count)
    action: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    items: Mapped[int | None] = mapped_column(Count)

    __table_args__ = (Index("ix_node_executions_run_id_seq", "run_id", "seq", unique=True),)


class LLMCall(Base):
    __tablename__ = "llm_calls"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(String(36), ForeignKey("runs.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    node_id: Mapped[str] = mapped_column(Text)
    phase: Mapped[str] = mapped_column(String(10))
    model: Mapped[str] = mapped_column(Text)
    resolved_model: Mapped[str | None] = mapped_column(Text)
    provider: Mapped[str | None] = mapped_column(Text)
    input_tokens: Mapped[int] = mapped_column(Count)
    output_tokens: Mapped[int] = mapped_column(Count)
    cache_creation_tokens: Mapped[int] = mapped_column(Count)
    cache_read_tokens: Mapped[int] = mapped_column(Count)
    thinking_tokens: Mapped[int] = mapped_column(Count)
    cost_nanousd: Mapped[int | None] = mapped_column(Count)  # None: nobody could price the model
    input_rate: Mapped[float | None] = mapped_column(Float)  # USD per million tokens
    output_rate: Mapped[float | None] = mapped_column(Float)
    cache_read_rate: Mapped[float | None] = mapped_column(Float)
    cache_creation_rate: Mapped[float | None] = mapped_column(Float)
    price_source: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[float | None] = mapped_column(Float)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    prompt: Mapped[str | None] = mapped_column(Text)
    response: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        Index("ix_llm_calls_run_id_seq", "run_id", "seq", unique=True),
        Index("ix_llm_calls_model", "model"),
    )


# -- Roll-ups: what reports read instead of scanning every call (see ledger/rollups.py) ---------
# A period is a UTC day ("2026-11-25") or a whole month ("2026-11"). The rows are derived from
# the tables above and rebuilt for a day whenever a write marks it dirty; they have no unique
# keys because only the serialized refresh writes them, and hostile 10,000-character names would
# not fit in a unique index on PostgreSQL. Sums are 64-bit: a month of tokens passes 2**31.


class RollupDirtyDay(Base):
    """A UTC day whose roll-up rows are stale. Every write bumps `version`; a refresh clears
    the row only if the version is still the one it read, so a write during it is not lost."""

    __tablename__ = "rollup_dirty_days"

    day: Mapped[str] = mapped_column(String(10), primary_key=True)
    version: Mapped[int] = mapped_column(Count)


class _RollupKey:
    """What every roll-up row is keyed by; a run belongs to one period, workflow and status."""

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    period: Mapped[str] = mapped_column(String(10))
    workflow: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20))


class _CallTotals:
    calls: Mapped[int] = mapped_column(BigInteger)
    input_tokens: Mapped[int] = mapped_column(BigInteger)
    output_tokens: Mapped[int] = mapped_column(BigInteger)
    cache_creation_tokens: Mapped[int] = mapped_column(BigInteger)
    cache_read_tokens: Mapped[int] = mapped_column(BigInteger)
    thinking_tokens: Mapped[int] = mapped_column(BigInteger)
    cost_nanousd: Mapped[int] = mapped_column(BigInteger)
    unpriced_calls: Mapped[int] = mapped_column(BigInteger)


class RollupRuns(_RollupKey, _CallTotals, Base):
    """Per period, workflow and status: runs, their calls' totals and a duration sketch."""

    __tablename__ = "rollup_runs"

    runs: Mapped[int] = mapped_column(BigInteger)
    durations: Mapped[dict] = mapped_column(JSON)

    __table_args__ = (Index("ix_rollup_runs_period", "period"),)


class RollupCalls(_RollupKey, _CallTotals, Base):
    """Per period, workflow, status, model, provider, node and phase: the calls' totals."""

    __tablename__ = "rollup_calls"

    model: Mapped[str] = mapped_column(Text)
    provider: Mapped[str | None] = mapped_column(Text)
    node_id: Mapped[str] = mapped_column(Text)
    phase: Mapped[str] = mapped_column(String(10))

    __table_args__ = (Index("ix_rollup_calls_period", "period"),)


class RollupCallRuns(_RollupKey, Base):
    """Distinct runs with calls, per period, workflow, status and one call key (`dimension`
    is model, provider, node or phase; "" counts runs with any call). A run belongs to one
    period, workflow and status, so these counts add up across them exactly."""

    __tablename__ = "rollup_call_runs"

    dimension: Mapped[str] = mapped_column(String(10))
    value: Mapped[str | None] = mapped_column(Text)
    runs: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (Index("ix_rollup_call_runs_period", "period"),)


class RollupNodes(_RollupKey, Base):
    """Per period, workflow, status and node: executions and a duration sketch."""

    __tablename__ = "rollup_nodes"

    node_id: Mapped[str] = mapped_column(Text)
    executions: Mapped[int] = mapped_column(BigInteger)
    durations: Mapped[dict] = mapped_column(JSON)

    __table_args__ = (Index("ix_rollup_nodes_period", "period"),)
