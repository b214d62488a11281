"""`--since` / `--until` values: `30m`, `24h`, `7d`, `2w`, `3mo`, an ISO date or datetime (local
time unless it carries an offset), `today`, `yesterday`. Results are aware UTC datetimes."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from pflow_metrics.errors import UsageError

_RELATIVE = re.compile(r"^(\d+)\s*(m|min|h|d|w|mo)$")
_UNITS = {"m": timedelta(minutes=1), "min": timedelta(minutes=1), "h": timedelta(hours=1),
          "d": timedelta(days=1), "w": timedelta(weeks=1), "mo": timedelta(days=30)}


def parse_moment(text: str, option: str = "--since", now: datetime | None = None) -> datetime:
    try:
        return _parse_moment(text, option, now or datetime.now(UTC))
    except OverflowError:  # 99999999999d, or year 1 moved across a UTC offset
        raise UsageError(f"{option}: '{text}' is out of range; try 7d, 24h or 2026-11-01") from None


def _parse_moment(text: str, option: str, now: datetime) -> datetime:
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
        return now - int(match.group(1)) * _UNITS[match.group(2)]
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(f"{option}: cannot read '{text}'; try 7d, 24h or 2026-11-01") from None
    if moment.tzinfo is None:
        moment = moment.astimezone()  # naive means local time
    return moment.astimezone(UTC)


def describe_window(since: datetime, until: datetime | None, since_text: str) -> str:
    """`in the last 24h` for relative windows, else the dates."""
    if _RELATIVE.match(since_text.strip().lower()) and until is None:
        return f"in the last {since_text.strip()}"
    end = f" to {until.astimezone():%Y-%m-%d %H:%M}" if until else ""
    return f"since {since.astimezone():%Y-%m-%d %H:%M}{end}"
