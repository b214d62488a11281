"""Adding run records (JSON lines, e.g. from `export` on other machines) to a ledger.

Idempotent by run id, so ledgers from many CI runners merge into one. A bad line is reported
with its line number and skipped; the valid lines still land.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field

from pflow_metrics.errors import LedgerError, RecordError
from pflow_metrics.ledger.rollups import refresh
from pflow_metrics.ledger.store import Ledger
from pflow_metrics.record import RunRecord

BATCH = 500


@dataclass
class IngestResult:
    landed: int = 0
    problems: list[tuple[int, str]] = field(default_factory=list)  # (line number, message)


def price_missing_costs(record: RunRecord) -> None:
    """Calls without a cost are priced at the run's time (prices change); totals follow."""
    unpriced = [call for call in record.llm_calls if call.cost_usd is None]
    if not unpriced:
        return
    from pflow_metrics.pricing import price_call

    for call in unpriced:
        price_call(call, call.started_at or record.started_at)
    record.compute_totals()


def _land(ledger: Ledger, batch: list[tuple[int, RunRecord]], result: IngestResult) -> None:
    """Write a batch in one transaction; if the engine refuses it (PostgreSQL takes no NUL in
    text, for one), write its records one by one and report the refused ones by line number.
    A ledger that cannot be written at all (LedgerUnavailable) still stops the ingest."""
    try:
        result.landed += ledger.finish_runs([record for _, record in batch])
        return
    except LedgerError:
        pass
    for number, record in batch:
        try:
            result.landed += ledger.finish_runs([record])
        except LedgerError as exc:
            result.problems.append((number, f"not stored: {exc}"))
    result.problems.sort()


def ingest_lines(ledger: Ledger, lines: Iterable[str]) -> IngestResult:
    result = IngestResult()
    batch: list[tuple[int, RunRecord]] = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = RunRecord.from_dict(json.loads(line))
        except json.JSONDecodeError as exc:
            result.problems.append((number, f"not JSON: {exc.msg}"))
            continue
        except RecordError as exc:
            result.problems.append((number, str(exc)))
            continue
        price_missing_costs(record)
        batch.append((number, record))
        if len(batch) >= BATCH:
            _land(ledger, batch, result)
            batch = []
    if batch:
        _land(ledger, batch, result)
    if result.landed:
        refresh(ledger)  # a bulk load dirties many days: build their roll-ups now, not in the next report
    return result
