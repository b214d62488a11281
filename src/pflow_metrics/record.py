"""The run record: one versioned shape for the flush, `runs show --format json` and export/ingest.

A run record is built by the instrumentation when a run ends, written to the ledger by
`Ledger.finish_run`, read back by `Ledger.get_run`, and serialized with `to_dict` /
`from_dict`. `from_dict` validates: a wrong type or a negative count raises RecordError
naming the field (`llm_calls[3].input_tokens: must be a whole number >= 0, got -1`).

Each field is declared once, on its dataclass, with `_field(check, ...)`: the check says how
the field is read from JSON (and which error a bad value raises), how it is written to JSON and
how it is kept in a ledger column; the metadata says which column (`column=`, `columns=`).
`to_dict`, `from_dict` and the ledger's rows (ledger/rows.py) are all derived from these
declarations, worked out once at import. Adding a field means declaring it here, plus its
column in ledger/models.py and a migration.
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import MISSING, dataclass, field, fields
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from pflow_metrics.context import ci_context, host_name
from pflow_metrics.errors import RecordError
from pflow_metrics.money import MAX_CALL_USD, ZERO, dumps, from_nanos, plain, to_nanos, usd
from pflow_metrics.timewindow import EARLIEST, LATEST

SCHEMA_VERSION = 1
RUN_STATUSES = ("running", "success", "failed", "crashed", "budget_exceeded")
PHASES = ("planner", "workflow")
MAX_COUNT = 2**63 - 1  # the largest integer either ledger engine stores
# Limits that keep every sum the ledger takes exact and inside 64 bits: a token bucket of one
# call (1,000 times the largest context window there is), and a duration (about 3 years).
MAX_CALL_TOKENS = 10**10
MAX_DURATION_MS = 10**11
RATE_KEYS = ("input", "output", "cache_read", "cache_creation")
MAX_RATE_USD = 10**6  # per million tokens
MAX_RUN_ID = 36  # a UUID; the ledger's key column holds no more
NODE_STATUSES = ("success", "failed")
CI_KEYS = ("provider", "job_id", "git_sha", "git_branch")  # what ci_context() finds


def utcnow() -> datetime:
    return datetime.now(UTC)


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


def _mapping(value: Any, where: str) -> dict:
    if not isinstance(value, dict):
        raise RecordError(f"{where}: must be an object, got {type(value).__name__}")
    return value


# -- Checks: how one kind of field is read, written and stored ---------------------------------


class Check:
    """How one kind of value is read from decoded JSON (`load`: the value, never None, checked
    and converted, or RecordError naming `where`), written back to JSON (`dump`; None: as it
    is) and kept in a ledger column (`to_column` / `from_column`; None: as it is)."""

    dump = None
    to_column = None
    from_column = None

    def load(self, value: Any, where: str) -> Any:
        raise NotImplementedError


class Text(Check):
    def __init__(self, limit: int | None = None, non_empty: bool = False) -> None:
        self.limit = limit
        self.non_empty = non_empty

    def load(self, value: Any, where: str) -> str:
        if not isinstance(value, str):
            raise RecordError(f"{where}: must be a string, got {type(value).__name__}")
        if self.non_empty and not value:
            raise RecordError(f"{where}: must not be empty")
        if self.limit is not None and len(value) > self.limit:
            raise RecordError(f"{where}: must be at most {self.limit} characters, got {len(value):,}")
        return value


class Choice(Text):
    def __init__(self, choices: tuple[str, ...], non_empty: bool = False) -> None:
        super().__init__(non_empty=non_empty)
        self.choices = choices

    def load(self, value: Any, where: str) -> str:
        value = super().load(value, where)
        if value not in self.choices:
            raise RecordError(f"{where}: must be one of {', '.join(self.choices)}, got {_shown(value)}")
        return value


class Count(Check):
    """A whole number in [0, limit]; a bool is not one."""

    def __init__(self, limit: int = MAX_COUNT) -> None:
        self.limit = limit

    def load(self, value: Any, where: str) -> int:
        if type(value) is not int or value < 0:
            raise RecordError(f"{where}: must be a whole number >= 0, got {_shown(value)}")
        if value > self.limit:
            raise RecordError(f"{where}: must be at most {self.limit:,}, got {_shown(value)}")
        return value


class Number(Check):
    """A finite number in [0, limit], as a float: ints of any size and Decimals (exact JSON) are taken."""

    def __init__(self, limit: float = MAX_COUNT) -> None:
        self.limit = limit

    def load(self, value: Any, where: str) -> float:
        if type(value) not in (int, float, Decimal) or value != value or not 0 <= value <= self.limit:
            raise RecordError(f"{where}: must be a number from 0 to {self.limit:,}, got {_shown(value)}")
        return float(value)


class Money(Check):
    """USD as a Decimal rounded to the nano-dollar (money.py); whole nano-dollars in the ledger."""

    to_column = staticmethod(to_nanos)
    from_column = staticmethod(from_nanos)

    def __init__(self, limit: Decimal | None = None) -> None:
        self.limit = limit

    def load(self, value: Any, where: str) -> Decimal:
        amount = None
        if type(value) in (int, float, Decimal) and value == value:
            try:
                amount = usd(value)
            except ValueError:  # infinite
                pass
        if amount is None or amount < 0 or (self.limit is not None and amount > self.limit):
            bound = f" to {self.limit:,}" if self.limit is not None else ""
            raise RecordError(f"{where}: must be an amount of USD from 0{bound}, got {_shown(value)}")
        return amount


class Time(Check):
    """An aware moment in the ledger's range (timewindow.py), as ISO-8601 text with an offset."""

    dump = staticmethod(_iso)

    def load(self, value: Any, where: str) -> datetime:
        try:
            moment = datetime.fromisoformat(value)
        except (TypeError, ValueError):
            raise RecordError(f"{where}: must be an ISO-8601 time with offset, got {_shown(value)}") from None
        if moment.tzinfo is None:
            raise RecordError(f"{where}: must carry a UTC offset, got {_shown(value)}")
        try:
            moment = moment.astimezone(UTC)
        except OverflowError:  # year 1 or 9999 moved across its offset
            moment = None
        if moment is None or not EARLIEST <= moment < LATEST:
            raise RecordError(f"{where}: must lie from {EARLIEST:%Y-%m-%d} to {LATEST:%Y-%m-%d} UTC, "
                              f"got {_shown(value)}")
        return moment


