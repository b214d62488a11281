"""The instrumentation's one door into the ledger: begin, journal progress, finish.

It never raises into the workflow it observes. A ledger that cannot be opened or written
turns into one warning and a run record spooled for that ledger (see spool.py), ingested the
next time a run finishes with that same ledger writable.
"""

from __future__ import annotations

import os
import threading
import time
import warnings

from pflow_metrics.errors import LedgerUnavailable, PflowMetricsError
from pflow_metrics.ledger.spool import drain_spool, spool_record
from pflow_metrics.record import RunRecord

# Journal writes are grouped: at most one commit per interval, written by a background thread,
# so that nodes finished a second before a SIGKILL are in the ledger and the workflow thread never
# waits on the database. The heartbeat lets other hosts tell a live run from a dead one.
JOURNAL_INTERVAL_S = 0.5
HEARTBEAT_INTERVAL_S = 60.0


# One open ledger per URL and process: opening (engine, schema check) costs more than a flush.
_open_ledgers: dict[tuple[str, int], object] = {}


def shared_ledger(url: str | None):
    """The process's open Ledger for `url`, opened (and upgraded) on first use."""
    from pflow_metrics.config import ledger_url
    from pflow_metrics.ledger.store import Ledger

    key = (ledger_url(url), os.getpid())
    ledger = _open_ledgers.get(key)
    if ledger is None:
        ledger = _open_ledgers[key] = Ledger.open(key[0])
    return ledger


def close_shared_ledgers() -> None:
    """Close and forget the process's open ledgers (the next run opens them again): for a
    server that went away for good, whose pooled connections would otherwise be kept."""
    while _open_ledgers:
        _open_ledgers.popitem()[1].close()


class LedgerWarning(UserWarning):
    """The ledger could not be written; the run record was spooled instead."""


class RunWriter:
    def __init__(self, url: str | None, record: RunRecord):
        from pflow_metrics.config import ledger_url

        self.url = url
        try:  # the ledger this record belongs to, spooled or not
            self.target = ledger_url(url)
        except (OSError, RuntimeError, ValueError):  # a path that cannot be resolved: opening it fails too
            self.target = url
        self.record = record
        self.ledger = None
        self.spooled_to = None
        self._problem: PflowMetricsError | None = None
        self._written = (0, 0)
        self._pending = False
        self._stopped = False
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None

    def begin(self) -> None:
        """Open the ledger, write the run row with status 'running', start the journal thread."""
        try:
            self.ledger = shared_ledger(self.url)
            self.ledger.begin_run(self.record)
        except PflowMetricsError as exc:
            self._problem = exc
            return
        self._thread = threading.Thread(target=self._journal_loop, name="pflow-metrics-journal", daemon=True)
        self._thread.start()

    def progress(self) -> None:
        """Call after nodes or calls were appended to the record; the journal thread writes them."""
        if self._thread is not None:
            with self._wake:
                self._pending = True
                self._wake.notify()

    def _journal_loop(self) -> None:
        last_write = time.perf_counter()
        while True:
            with self._wake:
                # `_stopped` and `_pending` are read under the lock they are set under, before
                # waiting: a stop requested while the last journal write ran is never missed.
                if not self._pending and not self._stopped:
                    self._wake.wait(HEARTBEAT_INTERVAL_S)
                if self._stopped:
                    return
                # Group what arrives within the interval into one commit; a stop ends the wait.
                self._wake.wait_for(lambda: self._stopped,
                                    max(0.0, last_write + JOURNAL_INTERVAL_S - time.perf_counter()))
                if self._stopped:
                    return
                self._pending = False
            try:
                self._written = self.ledger.journal(self.record, *self._written)
            except LedgerUnavailable as exc:
                # Locked or down for now: what was not written goes with the next attempt, and
                # heartbeats go on, since readers take a run without one for a crashed run.
                self._problem = exc
            except PflowMetricsError as exc:
                self._problem = exc
                return
            last_write = time.perf_counter()

    @property
    def stop_requested(self) -> bool:
        """Whether finish() has told the journal thread to stop."""
        return self._stopped

    def _stop_journal(self) -> None:
        if self._thread is not None:
            with self._wake:
                self._stopped = True
                self._wake.notify()
            self._thread.join()
            self._thread = None

    def finish(self) -> str | None:
        """Write the finished run. Returns a warning line when it had to be spooled instead."""
        self._stop_journal()
        try:
            if self.ledger is None:
                raise self._problem or PflowMetricsError("ledger was not opened")
            self.ledger.finish_run(self.record)
        except PflowMetricsError as exc:
            problem = exc
        else:
            try:
                drain_spool(self.ledger, self.target)
            except (PflowMetricsError, OSError):  # this run is recorded; the spool waits for the next
                pass
            return None
        try:
            self.spooled_to = spool_record(self.record, self.target)
        except OSError as exc:
            message = f"pflow-metrics: run {self.record.run_id} was not recorded ({problem}); spooling failed too: {exc}"
        else:
            message = f"pflow-metrics: ledger not written ({problem}); run record spooled to {self.spooled_to}"
        from pflow_metrics.redaction import redact_text

        message = redact_text(message)  # the problem can quote the ledger URL or the driver's conninfo
        warnings.warn(message, LedgerWarning, stacklevel=2)
        return message
