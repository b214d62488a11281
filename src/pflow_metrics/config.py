"""Where things live and every setting read from the environment: this module owns each
variable (README's configuration table lists them) and validates it once, in one style."""

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


PRICING_ENV = "PFLOW_PRICING"
BUSY_TIMEOUT_ENV = "PFLOW_SQLITE_BUSY_TIMEOUT_MS"
TRACE_KEEP_ENV = "PFLOW_TRACE_KEEP"
TRACE_MAX_BYTES_ENV = "PFLOW_TRACE_MAX_BYTES"
CRASH_AFTER_ENV = "PFLOW_CRASH_AFTER"
DEFAULT_CRASH_AFTER = timedelta(minutes=10)
MAX_CRASH_AFTER = timedelta(days=365)
_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*([smhd]?)")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def pricing_file() -> Path:
    """Your per-million rates: $PFLOW_PRICING, else $PFLOW_HOME/pricing.toml."""
    return Path(os.environ.get(PRICING_ENV) or pflow_home() / "pricing.toml").expanduser()


LLM_USER_PATH_ENV = "LLM_USER_PATH"  # llm's own variable: where llm keeps logs.db


def llm_logs_db() -> Path:
    """llm's logs database, where `llm logs path` finds it: $LLM_USER_PATH/logs.db, else in
    llm's app directory. Not llm.user_dir(), which creates the directory."""
    import click  # typer's own dependency; only `ingest --from llm` asks

    base = os.environ.get(LLM_USER_PATH_ENV)
    return (Path(base) if base else Path(click.get_app_dir("io.datasette.llm"))) / "logs.db"


def sqlite_busy_timeout_ms() -> int:
    """How long a SQLite writer waits for another one (default 30 s)."""
    return _whole_number(BUSY_TIMEOUT_ENV, 30_000, 24 * 3600 * 1000)


def trace_keep() -> int:
    """How many trace files to keep (default 200)."""
    return _whole_number(TRACE_KEEP_ENV, 200, 10**6)


def trace_max_bytes() -> int:
    """The size past which a trace file records no more shared-store values (default 50 MB)."""
    return _whole_number(TRACE_MAX_BYTES_ENV, 50 * 1024 * 1024, 2**40)


def _whole_number(name: str, default: int, maximum: int) -> int:
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    if not text.isdigit() or not 1 <= int(text) <= maximum:
        _refuse(name, text, f"a whole number from 1 to {maximum:,}")
    return int(text)


def _refuse(name: str, text: str, wanted: str):
    """Every bad setting reads the same: the variable, the value, what it takes."""
    from pflow_metrics.errors import UsageError

    raise UsageError(f"{name}: cannot use {text[:40]!r}; give {wanted}")


def crash_after() -> timedelta:
    """How long a run may go without a heartbeat before it counts as crashed (its journal
    thread refreshes it every minute): $PFLOW_CRASH_AFTER in seconds or with a unit (`600`,
    `90s`, `10m`, `2h`, `1d`), else 10 minutes. Anything else (nan, inf, exponents, negative,
    0, more than a year) is a UsageError naming the variable."""
    seconds = _seconds(CRASH_AFTER_ENV, MAX_CRASH_AFTER.total_seconds(),
                       "a duration more than 0 and at most 365d, in seconds or like 90s, 10m, 2h")
    return DEFAULT_CRASH_AFTER if seconds is None else timedelta(seconds=seconds)


def _seconds(name: str, maximum: float, wanted: str) -> float | None:
    """$name as seconds, bare or with a unit (`90`, `90s`, `10m`, `2h`, `1d`); None when unset."""
    text = os.environ.get(name, "").strip()
    if not text:
        return None
    match = _DURATION.fullmatch(text.lower())
    seconds = float(match[1]) * _UNIT_SECONDS[match[2]] if match else None
    if seconds is None or not 0 < seconds <= maximum:
        _refuse(name, text, wanted)
    return seconds


OTEL_ENV = "PFLOW_METRICS_OTEL"
OTEL_TIMEOUT_ENV = "PFLOW_METRICS_OTEL_TIMEOUT"
DEFAULT_OTEL_TIMEOUT = 5.0
_YES, _NO = ("1", "true", "yes", "on"), ("", "0", "false", "no", "off")


def otel_enabled() -> bool:
    """Whether every run is sent to OpenTelemetry as it finishes: $PFLOW_METRICS_OTEL
    (1/true/yes/on or 0/false/no/off; unset: no)."""
    text = os.environ.get(OTEL_ENV, "").strip()
    if text.lower() not in _YES + _NO:
        _refuse(OTEL_ENV, text, "1 or 0 (also true/false, yes/no, on/off)")
    return text.lower() in _YES


def otel_timeout() -> float:
    """The longest an OpenTelemetry export may wait, retries included, and so the longest a
    process waits at exit for runs not yet sent: $PFLOW_METRICS_OTEL_TIMEOUT in seconds or
    with a unit (`5`, `0.5`, `2s`, `1m`), at most 10 minutes; default 5 seconds."""
    seconds = _seconds(OTEL_TIMEOUT_ENV, 600, "a duration more than 0 and at most 10m, in seconds or like 2s, 1m")
    return DEFAULT_OTEL_TIMEOUT if seconds is None else seconds
