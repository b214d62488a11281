"""Where things live: PFLOW_HOME, the ledger URL, and private file modes."""

from __future__ import annotations

import os
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
