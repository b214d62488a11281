"""Run records that could not be written to their ledger wait in $PFLOW_HOME/spool/, one JSON
file per run, in one folder per ledger, until that ledger can be written again:

    spool/<key>/ledger.url       the ledger's URL without its password (what `db check` shows)
    spool/<key>/<run id>.json    a record waiting for that ledger; `.bad` once the ledger refused it

<key> is a hash of the password-free URL (a SQLite ledger: of its absolute file path), so a
record only ever drains into the ledger it was meant for. Record files directly in spool/ were
written by versions that kept one spool for every ledger; they drain into the default ledger
($PFLOW_METRICS_DB, else $PFLOW_HOME/metrics.db), where most of them were headed.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from pflow_metrics.config import PRIVATE_FILE_MODE, home_subdir, ledger_url, pflow_home, private_dir, sqlite_path
from pflow_metrics.errors import LedgerError, RecordError
from pflow_metrics.record import RunRecord

URL_FILE = "ledger.url"


def spool_dir() -> Path:
    return pflow_home() / "spool"


def ledger_identity(url: str) -> str:
    """The ledger's URL without its password, spelled one way per ledger: a SQLite ledger by
    its absolute file path (whatever URL options opened it), a server without the driver name."""
    url = ledger_url(url)  # a plain path is a SQLite file
    path = sqlite_path(url)
    if path is not None:
        return f"sqlite:///{path.expanduser().resolve()}"
    from sqlalchemy.engine import URL, make_url

    from pflow_metrics.redaction import is_secret_key

    try:
        parsed = make_url(url)
        query = {key: value for key, value in parsed.query.items() if not is_secret_key(key)}  # ?password=
        return URL.create(parsed.get_backend_name(), parsed.username, None, parsed.host, parsed.port,
                          parsed.database, query).render_as_string(hide_password=False)
    except Exception:  # a URL no ledger can be opened with; never keep what might be a password
        return "<unreadable URL>"


def ledger_spool_dir(url: str) -> Path:
    """The spool folder of the ledger at `url` (it may not exist)."""
    return spool_dir() / hashlib.sha256(ledger_identity(url).encode()).hexdigest()[:16]


def spool_record(record: RunRecord, url: str | None = None) -> Path:
    """Keep the record for the ledger at `url` (default: the configured ledger). Written
    atomically (temp file, then rename); a crash never leaves half a file."""
    identity = ledger_identity(ledger_url(url))
    home_subdir("spool")
    folder = private_dir(ledger_spool_dir(identity))
    _write_private(folder / URL_FILE, identity + "\n")
    target = folder / f"{record.run_id}.json"
    handle, temp_name = tempfile.mkstemp(dir=folder, prefix=".", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(record.to_json())
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temp_name, PRIVATE_FILE_MODE)
        os.replace(temp_name, target)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    return target


def _write_private(path: Path, content: str) -> None:
    try:
        if path.read_text(encoding="utf-8") == content:
            return
    except OSError:
        pass
    handle = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, PRIVATE_FILE_MODE)
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        out.write(content)


def spooled_files() -> list[Path]:
    """Every spooled record, for any ledger."""
    folder = spool_dir()
    return sorted([*folder.glob("*.json"), *folder.glob("*/*.json")]) if folder.is_dir() else []


def spooled_for(url: str) -> list[Path]:
    """The records waiting for the ledger at `url`: its own folder, and for the default ledger
    also the files of the old single spool."""
    files = sorted(ledger_spool_dir(url).glob("*.json"))
    if _is_default_ledger(url):
        files += sorted(spool_dir().glob("*.json"))
    return files


def _is_default_ledger(url: str) -> bool:
    return ledger_identity(url) == ledger_identity(ledger_url(None))


@dataclass
class SpooledLedger:
    """One ledger's share of the spool, for `db check`."""

    ledger: str  # the password-free URL, or a note when it is not known
    folder: Path
    waiting: list[Path] = field(default_factory=list)
    set_aside: list[Path] = field(default_factory=list)  # `.bad`: refused by the ledger, kept
    old_layout: bool = False  # files directly in spool/, counted for the default ledger


def spooled_by_ledger() -> list[SpooledLedger]:
    """What waits in the spool, per ledger; the old single spool counts for the default ledger."""
    root = spool_dir()
    if not root.is_dir():
        return []
    found = []
    for folder in sorted(path for path in root.iterdir() if path.is_dir()):
        try:
            ledger = (folder / URL_FILE).read_text(encoding="utf-8").strip()
        except OSError:
            ledger = "an unknown ledger"
        found.append(SpooledLedger(ledger, folder, sorted(folder.glob("*.json")), sorted(folder.glob("*.bad"))))
    old = SpooledLedger(ledger_identity(ledger_url(None)), root, sorted(root.glob("*.json")),
                        sorted(root.glob("*.bad")), old_layout=True)
    return [entry for entry in [*found, old] if entry.waiting or entry.set_aside]


def drain_spool(ledger, url: str | None = None) -> int:
    """Ingest the records spooled for this ledger (`url`, default: the ledger's own URL) and
    remove them. Returns how many landed. Records spooled for other ledgers stay where they are.

    A file that is not a valid record, or a record the ledger refuses for good (a LedgerError:
    PostgreSQL takes no NUL in text, for one), is left in place (renamed `.bad`) rather than
    lost or retried by every run. LedgerUnavailable (the ledger went away) stops the drain.
    """
    url = url or ledger.engine.url.render_as_string(hide_password=False)
    landed = 0
    for path in spooled_for(url):
        try:
            record = RunRecord.from_json(path.read_bytes())
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