class StringMap(Check):
    def load(self, value: Any, where: str) -> dict[str, str]:
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ):
            raise RecordError(f"{where}: must be an object of strings")
        return dict(value)


class Rates(Check):
    """Per-million-token USD rates, by RATE_KEYS."""

    def load(self, value: Any, where: str) -> dict[str, float]:
        rates = _mapping(value, where)
        unknown = sorted(set(rates) - set(RATE_KEYS))
        if unknown:
            raise RecordError(f"{where}: unknown rate {unknown[0]!r:.60}; rates are {', '.join(RATE_KEYS)}")
        return {key: RATE.load(rate, f"{where}.{key}") if rate is not None else None
                for key, rate in rates.items()}


class Records(Check):
    """A list of nested records (nodes, calls), each read with its own class's fields."""

    def __init__(self, cls: type) -> None:
        self.cls = cls

    def load(self, value: Any, where: str) -> list:
        if not isinstance(value, list):
            raise RecordError(f"{where}: must be a list, got {type(value).__name__}")
        codec = _CODECS[self.cls]
        return [codec.load(_mapping(item, f"{where}[{i}]"), f"{where}[{i}].") for i, item in enumerate(value)]

    @staticmethod
    def dump(records: list) -> list[dict[str, Any]]:
        return [record.to_dict() for record in records]


NAME = Text(non_empty=True)
TEXT = Text()
PHASE = Choice(PHASES)
COUNT = Count()
TOKEN_COUNT = Count(MAX_CALL_TOKENS)
DURATION = Number(MAX_DURATION_MS)
RATE = Number(MAX_RATE_USD)
TIME = Time()
STRING_MAP = StringMap()
CALL_COST = Money(MAX_CALL_USD)


