"""The run record: one versioned shape for the flush, `runs show --format json` and export/ingest.

A run record is built by the instrumentation when a run ends, written to the ledger by
`Ledger.finish_run`, read back by `Ledger.get_run`, and serialized with `to_dict` /
`from_dict`. `from_dict` validates: a wrong type or a negative count raises RecordError
naming the field (`llm_calls[3].input_tokens: must be a whole number >= 0, got -1`).
"""

from __future__ import annotations

import json
import math
import os
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from pflow_metrics.context import ci_context, host_name
from pflow_metrics.errors import RecordError
from pflow_metrics.money import MAX_CALL_USD, ZERO, dumps, plain, usd
from pflow_metrics.timewindow import EARLIEST, LATEST

SCHEMA_VERSION = 1
RUN_STATUSES = ("running", "success", "failed", "crashed", "budget_exceeded")
PHASES = ("planner", "workflow")
TOKEN_KINDS = ("input", "output", "cache_creation", "cache_read", "thinking")
MAX_COUNT = 2**63 - 1  # the largest integer either ledger engine stores
# Limits that keep every sum the ledger takes exact and inside 64 bits: a token bucket of one
# call (1,000 times the largest context window there is), and a duration (about 3 years).
MAX_CALL_TOKENS = 10**10
MAX_DURATION_MS = 10**11
RATE_KEYS = ("input", "output", "cache_read", "cache_creation")
MAX_RATE_USD = 10**6  # per million tokens
MAX_RUN_ID = 36  # a UUID; the ledger's key column holds no more
NODE_STATUSES = ("success", "failed")


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Tokens:
    """Token buckets: `input` is input neither read from nor written to a cache; the three
    input buckets add up to all input. `thinking` is the part of `output` spent reasoning."""

    input: int = 0
    output: int = 0
    cache_creation: int = 0
    cache_read: int = 0
    thinking: int = 0

    def add(self, other: Tokens) -> None:
        for kind in TOKEN_KINDS:
            setattr(self, kind, getattr(self, kind) + getattr(other, kind))

    def to_dict(self) -> dict[str, int]:
        return {kind: getattr(self, kind) for kind in TOKEN_KINDS}


@dataclass
class NodeRecord:
    node_id: str
    node_type: str
    phase: str = "workflow"
    duration_ms: float = 0.0
    status: str = "success"  # success | failed
    attempts: int = 1
    action: str | None = None
    error: str | None = None
    start_offset_ms: float = 0.0
    items: int | None = None  # batch nodes: how many items ran

    def to_dict(self) -> dict[str, Any]:
        return {
            "node_id": self.node_id,
            "node_type": self.node_type,
            "phase": self.phase,
            "duration_ms": self.duration_ms,
            "status": self.status,
            "attempts": self.attempts,
            "action": self.action,
            "error": self.error,
            "start_offset_ms": self.start_offset_ms,
            "items": self.items,
        }


@dataclass
class LLMCallRecord:
    node_id: str
    model: str
    phase: str = "workflow"
    resolved_model: str | None = None
    provider: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_tokens: int = 0
    cache_read_tokens: int = 0
    thinking_tokens: int = 0
    cost_usd: Decimal | None = None  # exact USD; None: nobody could price this model
    rates: dict[str, float] | None = None  # per-million rates used: input, output, cache_read, cache_creation
    price_source: str | None = None  # "override", "genai-prices", "provider", ...
    duration_ms: float | None = None
    started_at: datetime | None = None
    prompt: str | None = None  # kept only when the caller asked to store prompts
    response: str | None = None

    def __post_init__(self) -> None:
        if self.cost_usd is not None and not isinstance(self.cost_usd, Decimal):
            self.cost_usd = usd(self.cost_usd)

    @property
    def tokens(self) -> Tokens:
        return Tokens(
            self.input_tokens,
            self.output_tokens,
            self.cache_creation_tokens,
            self.cache_read_tokens,
            self.thinking_tokens,
        )

    def to_dict(self) -> dict[str, Any]:
        data = {
            "node_id": self.node_id,
            "phase": self.phase,
            "model": self.model,
            "resolved_model": self.resolved_model,
            "provider": self.provider,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cache_creation_tokens": self.cache_creation_tokens,
            "cache_read_tokens": self.cache_read_tokens,
            "thinking_tokens": self.thinking_tokens,
            "cost_usd": self.cost_usd,
            "rates": self.rates,
            "price_source": self.price_source,
            "duration_ms": self.duration_ms,
            "started_at": _iso(self.started_at),
        }
        if self.prompt is not None or self.response is not None:
            data["prompt"] = self.prompt
            data["response"] = self.response
        return data


