"""`--since` / `--until` values: `30m`, `24h`, `7d`, `2w`, `3mo`, an ISO date or datetime (local
time unless it carries an offset), `today`, `yesterday`. Results are aware UTC datetimes.

The ledger holds runs that start in [EARLIEST, LATEST): from 1970-01-01 through 9998-12-31,
UTC, every day of it with a four-digit year (record.py refuses runs outside it). A moment
outside that range is refused, naming the option, except that one within a day of either end
(a boundary date written in any time zone) is taken as that end.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from pflow_metrics.errors import UsageError

EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)  # the first moment a run may start
LATEST = datetime(9999, 1, 1, tzinfo=UTC)  # exclusive: runs start before it
_SLACK = timedelta(days=1)  # the widest UTC offset is under a day

_RELATIVE = re.compile(r"^(\d+)\s*(m|min|h|d|w|mo)$")
_UNITS = {"m": timedelta(minutes=1), "min": timedelta(minutes=1), "h": timedelta(hours=1),
          "d": timedelta(days=1), "w": timedelta(weeks=1), "mo": timedelta(days=30)}


def parse_moment(text: str, option: str = "--since", now: datetime | None = None) -> datetime:
    """The moment `text` names, in [EARLIEST, LATEST]; UsageError naming `option` otherwise."""
    try:
        moment = _parse_moment(text, option, now or datetime.now(UTC))
    except (OverflowError, OSError):  # 99999999999d, or year 1 moved across a UTC offset
        moment = None
    if moment is not None and EARLIEST - _SLACK <= moment <= LATEST + _SLACK:
        return min(max(moment, EARLIEST), LATEST)
    raise UsageError(f"{option}: '{_cut(text)}' is outside the supported range, {EARLIEST:%Y-%m-%d} "
                     f"to {LATEST - timedelta(days=1):%Y-%m-%d} (UTC)")


def _parse_moment(text: str, option: str, now: datetime) -> datetime | None:
    """The moment, or None when it cannot be a datetime at all (year 0, year 10000)."""
    value = text.strip().lower()
    local_midnight = now.astimezone().replace(hour=0, minute=0, second=0, microsecond=0)
    if value == "now":
        return now
    if value == "today":
        return local_midnight.astimezone(UTC)
    if value == "yesterday":
        return (local_midnight - timedelta(days=1)).astimezone(UTC)
    match = _RELATIVE.match(value)
    if match:
        digits = match.group(1)
        if len(digits) > 12:  # more days than any datetime spans (and past int()'s digit limit)
            return None
        return now - int(digits) * _UNITS[match.group(2)]
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(f"{option}: cannot read '{_cut(text)}'; try 7d, 24h or 2026-11-01") from None
    try:
        if moment.tzinfo is None:
            moment = moment.astimezone()  # naive means local time
        return moment.astimezone(UTC)
    except ValueError:  # year 1 in local time: "year 0 is out of range"
        return None


def _cut(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def describe_window(since: datetime, until: datetime | None, since_text: str) -> str:
    """`in the last 24h` for relative windows, else the dates."""
    if _RELATIVE.match(since_text.strip().lower()) and until is None:
        return f"in the last {since_text.strip()}"
    end = f" to {until.astimezone():%Y-%m-%d %H:%M}" if until else ""
    return f"since {since.astimezone():%Y-%m-%d %H:%M}{end}"