def _field(check: Check, *, required: bool | None = None, column: str | None = ...,
           columns: dict[str, str] | None = None, opt_in: bool = False, **options: Any) -> Any:
    """A record field with its check. `required`: missing or null is an error (the default
    for a field without a default); otherwise missing or null reads as the field's default.
    `column`: its ledger column, when not named like the field (None: no column; nested
    records have their own tables). `columns`: a dict spread over one column per key
    (key -> column); reading keeps the keys whose column holds something. `opt_in`: written
    to JSON only when some opt-in field of the record is set (prompts, kept only on request)."""
    metadata = {"check": check, "required": required, "column": column, "columns": columns, "opt_in": opt_in}
    return field(metadata=metadata, **options)


# -- The records -------------------------------------------------------------------------------


@dataclass
class Tokens:
    """Token buckets: `input` is input neither read from nor written to a cache; the three
    input buckets add up to all input. `thinking` is the part of `output` spent reasoning.
    An LLM call holds each bucket as `<kind>_tokens`."""

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


TOKEN_KINDS = tuple(f.name for f in fields(Tokens))
TOKEN_FIELDS = tuple(f"{kind}_tokens" for kind in TOKEN_KINDS)  # the LLMCallRecord field of each kind


@dataclass
class NodeRecord:
    # Built positionally on the hot path (instrumentation/wrapper.py): keep this order.
    node_id: str = _field(NAME)
    node_type: str = _field(TEXT, default="")
    phase: str = _field(PHASE, default="workflow")
    duration_ms: float = _field(DURATION, default=0.0)
    status: str = _field(Choice(NODE_STATUSES), default="success")  # success | failed
    attempts: int = _field(COUNT, default=1)
    action: str | None = _field(TEXT, default=None)
    error: str | None = _field(TEXT, default=None)
    start_offset_ms: float = _field(DURATION, default=0.0)
    items: int | None = _field(COUNT, default=None)  # batch nodes: how many items ran

    def to_dict(self) -> dict[str, Any]:
        return _CODECS[type(self)].dump(self)


@dataclass(kw_only=True)  # keyword-only, so that the fields can stand in their JSON order
class LLMCallRecord:
    node_id: str = _field(NAME)
    phase: str = _field(PHASE, default="workflow")
    model: str = _field(NAME)
    resolved_model: str | None = _field(TEXT, default=None)
    provider: str | None = _field(TEXT, default=None)
    input_tokens: int = _field(TOKEN_COUNT, default=0)
    output_tokens: int = _field(TOKEN_COUNT, default=0)
    cache_creation_tokens: int = _field(TOKEN_COUNT, default=0)
    cache_read_tokens: int = _field(TOKEN_COUNT, default=0)
    thinking_tokens: int = _field(TOKEN_COUNT, default=0)
    # Exact USD; None: nobody could price this model.
    cost_usd: Decimal | None = _field(CALL_COST, column="cost_nanousd", default=None)
    # Per-million rates used: input, output, cache_read, cache_creation.
    rates: dict[str, float] | None = _field(Rates(), columns={key: f"{key}_rate" for key in RATE_KEYS},
                                            default=None)
    price_source: str | None = _field(TEXT, default=None)  # "override", "genai-prices", "provider", ...
    duration_ms: float | None = _field(DURATION, default=None)
    started_at: datetime | None = _field(TIME, default=None)
    prompt: str | None = _field(TEXT, opt_in=True, default=None)  # kept only when the caller asked to store prompts
    response: str | None = _field(TEXT, opt_in=True, default=None)

    def __post_init__(self) -> None:
        if self.cost_usd is not None and not isinstance(self.cost_usd, Decimal):
            self.cost_usd = usd(self.cost_usd)

    @property
    def tokens(self) -> Tokens:
        return Tokens(
            input=self.input_tokens,
            output=self.output_tokens,
            cache_creation=self.cache_creation_tokens,
            cache_read=self.cache_read_tokens,
            thinking=self.thinking_tokens,
        )

    def to_dict(self) -> dict[str, Any]:
        return _CODECS[type(self)].dump(self)