@dataclass
class RunRecord:
    run_id: str
    workflow: str
    status: str = "running"
    started_at: datetime = field(default_factory=utcnow)
    ended_at: datetime | None = None
    duration_ms: float | None = None
    planner_duration_ms: float | None = None
    workflow_duration_ms: float | None = None
    error: str | None = None
    host: str | None = None
    pid: int | None = None
    ci: dict[str, str] | None = None
    tags: dict[str, str] = field(default_factory=dict)
    tool_version: str | None = None
    nodes: list[NodeRecord] = field(default_factory=list)
    llm_calls: list[LLMCallRecord] = field(default_factory=list)

    # A run's totals are its calls' totals, derived, never stored beside them: a record cannot
    # say $999 while its calls say $0.10.
    @property
    def tokens(self) -> Tokens:
        tokens = Tokens()
        for call in self.llm_calls:
            tokens.add(call.tokens)
        return tokens

    @property
    def unpriced_calls(self) -> int:
        return sum(1 for call in self.llm_calls if call.cost_usd is None)

    @property
    def priced_cost_usd(self) -> Decimal:
        """What the priced calls cost: all of the cost when none is unpriced, else a lower bound."""
        return sum((call.cost_usd for call in self.llm_calls if call.cost_usd is not None), ZERO)

    @property
    def cost_usd(self) -> Decimal | None:
        """The run's exact cost, or None when any call is unpriced."""
        return None if self.unpriced_calls else self.priced_cost_usd

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA_VERSION,
            "run_id": self.run_id,
            "workflow": self.workflow,
            "status": self.status,
            "started_at": _iso(self.started_at),
            "ended_at": _iso(self.ended_at),
            "duration_ms": self.duration_ms,
            "planner_duration_ms": self.planner_duration_ms,
            "workflow_duration_ms": self.workflow_duration_ms,
            "cost_usd": self.cost_usd,
            "unpriced_calls": self.unpriced_calls,
            "tokens": self.tokens.to_dict(),
            "error": self.error,
            "host": self.host,
            "pid": self.pid,
            "ci": self.ci,
            "tags": self.tags,
            "tool_version": self.tool_version,
            "nodes": [node.to_dict() for node in self.nodes],
            "llm_calls": [call.to_dict() for call in self.llm_calls],
        }

    @classmethod
    def from_dict(cls, data: Any) -> RunRecord:
        return _RecordReader().run(data)

    def to_json(self) -> str:
        """One line of JSON (export, spool): money as exact decimal numbers."""
        return dumps(self.to_dict())

    @classmethod
    def from_json(cls, text: str | bytes) -> RunRecord:
        """The record in one line of JSON; decimals are read exactly. A line that is not JSON
        raises RecordError; so does one nested too deeply to read."""
        try:
            data = json.loads(text, parse_float=Decimal)
        except json.JSONDecodeError as exc:
            raise RecordError(f"not JSON: {exc.msg} (column {exc.colno})") from None
        except RecursionError:
            raise RecordError("not readable: nested too deeply") from None
        except ValueError as exc:  # a number of more than 4,300 digits, bad UTF-8
            raise RecordError(f"not readable: {str(exc).splitlines()[0][:80]}") from None
        return cls.from_dict(data)


def _shown(value: Any) -> str:
    """A value for an error message, short whatever its size (a 5,000-digit int included)."""
    if type(value) is int and value.bit_length() > 200:
        return f"a {value.bit_length()}-bit number"
    if isinstance(value, Decimal) and value.is_finite():
        return plain(value)
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


