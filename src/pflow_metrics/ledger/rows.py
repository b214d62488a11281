"""Run records <-> ledger rows: the one mapping between the record's fields and the columns
of runs, node_executions and llm_calls (ledger/models.py). The store writes with it and reads
back with it; tests and benchmarks that write rows of a given revision use it too.

The mapping is derived from the record's field declarations (record.py: each field's check and
column), worked out once at import: a field is stored in the column named like it (or its
`column=`), through its check's `to_column` / `from_column` (money goes in as whole
nano-dollars, money.py), or spread over one column per key (`columns=`: a call's rates, a run's
CI context). A run's totals are derived from its calls; they are the only columns written here
by name. A null in a column reads as the field's default, as a missing JSON key does (a
required field's null stays null).
"""

from __future__ import annotations

from dataclasses import MISSING
from typing import Any

from pflow_metrics.money import to_nanos
from pflow_metrics.record import TOKEN_KINDS, LLMCallRecord, NodeRecord, RunRecord, field_specs


def _storable(row: dict[str, Any]) -> dict[str, Any]:
    """The row with text neither engine can hold made storable, the same way on both: a NUL
    (PostgreSQL refuses it) and a lone surrogate (not UTF-8) become U+FFFD. A NUL in a shell
    node's stderr must not lose the run."""
    for key, value in row.items():
        if isinstance(value, str):
            row[key] = _storable_text(value)
        elif isinstance(value, dict):
            row[key] = {_storable_text(k): _storable_text(v) for k, v in value.items()}
    return row


def _storable_text(text: str) -> str:
    if text.isascii():
        if "\x00" in text:
            return text.replace("\x00", "\ufffd")
        return text
    try:
        text.encode()
    except UnicodeEncodeError:
        text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text.replace("\x00", "\ufffd")


_EMPTY: dict = {}


def _gathered(row: Any, columns: tuple[tuple[str, str], ...]) -> dict[str, Any] | None:
    """A spread field read back: the keys whose column holds something, or None."""
    values = {}
    for key, column in columns:
        value = getattr(row, column)
        if value is not None and value != "":
            values[key] = value
    return values or None


class _Columns:
    """A record class's fields as columns of its table, from the declarations (record.py):
    `row(record, *head)` (`head`: the leading columns the record does not hold, such as run_id
    and seq) and `record(row, **children)`."""

    def __init__(self, cls: type, head: tuple[str, ...] = ()) -> None:
        self.cls = cls
        self.head = head
        self.spread = []  # (field, ((key, column), ...)): a dict over one column per key
        self.plain = []  # (field, column, to_column, from_column, default, factory)
        for spec in field_specs(cls):
            if spec.columns:
                self.spread.append((spec.name, tuple(spec.columns.items())))
            elif spec.column is not None:  # None: nested records, in their own table
                null_is_default = not spec.required and (spec.factory or spec.default not in (None, MISSING))
                self.plain.append((spec.name, spec.column, spec.check.to_column, spec.check.from_column,
                                   spec.default if null_is_default else None, spec.factory and null_is_default))

    def row(self, record: Any, *head: Any) -> dict[str, Any]:
        row = dict(zip(self.head, head))
        for name, column, to_column, _, _, _ in self.plain:
            value = getattr(record, name)
            row[column] = value if to_column is None else to_column(value)
        for name, columns in self.spread:
            values = getattr(record, name) or _EMPTY
            for key, column in columns:
                row[column] = values.get(key)
        return _storable(row)

    def record(self, row: Any, **children: Any) -> Any:
        values = {}
        for name, column, _, from_column, default, factory in self.plain:
            value = getattr(row, column)
            if value is None:
                value = default() if factory else default  # a null reads as the field's default
            elif from_column is not None:
                value = from_column(value)
            values[name] = value
        for name, columns in self.spread:
            values[name] = _gathered(row, columns)
        return self.cls(**values, **children)


_RUNS = _Columns(RunRecord)
_NODES = _Columns(NodeRecord, ("run_id", "seq"))
_CALLS = _Columns(LLMCallRecord, ("run_id", "seq"))
_RUN_TOKEN_COLUMNS = tuple(f"{kind}_tokens" for kind in TOKEN_KINDS)


def run_row(record: RunRecord) -> dict[str, Any]:
    row = _RUNS.row(record)
    row["heartbeat_at"] = record.ended_at or record.started_at
    # The derived totals: the sums reports read without adding up calls (numbers: storable).
    tokens = record.tokens
    row.update(zip(_RUN_TOKEN_COLUMNS, (getattr(tokens, kind) for kind in TOKEN_KINDS)))
    row["cost_nanousd"] = to_nanos(record.priced_cost_usd)
    row["unpriced_calls"] = record.unpriced_calls
    return row


def node_rows(record: RunRecord, start: int = 0) -> list[dict[str, Any]]:
    run_id, row = record.run_id, _NODES.row
    return [row(node, run_id, seq) for seq, node in enumerate(record.nodes[start:], start)]


def call_rows(record: RunRecord, start: int = 0) -> list[dict[str, Any]]:
    run_id, row = record.run_id, _CALLS.row
    return [row(call, run_id, seq) for seq, call in enumerate(record.llm_calls[start:], start)]


def record_from_rows(run, nodes, calls) -> RunRecord:
    return _RUNS.record(run, nodes=[_NODES.record(row) for row in nodes],
                        llm_calls=[_call_from_row(row) for row in calls])


def _call_from_row(row) -> LLMCallRecord:
    return _CALLS.record(row)