@dataclass
class RunRecord:
    run_id: str = _field(Text(MAX_RUN_ID, non_empty=True), column="id")
    workflow: str = _field(NAME)
    status: str = _field(Choice(RUN_STATUSES, non_empty=True), required=True, default="running")
    started_at: datetime = _field(TIME, required=True, default_factory=utcnow)
    ended_at: datetime | None = _field(TIME, default=None)
    duration_ms: float | None = _field(DURATION, default=None)
    planner_duration_ms: float | None = _field(DURATION, default=None)
    workflow_duration_ms: float | None = _field(DURATION, default=None)
    # (to_dict writes the derived totals here: cost_usd, unpriced_calls, tokens)
    error: str | None = _field(TEXT, default=None)
    host: str | None = _field(TEXT, default=None)
    pid: int | None = _field(COUNT, default=None)
    ci: dict[str, str] | None = _field(STRING_MAP, columns={key: f"ci_{key}" for key in CI_KEYS}, default=None)
    tags: dict[str, str] = _field(STRING_MAP, default_factory=dict)
    tool_version: str | None = _field(TEXT, default=None)
    nodes: list[NodeRecord] = _field(Records(NodeRecord), column=None, default_factory=list)
    llm_calls: list[LLMCallRecord] = _field(Records(LLMCallRecord), column=None, default_factory=list)

    # A run's totals are its calls' totals, derived, never stored beside them: a record cannot
    # say $999 while its calls say $0.10.
    @property
    def tokens(self) -> Tokens:
        calls = self.llm_calls
        return Tokens(**{kind: sum(getattr(call, name) for call in calls)
                         for kind, name in zip(TOKEN_KINDS, TOKEN_FIELDS)})

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
        return _CODECS[type(self)].dump(self)

    @classmethod
    def from_dict(cls, data: Any) -> RunRecord:
        return _RecordReader().run(data)

    def to_json(self) -> str:
        """One line of JSON (export, spool): money as exact decimal numbers."""
        return dumps(self.to_dict())

    @classmethod
    def from_json(cls, text: str | bytes) -> RunRecord:
        """The record in one line of JSON (spool files, ingest lines); decimals are read exactly.
        Text that is not JSON, or JSON this reader cannot take, raises RecordError."""
        try:
            data = json.loads(text, parse_float=Decimal)
        except json.JSONDecodeError as exc:
            raise RecordError(f"not JSON: {exc.msg}") from None
        except RecursionError:
            raise RecordError("not JSON this reader takes: nested too deeply") from None
        except (ValueError, ArithmeticError):  # an integer past 4,300 digits, an exponent past Decimal's
            raise RecordError("not JSON this reader takes: a number out of range") from None
        return cls.from_dict(data)


# What a run's JSON holds beyond its fields: (the field it follows, "" for first; key; a function
# of the record giving its value). The totals are derived from the calls, never stored.
RUN_DERIVED_JSON = (
    ("", "schema", lambda record: SCHEMA_VERSION),
    ("workflow_duration_ms", "cost_usd", lambda record: record.cost_usd),
    ("workflow_duration_ms", "unpriced_calls", lambda record: record.unpriced_calls),
    ("workflow_duration_ms", "tokens", lambda record: record.tokens.to_dict()),
)


# -- Derived from the declarations, once -------------------------------------------------------


@dataclass(frozen=True)
class FieldSpec:
    """One declared field, as the codecs and ledger/rows.py use it."""

    name: str
    check: Check
    required: bool
    has_default: bool  # missing or null reads as the dataclass default
    default: Any  # the default, or a factory when `factory`
    factory: bool
    column: str | None  # None: no column of its own (see `columns`, or a nested table)
    columns: dict[str, str] | None
    opt_in: bool


def field_specs(cls: type) -> tuple[FieldSpec, ...]:
    """The fields of a record class, in declaration order (which is their JSON order)."""
    specs = []
    for f in fields(cls):
        meta = f.metadata
        has_default = f.default is not MISSING or f.default_factory is not MISSING
        required = meta["required"] if meta["required"] is not None else not has_default
        column = f.name if meta["column"] is ... else meta["column"]
        if meta["columns"] is not None:
            column = None
        specs.append(FieldSpec(
            name=f.name, check=meta["check"], required=required, has_default=has_default,
            default=f.default if f.default is not MISSING else f.default_factory,
            factory=f.default is MISSING and f.default_factory is not MISSING,
            column=column, columns=meta["columns"], opt_in=meta["opt_in"],
        ))
    return tuple(specs)