class _RecordReader:
    """Validates a decoded record field by field; the first problem raises RecordError."""

    def run(self, data: Any) -> RunRecord:
        data = self._mapping(data, "record")
        schema = data.get("schema", SCHEMA_VERSION)
        if type(schema) is not int or schema < 1:
            raise RecordError(f"schema: must be a whole number >= 1, got {_shown(schema)}")
        if schema > SCHEMA_VERSION:
            raise RecordError(
                f"schema: version {_shown(schema)} is newer than this pflow-metrics understands "
                f"({SCHEMA_VERSION}); upgrade pflow-metrics"
            )
        record = RunRecord(
            run_id=self._text(data, "run_id", required=True, limit=MAX_RUN_ID),
            workflow=self._text(data, "workflow", required=True),
            status=self._choice(data, "status", RUN_STATUSES, required=True),
            started_at=self._time(data, "started_at", required=True),
            ended_at=self._time(data, "ended_at"),
            duration_ms=self._duration(data, "duration_ms"),
            planner_duration_ms=self._duration(data, "planner_duration_ms"),
            workflow_duration_ms=self._duration(data, "workflow_duration_ms"),
            error=self._text(data, "error"),
            host=self._text(data, "host"),
            pid=self._count(data, "pid", default=None),
            ci=self._string_map(data, "ci"),
            tags=self._string_map(data, "tags") or {},
            tool_version=self._text(data, "tool_version"),
        )
        record.nodes = [self._node(n, f"nodes[{i}]") for i, n in enumerate(self._list(data, "nodes"))]
        record.llm_calls = [
            self._call(c, f"llm_calls[{i}]") for i, c in enumerate(self._list(data, "llm_calls"))
        ]
        self._check_totals(data, record)
        return record

    def _check_totals(self, data: dict, record: RunRecord) -> None:
        """Totals a record states must be its calls' totals (they are derived, not stored);
        a null cost states nothing."""
        stated_cost = self._money(data, "cost_usd")
        if stated_cost is not None and stated_cost != record.cost_usd:
            raise RecordError(f"cost_usd: {_shown(data['cost_usd'])} disagrees with its llm_calls, "
                              f"which cost {_shown(record.cost_usd)}")
        unpriced = self._count(data, "unpriced_calls", default=None)
        if unpriced is not None and unpriced != record.unpriced_calls:
            raise RecordError(f"unpriced_calls: {unpriced} disagrees with its llm_calls ({record.unpriced_calls})")
        tokens = data.get("tokens")
        if tokens is not None:
            tokens = self._mapping(tokens, "tokens")
            derived = record.tokens
            for kind in TOKEN_KINDS:
                stated = self._count(tokens, kind, f"tokens.{kind}", default=None)
                if stated is not None and stated != getattr(derived, kind):
                    raise RecordError(f"tokens.{kind}: {stated} disagrees with its llm_calls ({getattr(derived, kind)})")

    def _node(self, data: Any, where: str) -> NodeRecord:
        data = self._mapping(data, where)
        return NodeRecord(
            node_id=self._text(data, "node_id", f"{where}.node_id", required=True),
            node_type=self._text(data, "node_type", f"{where}.node_type") or "",
            phase=self._choice(data, "phase", PHASES, where=f"{where}.phase") or "workflow",
            duration_ms=self._duration(data, "duration_ms", f"{where}.duration_ms") or 0.0,
            status=self._choice(data, "status", NODE_STATUSES, where=f"{where}.status") or "success",
            attempts=self._count(data, "attempts", f"{where}.attempts", default=1),
            action=self._text(data, "action", f"{where}.action"),
            error=self._text(data, "error", f"{where}.error"),
            start_offset_ms=self._duration(data, "start_offset_ms", f"{where}.start_offset_ms") or 0.0,
            items=self._count(data, "items", f"{where}.items", default=None),
        )

    def _call(self, data: Any, where: str) -> LLMCallRecord:
        data = self._mapping(data, where)
        rates = data.get("rates")
        if rates is not None:
            rates = self._mapping(rates, f"{where}.rates")
            unknown = sorted(set(rates) - set(RATE_KEYS))
            if unknown:
                raise RecordError(f"{where}.rates: unknown rate {unknown[0]!r:.60}; rates are {', '.join(RATE_KEYS)}")
            rates = {k: self._number(rates, k, f"{where}.rates.{k}", MAX_RATE_USD) for k in rates}
        return LLMCallRecord(
            node_id=self._text(data, "node_id", f"{where}.node_id", required=True),
            phase=self._choice(data, "phase", PHASES, where=f"{where}.phase") or "workflow",
            model=self._text(data, "model", f"{where}.model", required=True),
            resolved_model=self._text(data, "resolved_model", f"{where}.resolved_model"),
            provider=self._text(data, "provider", f"{where}.provider"),
            input_tokens=self._count(data, "input_tokens", f"{where}.input_tokens", limit=MAX_CALL_TOKENS),
            output_tokens=self._count(data, "output_tokens", f"{where}.output_tokens", limit=MAX_CALL_TOKENS),
            cache_creation_tokens=self._count(data, "cache_creation_tokens", f"{where}.cache_creation_tokens", limit=MAX_CALL_TOKENS),
            cache_read_tokens=self._count(data, "cache_read_tokens", f"{where}.cache_read_tokens", limit=MAX_CALL_TOKENS),
            thinking_tokens=self._count(data, "thinking_tokens", f"{where}.thinking_tokens", limit=MAX_CALL_TOKENS),
            cost_usd=self._money(data, "cost_usd", f"{where}.cost_usd", MAX_CALL_USD),
            rates=rates,
            price_source=self._text(data, "price_source", f"{where}.price_source"),
            duration_ms=self._duration(data, "duration_ms", f"{where}.duration_ms"),
            started_at=self._time(data, "started_at", f"{where}.started_at"),
            prompt=self._text(data, "prompt", f"{where}.prompt"),
            response=self._text(data, "response", f"{where}.response"),
        )

    @staticmethod
    def _mapping(value: Any, where: str) -> dict:
        if not isinstance(value, dict):
            raise RecordError(f"{where}: must be an object, got {type(value).__name__}")
        return value

    @staticmethod
    def _list(data: dict, key: str) -> list:
        value = data.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            raise RecordError(f"{key}: must be a list, got {type(value).__name__}")
        return value

    @staticmethod
    def _text(data: dict, key: str, where: str | None = None, required: bool = False,
              limit: int | None = None) -> str | None:
        value = data.get(key)
        if value is None:
            if required:
                raise RecordError(f"{where or key}: is required")
            return None
        if not isinstance(value, str):
            raise RecordError(f"{where or key}: must be a string, got {type(value).__name__}")
        if required and not value:
            raise RecordError(f"{where or key}: must not be empty")
        if limit is not None and len(value) > limit:
            raise RecordError(f"{where or key}: must be at most {limit} characters, got {len(value):,}")
        return value

    def _choice(self, data, key, choices, where=None, required=False):
        value = self._text(data, key, where, required)
        if value is not None and value not in choices:
            raise RecordError(f"{where or key}: must be one of {', '.join(choices)}, got {_shown(value)}")
        return value

    @staticmethod
    def _count(data: dict, key: str, where: str | None = None, default: int | None = 0,
               limit: int = MAX_COUNT) -> int | None:
        value = data.get(key)
        if value is None:
            return default
        if type(value) is not int or value < 0:
            raise RecordError(f"{where or key}: must be a whole number >= 0, got {_shown(value)}")
        if value > limit:
            raise RecordError(f"{where or key}: must be at most {limit:,}, got {_shown(value)}")
        return value

    @staticmethod
    def _number(data: dict, key: str, where: str | None = None, limit: float = MAX_COUNT) -> float | None:
        """A finite number in [0, limit]: ints of any size and Decimals (exact JSON) are taken."""
        value = data.get(key)
        if value is None:
            return None
        if type(value) not in (int, float, Decimal) or value != value or not 0 <= value <= limit:
            raise RecordError(f"{where or key}: must be a number from 0 to {limit:,}, got {_shown(value)}")
        return float(value)

    def _duration(self, data: dict, key: str, where: str | None = None) -> float | None:
        return self._number(data, key, where, MAX_DURATION_MS)

    @staticmethod
    def _money(data: dict, key: str, where: str | None = None, limit: Decimal | None = None) -> Decimal | None:
        value = data.get(key)
        if value is None:
            return None
        amount = None
        if type(value) in (int, float, Decimal) and value == value:
            try:
                amount = usd(value)
            except ValueError:  # infinite
                pass
        if amount is None or amount < 0 or (limit is not None and amount > limit):
            bound = f" to {limit:,}" if limit is not None else ""
            raise RecordError(f"{where or key}: must be an amount of USD from 0{bound}, got {_shown(value)}")
        return amount

    @staticmethod
    def _time(data: dict, key: str, where: str | None = None, required: bool = False) -> datetime | None:
        value = data.get(key)
        if value is None:
            if required:
                raise RecordError(f"{where or key}: is required")
            return None
        try:
            moment = datetime.fromisoformat(value)
        except (TypeError, ValueError):
            raise RecordError(f"{where or key}: must be an ISO-8601 time with offset, got {_shown(value)}") from None
        if moment.tzinfo is None:
            raise RecordError(f"{where or key}: must carry a UTC offset, got {_shown(value)}")
        try:
            moment = moment.astimezone(UTC)
        except OverflowError:  # year 1 or 9999 moved across its offset
            moment = None
        if moment is None or not EARLIEST <= moment < LATEST:
            raise RecordError(f"{where or key}: must lie from {EARLIEST:%Y-%m-%d} to {LATEST:%Y-%m-%d} UTC, "
                              f"got {_shown(value)}")
        return moment

    @staticmethod
    def _string_map(data: dict, key: str) -> dict[str, str] | None:
        value = data.get(key)
        if value is None:
            return None
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ):
            raise RecordError(f"{key}: must be an object of strings")
        return dict(value)


def new_run_record(workflow: str, tags: dict[str, str] | None = None, run_id: str | None = None) -> RunRecord:
    """A record for a run starting now in this process, with host, pid and CI context filled in."""
    from pflow_metrics import __version__

    return RunRecord(
        run_id=run_id or str(uuid.uuid4()),
        workflow=workflow,
        host=host_name(),
        pid=os.getpid(),
        ci=ci_context(),
        tags=dict(tags or {}),
        tool_version=__version__,
    )
