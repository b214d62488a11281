"""The instrumentation's one door into the ledger: begin, journal progress, finish.

It never raises into the workflow it observes. A ledger that cannot be opened or written
turns into one warning and a spooled run record (see spool.py), ingested the next time a run
finishes with the ledger writable.
"""

from __future__ import annotations

import threading
import time
import warnings

from pflow_metrics.errors import PflowMetricsError
from pflow_metrics.ledger.spool import drain_spool, spool_record
from pflow_metrics.record import RunRecord

# Journal writes are grouped: at most one commit per interval, and a pending one is written by
# a timer, so that nodes finished a second before a SIGKILL are in the ledger.
JOURNAL_INTERVAL_S = 0.5


class LedgerWarning(UserWarning):
    """The ledger could not be written; the run record was spooled instead."""


class RunWriter:
    def __init__(self, url: str | None, record: RunRecord):
        self.url = url
        self.record = record
        self.ledger = None
        self.spooled_to = None
        self._problem: PflowMetricsError | None = None
        self._written = (0, 0)
        self._last_write = 0.0
        self._timer: threading.Timer | None = None
        self._lock = threading.Lock()

    def begin(self) -> None:
        """Open the ledger and write the run row with status 'running'."""
        from pflow_metrics.ledger.store import Ledger

        try:
            self.ledger = Ledger.open(self.url)
            self.ledger.begin_run(self.record)
            self._last_write = time.perf_counter()
        except PflowMetricsError as exc:
            self._problem = exc

    def progress(self) -> None:
        """Call after nodes or calls were appended to the record; commits are grouped."""
        if self.ledger is None or self._problem is not None:
            return
        wait = JOURNAL_INTERVAL_S - (time.perf_counter() - self._last_write)
        if wait <= 0:
            self._journal()
        elif self._timer is None:
            self._timer = threading.Timer(wait, self._journal)
            self._timer.daemon = True
            self._timer.start()

    def _journal(self) -> None:
        with self._lock:
            self._timer = None
            if self.ledger is None or self._problem is not None:
                return
            try:
                self._written = self.ledger.journal(self.record, *self._written)
            except PflowMetricsError as exc:
                self._problem = exc
            self._last_write = time.perf_counter()

    def finish(self) -> str | None:
        """Write the finished run. Returns a warning line when it had to be spooled instead."""
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            ledger, self.ledger = self.ledger, None
        try:
            if ledger is None:
                raise self._problem or PflowMetricsError("ledger was not opened")
            ledger.finish_run(self.record)
            drain_spool(ledger)
            return None
        except PflowMetricsError as exc:
            problem = exc
        finally:
            if ledger is not None:
                ledger.close()
        try:
            self.spooled_to = spool_record(self.record)
        except OSError as exc:
            message = f"pflow-metrics: run {self.record.run_id} was not recorded ({problem}); spooling failed too: {exc}"
        else:
            message = f"pflow-metrics: ledger not written ({problem}); run record spooled to {self.spooled_to}"
        warnings.warn(message, LedgerWarning, stacklevel=2)
        return message
