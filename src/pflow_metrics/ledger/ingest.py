"""Adding run records (JSON lines, e.g. from `export` on other machines) to a ledger.

Idempotent by run id, so ledgers from many CI runners merge into one. A bad line is reported
with its line number and skipped; the valid lines still land. A line is bad whatever goes wrong
with it: not UTF-8, not JSON (nested past the stack, a 5,000-digit number), not a valid record,
refused by the engine, or an exception nobody foresaw; only a ledger that cannot be written at
all (LedgerUnavailable) stops the ingest.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from pflow_metrics.errors import LedgerUnavailable, RecordError
from pflow_metrics.ledger.rollups import refresh
from pflow_metrics.ledger.store import Ledger, Stored
from pflow_metrics.record import RunRecord

BATCH = 500


@dataclass
class IngestResult:
    landed: int = 0
    new: int = 0  # of the landed runs, those the ledger did not hold before
    problems: list[tuple[int, str]] = field(default_factory=list)  # (line number, message)

    def add(self, stored: Stored) -> None:
        self.landed += stored.runs
        self.new += stored.new


def price_missing_costs(record: RunRecord) -> None:
    """Calls without a cost are priced at the run's time (prices change); the run's totals are
    derived from its calls, so they follow."""
    unpriced = [call for call in record.llm_calls if call.cost_usd is None]
    if not unpriced:
        return
    from pflow_metrics.pricing import price_call

    for call in unpriced:
        price_call(call, call.started_at or record.started_at)


def _land(ledger: Ledger, batch: list[tuple[int, RunRecord]], result: IngestResult) -> None:
    """Write a batch in one transaction; if the engine refuses it, write its records one by one
    and report the refused ones by line number. A ledger that cannot be written at all (LedgerUnavailable) still stops
    the ingest."""
    try:
        result.add(ledger.finish_runs([record for _, record in batch]))
        return
    except LedgerUnavailable:
        raise
    except Exception:  # noqa: BLE001 - one record's fault: find it below
        pass
    for number, record in batch:
        try:
            result.add(ledger.finish_runs([record]))
        except LedgerUnavailable:
            raise
        except Exception as exc:  # noqa: BLE001 - whatever the engine or driver says, it is this line's
            result.problems.append((number, f"not stored: {_message(exc)}"))
    result.problems.sort()


class LineProblem(Exception):
    """Why one line was skipped; the message is one line."""


def read_line(number: int, line: str | bytes) -> RunRecord | None:
    """The record on one line; None for a blank line. Raises LineProblem, whatever went wrong."""
    if isinstance(line, bytes):
        try:
            line = line.removesuffix(b"\n").decode("utf-8")
        except UnicodeDecodeError as exc:
            raise LineProblem(f"not UTF-8 (byte {exc.start + 1}: {exc.reason})") from None
    if number == 1:
        line = line.removeprefix("\ufeff")  # a byte-order mark
    if not line.strip():
        return None
    try:
        record = RunRecord.from_json(line)
        price_missing_costs(record)
    except RecordError as exc:
        raise LineProblem(_message(exc)) from None
    except Exception as exc:  # noqa: BLE001 - a value nobody foresaw is still only this line's problem
        raise LineProblem(f"not read: {type(exc).__name__}: {_message(exc)}") from None
    return record


def ingest_lines(ledger: Ledger, lines: Iterable[str | bytes]) -> IngestResult:
    """Land the records of `lines` (text, or bytes each decoded here as UTF-8), numbered from 1."""
    result = IngestResult()
    batch: list[tuple[int, RunRecord]] = []
    for number, line in enumerate(lines, 1):
        try:
            record = read_line(number, line)
        except LineProblem as problem:
            result.problems.append((number, str(problem)))
            continue
        if record is None:
            continue
        batch.append((number, record))
        if len(batch) >= BATCH:
            _land(ledger, batch, result)
            batch = []
    if batch:
        _land(ledger, batch, result)
    if result.landed:
        refresh(ledger)  # a bulk load dirties many days: build their roll-ups now, not in the next report
    return result


def _message(exc: BaseException, limit: int = 300) -> str:
    """An exception as one printable line of at most `limit` characters (never empty)."""
    text = " ".join(str(exc)[: limit * 4].split()) or type(exc).__name__
    text = "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text)
    return text if len(text) <= limit else text[: limit - 1] + "…"
