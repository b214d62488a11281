"""Run records that could not be written to the ledger wait in $PFLOW_HOME/spool/, one JSON
file per run, until the ledger can be written again."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from pflow_metrics.config import PRIVATE_FILE_MODE, home_subdir, pflow_home
from pflow_metrics.errors import LedgerError, RecordError
from pflow_metrics.record import RunRecord


def spool_dir() -> Path:
    return pflow_home() / "spool"


def spool_record(record: RunRecord) -> Path:
    """Write the record atomically (temp file, then rename); a crash never leaves half a file."""
    folder = home_subdir("spool")
    target = folder / f"{record.run_id}.json"
    handle, temp_name = tempfile.mkstemp(dir=folder, prefix=".", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(record.to_dict(), out)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temp_name, PRIVATE_FILE_MODE)
        os.replace(temp_name, target)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    return target


def spooled_files() -> list[Path]:
    folder = spool_dir()
    return sorted(folder.glob("*.json")) if folder.is_dir() else []


def drain_spool(ledger) -> int:
    """Ingest spooled records into `ledger` and remove them. Returns how many landed.

    A file that is not a valid record, or a record the ledger refuses for good (a LedgerError:
    PostgreSQL takes no NUL in text, for one), is left in place (renamed `.bad`) rather than
    lost or retried by every run. LedgerUnavailable (the ledger went away) stops the drain.
    """
    landed = 0
    for path in spooled_files():
        try:
            record = RunRecord.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, RecordError):
            path.rename(path.with_suffix(".bad"))
            continue
        try:
            ledger.finish_run(record)
        except LedgerError:
            path.rename(path.with_suffix(".bad"))
            continue
        path.unlink(missing_ok=True)
        landed += 1
    return landed