class _Codec:
    """A record class <-> its JSON object, from the field declarations."""

    def __init__(self, cls: type, derived: tuple[tuple[str, str, str], ...] = ()) -> None:
        self.cls = cls
        self.specs = field_specs(cls)
        self.loads = tuple((s.name, s.check.load, s.required) for s in self.specs)
        # (key, attribute or None, how to dump it), in JSON order; derived entries read a property.
        entries = [(key, None, expression) for after, key, expression in derived if not after]
        for spec in self.specs:
            if not spec.opt_in:
                entries.append((spec.name, spec.name, spec.check.dump))
            entries += [(key, None, expression) for after, key, expression in derived if after == spec.name]
        self.entries = tuple(entries)
        self.opt_in = tuple((s.name, s.check.dump) for s in self.specs if s.opt_in)

    def dump(self, record: Any) -> dict[str, Any]:
        data = {}
        for key, name, how in self.entries:
            if name is None:  # derived: `how` reads it from the record
                data[key] = how(record)
            else:
                value = getattr(record, name)
                data[key] = value if how is None else how(value)
        if any(getattr(record, name) is not None for name, _ in self.opt_in):
            for name, how in self.opt_in:
                value = getattr(record, name)
                data[name] = value if how is None else how(value)
        return data

    def load(self, data: dict, prefix: str = "") -> Any:
        """The record in `data`, checked field by field in declaration order; the first problem
        raises RecordError naming `prefix` + the field."""
        get = data.get
        kwargs = {}
        for name, load, required in self.loads:
            value = get(name)
            if value is None:
                if required:
                    raise RecordError(f"{prefix}{name}: is required")
                continue  # the dataclass default
            kwargs[name] = load(value, prefix + name)
        return self.cls(**kwargs)


_CODECS = {NodeRecord: _Codec(NodeRecord), LLMCallRecord: _Codec(LLMCallRecord),
           RunRecord: _Codec(RunRecord, RUN_DERIVED_JSON)}


class _RecordReader:
    """Validates a decoded record field by field; the first problem raises RecordError."""

    def run(self, data: Any) -> RunRecord:
        data = _mapping(data, "record")
        schema = data.get("schema", SCHEMA_VERSION)
        if type(schema) is not int or schema < 1:
            raise RecordError(f"schema: must be a whole number >= 1, got {_shown(schema)}")
        if schema > SCHEMA_VERSION:
            raise RecordError(
                f"schema: version {_shown(schema)} is newer than this pflow-metrics understands "
                f"({SCHEMA_VERSION}); upgrade pflow-metrics"
            )
        record = _CODECS[RunRecord].load(data)
        self._check_totals(data, record)
        return record

    @staticmethod
    def _check_totals(data: dict, record: RunRecord) -> None:
        """Totals a record states must be its calls' totals (they are derived, not stored);
        a null cost states nothing."""
        stated_cost = data.get("cost_usd")
        if stated_cost is not None and Money().load(stated_cost, "cost_usd") != record.cost_usd:
            raise RecordError(f"cost_usd: {_shown(stated_cost)} disagrees with its llm_calls, "
                              f"which cost {_shown(record.cost_usd)}")
        unpriced = data.get("unpriced_calls")
        if unpriced is not None and COUNT.load(unpriced, "unpriced_calls") != record.unpriced_calls:
            raise RecordError(f"unpriced_calls: {unpriced} disagrees with its llm_calls ({record.unpriced_calls})")
        tokens = data.get("tokens")
        if tokens is not None:
            tokens = _mapping(tokens, "tokens")
            derived = record.tokens
            for kind in TOKEN_KINDS:
                stated = tokens.get(kind)
                if stated is not None and COUNT.load(stated, f"tokens.{kind}") != getattr(derived, kind):
                    raise RecordError(f"tokens.{kind}: {stated} disagrees with its llm_calls ({getattr(derived, kind)})")


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
