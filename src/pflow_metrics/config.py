"""Where things live: PFLOW_HOME, the ledger URL, and private file modes."""

from __future__ import annotations

import os
import re
from datetime import timedelta
from pathlib import Path

DEFAULT_HOME = "~/.pflow"
LEDGER_ENV = "PFLOW_METRICS_DB"
PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


def pflow_home() -> Path:
    return Path(os.environ.get("PFLOW_HOME") or DEFAULT_HOME).expanduser()


def private_dir(path: Path) -> Path:
    """Create `path` (and missing parents) readable by the owner only."""
    path.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    return path


def home_subdir(name: str) -> Path:
    return private_dir(pflow_home() / name)


def ledger_url(explicit: str | None = None) -> str:
    """The ledger location: `--db`, then $PFLOW_METRICS_DB, then $PFLOW_HOME/metrics.db.

    Either may be a SQLAlchemy URL or a plain file path (taken as SQLite).
    """
    target = explicit or os.environ.get(LEDGER_ENV)
    if not target:
        return f"sqlite:///{pflow_home() / 'metrics.db'}"
    if "://" in target:
        return target
    return f"sqlite:///{Path(target).expanduser().resolve()}"


def sqlite_path(url: str) -> Path | None:
    """The database file behind a SQLite URL, or None for other engines and :memory:."""
    if not url.startswith("sqlite"):
        return None
    path = url.split(":///", 1)[1] if ":///" in url else ""
    path = path.split("?", 1)[0].removeprefix("file:")  # sqlite:///file:/x.db?mode=ro&uri=true
    if not path or path == ":memory:":
        return None
    return Path(path)


CRASH_AFTER_ENV = "PFLOW_CRASH_AFTER"
DEFAULT_CRASH_AFTER = timedelta(minutes=10)
MAX_CRASH_AFTER = timedelta(days=365)
_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*([smhd]?)")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def crash_after() -> timedelta:
    """How long a run may go without a heartbeat before it counts as crashed (its journal
    thread refreshes it every minute): $PFLOW_CRASH_AFTER in seconds or with a unit (`600`,
    `90s`, `10m`, `2h`, `1d`), else 10 minutes. Anything else (nan, inf, exponents, negative,
    0, more than a year) is a UsageError naming the variable."""
    text = os.environ.get(CRASH_AFTER_ENV, "").strip()
    if not text:
        return DEFAULT_CRASH_AFTER
    match = _DURATION.fullmatch(text.lower())
    seconds = float(match[1]) * _UNIT_SECONDS[match[2]] if match else None
    if seconds is None or not 0 < seconds <= MAX_CRASH_AFTER.total_seconds():
        from pflow_metrics.errors import UsageError

        raise UsageError(
            f"{CRASH_AFTER_ENV}: cannot use {text[:40]!r}; give a duration more than 0 and at most 365d, "
            "in seconds or like 90s, 10m, 2h"
        )
    return timedelta(seconds=seconds)
